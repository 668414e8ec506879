"""Maximum bids, buy it now and repeated request ids under real concurrency (spec §7).

Real WebSocket clients on two daphne instances, each process with its own bid batcher,
race on the same auctions. What the database decided is then checked against the spec:
every acknowledged bid is stored, seqs are contiguous and amounts never fall, and an
independent replay of the accepted offers, in the order the database decided them,
through the spec-only reference model (tests/bidding/reference_model.py) ends with the
same bids, leader, leader max and price. Subscribers on both instances get every event
exactly once, in order.
"""

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from channels.db import database_sync_to_async

from auctions.formats import money
from auctions.models import Auction, AuctionEvent
from bidding.models import Bid, BidRequest
from tests.bidding.reference_model import ModelAuction
from tests.e2e.conftest import (
    WsClient,
    auction_open_with,
    clients_close,
    delivery_problems,
    last_seq,
    nothing_else_arrives,
    percentile,
    replies_to,
    send_raw,
    stored_events,
    users_with_tokens,
    wait_for,
    without_timestamp,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BIDDERS = 12
OBSERVERS = 4
LOAD_SECONDS = 4.0
MAX_OFFERS = 4000
REPLY_TIMEOUT = 20.0
DELIVERY_TIMEOUT = 20.0
START = Decimal("10.00")
ALLOWED_LOSSES = {"bid_too_low", "already_highest"}

# The site's `standard` table, copied from the spec's text (§7), not from the code.
STANDARD_TABLE = [
    (Decimal(start), Decimal(step))
    for start, step in [
        ("0.00", "0.05"),
        ("1.00", "0.25"),
        ("5.00", "0.50"),
        ("25.00", "1.00"),
        ("100.00", "2.50"),
        ("250.00", "5.00"),
        ("500.00", "10.00"),
        ("1000.00", "25.00"),
        ("2500.00", "50.00"),
        ("5000.00", "100.00"),
    ]
]


def standard_inc(price: Decimal) -> Decimal:
    """inc(p): the increment of the last row whose `from` is at or below p."""
    return [step for start, step in STANDARD_TABLE if start <= price][-1]


def fixed_inc(step: Decimal):
    return lambda price: step


# --- what the database holds ---------------------------------------------------


@dataclass
class StoredBid:
    seq: int
    id: str
    bidder: str
    amount: Decimal
    auto: bool
    request_id: str | None


@dataclass
class Stored:
    status: str
    current_price: Decimal
    leader: str | None
    leader_max: Decimal | None
    last_seq: int
    bid_count: int
    winner: str | None
    final_price: Decimal | None
    reserve_met: bool
    bids: list[StoredBid]
    events: list[tuple[int, str, dict[str, Any]]]
    # (bidder id, request id) -> (outcome code, reply data, decided at)
    requests: dict[tuple[str, str], tuple[str, dict[str, Any], Any]]

    def bid_by_request(self, bidder: str, request_id: str) -> StoredBid | None:
        found = [b for b in self.bids if b.bidder == bidder and b.request_id == request_id]
        assert len(found) <= 1, found
        return found[0] if found else None


@database_sync_to_async
def stored(auction_id: str) -> Stored:
    auction = Auction.objects.get(id=auction_id)
    bids = [
        StoredBid(seq, str(id_), str(bidder), amount, auto, request_id)
        for seq, id_, bidder, amount, auto, request_id in Bid.objects.filter(auction_id=auction_id)
        .order_by("seq")
        .values_list("seq", "id", "bidder_id", "amount", "auto", "request_id")
    ]
    events = list(
        AuctionEvent.objects.filter(auction_id=auction_id)
        .order_by("seq")
        .values_list("seq", "type", "payload")
    )
    requests = {
        (str(bidder), request_id): (outcome, reply, created_at)
        for bidder, request_id, outcome, reply, created_at in BidRequest.objects.filter(
            auction_id=auction_id
        ).values_list("bidder_id", "request_id", "outcome", "reply", "created_at")
    }
    return Stored(
        status=auction.status,
        current_price=auction.current_price,
        leader=str(auction.highest_bidder_id) if auction.highest_bidder_id else None,
        leader_max=auction.leader_max,
        last_seq=auction.last_seq,
        bid_count=auction.bid_count,
        winner=str(auction.winner_id) if auction.winner_id else None,
        final_price=auction.final_price,
        reserve_met=auction.reserve_met,
        bids=bids,
        events=events,
        requests=requests,
    )


def sequence_problems(state: Stored) -> list[str]:
    """Bids and events against spec §1 (seqs 1..n, no gap) and §7 rule 6 (amounts never fall)."""
    problems = []
    event_seqs = [seq for seq, _, _ in state.events]
    if event_seqs != list(range(1, len(event_seqs) + 1)) or state.last_seq != len(event_seqs):
        problems.append(f"event seqs not 1..{state.last_seq}: {event_seqs[:20]}...")
    placed = {seq: data for seq, type_, data in state.events if type_ == "bid_placed"}
    if sorted(placed) != [bid.seq for bid in state.bids]:
        problems.append("bids and bid_placed events do not match one to one")
    if state.bid_count != len(state.bids):
        problems.append(f"bid_count {state.bid_count} but {len(state.bids)} bids stored")
    for bid in state.bids:
        data = placed.get(bid.seq)
        if data is None:
            continue
        if (data["bid_id"], data["amount"], data["bidder"]["id"], data["auto"]) != (
            bid.id,
            money(bid.amount),
            bid.bidder,
            bid.auto,
        ):
            problems.append(f"event {bid.seq} does not describe bid {bid}: {data}")
        if "max_amount" in data or "leader_max" in data:
            problems.append(f"event {bid.seq} shows a max: {data}")
    for before, after in zip(state.bids, state.bids[1:], strict=False):
        if after.amount < before.amount:
            problems.append(f"amount fell: {before} then {after}")
        elif after.amount == before.amount and not (
            after.auto and not before.auto and after.bidder != before.bidder
        ):
            problems.append(f"equal amounts outside rule 3's tie: {before} then {after}")
    return problems


# --- the replay through the reference model ---------------------------------------


@dataclass
class SentOffer:
    bidder: str
    request_id: str
    amount: Decimal | None
    max_amount: Decimal | None
    reply: dict[str, Any]

    @property
    def accepted(self) -> bool:
        return self.reply["type"] == "bid_accepted"


def model_snapshot(model: ModelAuction) -> ModelAuction:
    """A cheap copy of the model's state (the rules look at the last bid only)."""
    return ModelAuction(
        creator=model.creator,
        starting=model.starting,
        inc=model.inc,
        end=model.end,
        reserve=model.reserve,
        bids=list(model.bids[-1:]),
        leader=model.leader,
        leader_max=model.leader_max,
    )


@dataclass
class Replay:
    model: ModelAuction
    problems: list[str] = field(default_factory=list)
    decided_order: list[SentOffer] = field(default_factory=list)


def replay(offers: list[SentOffer], state: Stored, model: ModelAuction) -> Replay:
    """Replay the accepted offers in the order the database decided them through the model.

    The order comes from the stored seqs: an offer that recorded a bid of its own sits at
    that bid's seq; a leader's max raise records nothing (no reserve here) and sits after
    every bid up to its reply's seq, raises at one seq in rising order of their max.
    Rejected offers changed nothing: each must be rejected, with its code, by the model in
    one of the states whose price its reply names.
    """
    result = Replay(model)
    keyed = []
    for offer in offers:
        if not offer.accepted:
            continue
        own = state.bid_by_request(offer.bidder, offer.request_id)
        if own is not None:
            keyed.append(((own.seq, 0, Decimal(0)), offer))
        else:
            assert offer.max_amount is not None, f"an accepted straight bid stored no bid: {offer}"
            keyed.append(((offer.reply["data"]["seq"], 1, offer.max_amount), offer))
    keyed.sort(key=lambda pair: pair[0])
    states = [model_snapshot(model)]
    for _, offer in keyed:
        outcome = model.offer(offer.bidder, offer.amount, offer.max_amount)
        data = offer.reply["data"]
        expected = ("accepted", data["leading"])
        if outcome != expected:
            result.problems.append(
                f"model says {outcome} where the server said {expected} for {offer}"
            )
        # bid_accepted.data is the state right after this offer's decision (no extensions
        # here, so the auction's latest seq is its number of bids).
        after = (money(model.price()), money(model.min_next()), len(model.bids))
        if (data["current_price"], data["min_next_bid"], data["seq"]) != after:
            result.problems.append(f"reply {data} but the model stands at {after}: {offer}")
        result.decided_order.append(offer)
        states.append(model_snapshot(model))
    by_price: dict[tuple[str, str], list[ModelAuction]] = {}
    for snapshot in states:
        key = (money(snapshot.price()), money(snapshot.min_next()))
        by_price.setdefault(key, []).append(snapshot)
    for offer in offers:
        if offer.accepted:
            continue
        data = offer.reply["data"]
        candidates = by_price.get((data["current_price"], data["min_next_bid"]), [])
        codes = {
            model_snapshot(s).offer(offer.bidder, offer.amount, offer.max_amount)
            for s in candidates
        }
        if ("rejected", offer.reply["code"]) not in codes:
            result.problems.append(
                f"rejected {offer.reply['code']} at {data}, but the model in "
                f"{len(candidates)} such states says {codes}: {offer}"
            )
    return result


def offer_message(
    auction_id: str, amount: Decimal | None, max_amount: Decimal | None
) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "place_bid", "auction_id": auction_id}
    if amount is not None:
        message["amount"] = str(amount)
    if max_amount is not None:
        message["max_amount"] = str(max_amount)
    return message


def latest_event(client: WsClient, auction_id: str) -> dict[str, Any] | None:
    for received in reversed(client.events):
        if received.message["auction_id"] == auction_id:
            return received.message
    return None


# --- a. many bidders, maximum and straight bids --------------------------------------


TERMS = {
    # The site's standard table; no reserve.
    "standard-table": ({"increments": "standard"}, standard_inc, None),
    # A fixed increment and a reserve the bidders cross (rule 4) while the test runs.
    "fixed-with-reserve": (
        {"min_increment": "0.50", "reserve_price": "60.00"},
        fixed_inc(Decimal("0.50")),
        Decimal("60.00"),
    ),
}


@pytest.mark.parametrize("terms", list(TERMS))
async def test_many_max_and_straight_bidders_on_two_instances_match_the_model(daphnes, terms):
    a, b = daphnes
    options, inc, reserve = TERMS[terms]
    seller, *people = await users_with_tokens(1 + BIDDERS + OBSERVERS)
    auction_id = await auction_open_with(seller[0], starting_price=START, **options)
    bidder_people = people[:BIDDERS]
    bidders = [
        await WsClient.open((a, b)[i % 2], token, label=f"m{i}", header=i % 3 == 0)
        for i, (_, token) in enumerate(bidder_people)
    ]
    observers = [
        await WsClient.open((a, b)[i % 2], token, label=f"mo{i}")
        for i, (_, token) in enumerate(people[BIDDERS:])
    ]
    for client in bidders + observers:
        assert (await client.subscribe(auction_id))["data"]["seq"] == 0

    sent: list[SentOffer] = []
    kinds: Counter = Counter()
    reply_ms: list[float] = []
    started = time.perf_counter()
    deadline = started + LOAD_SECONDS

    async def offer_until_done(client: WsClient, user_id: str, seed: int) -> None:
        rng = random.Random(seed)
        min_next, my_max = START, None
        while time.perf_counter() < deadline and len(sent) < MAX_OFFERS:
            last = latest_event(client, auction_id)
            leading = last is not None and last["data"]["highest_bidder"]["id"] == user_id
            if last is not None:
                min_next = max(min_next, Decimal(last["data"]["min_next_bid"]))
            step = inc(min_next)
            roll = rng.random()
            if leading and my_max is not None and roll < 0.3:
                kind, amount, top = "raise", None, my_max + step * rng.randint(1, 4)
            elif roll < 0.05:
                kind, amount, top = "max jump", None, min_next + step * rng.randint(10, 60)
            elif roll < 0.5:
                kind, amount, top = "max", None, min_next + step * rng.randint(0, 8)
            elif roll < 0.65:
                amount = min_next + step * rng.randint(0, 1)
                kind, top = "max+amount", amount + step * rng.randint(0, 6)
            else:
                kind, amount, top = "straight", min_next + Decimal(rng.randint(0, 9)) / 100, None
            kinds[kind] += 1
            sent_at = time.perf_counter()
            reply = await client.request(
                offer_message(auction_id, amount, top), timeout=REPLY_TIMEOUT
            )
            reply_ms.append((time.perf_counter() - sent_at) * 1000)
            sent.append(SentOffer(user_id, reply["request_id"], amount, top, reply))
            if reply["type"] == "bid_accepted":
                if reply["data"]["leading"]:
                    my_max = Decimal(reply["data"]["max_amount"])
            else:
                assert reply["type"] == "bid_rejected", reply
                assert reply["code"] in ALLOWED_LOSSES, reply
            min_next = max(min_next, Decimal(reply["data"]["min_next_bid"]))

    await asyncio.gather(
        *(
            offer_until_done(client, str(user.id), seed)
            for seed, (client, (user, _)) in enumerate(zip(bidders, bidder_people, strict=True))
        )
    )
    seconds = time.perf_counter() - started
    final = await last_seq(auction_id)
    everyone = bidders + observers
    await wait_for(
        lambda: all(c.last_seq(auction_id) >= final for c in everyone), timeout=DELIVERY_TIMEOUT
    )
    state = await stored(auction_id)

    # Every reply acknowledged a stored decision, and says what the database stored for it.
    problems = []
    bid_ids = {bid.id: bid for bid in state.bids}
    for offer in sent:
        stored_reply = state.requests.get((offer.bidder, offer.request_id))
        if stored_reply is None:
            problems.append(f"no stored outcome for {offer}")
            continue
        code, data, _ = stored_reply
        if code != ("accepted" if offer.accepted else offer.reply.get("code")):
            problems.append(f"stored outcome {code} for {offer}")
        if data != offer.reply["data"]:
            problems.append(f"stored reply {data} differs from the one sent: {offer}")
        if offer.accepted:
            acknowledged = bid_ids.get(offer.reply["data"]["bid_id"])
            if acknowledged is None:
                problems.append(f"acknowledged bid missing from the database: {offer}")
            elif money(acknowledged.amount) != offer.reply["data"]["amount"]:
                problems.append(f"acknowledged amount differs from the stored {acknowledged}")
            elif acknowledged.bidder != offer.bidder:
                problems.append(f"acknowledged bid {acknowledged} is not the bidder's: {offer}")
            own_max = offer.max_amount if offer.max_amount is not None else offer.amount
            if offer.reply["data"]["max_amount"] != money(own_max):
                problems.append(f"reply's max_amount is not the bidder's: {offer}")
    assert len(state.requests) == len(sent), (len(state.requests), len(sent))
    assert not problems, problems[:10]
    assert not sequence_problems(state), sequence_problems(state)[:10]
    assert {b.request_id for b in state.bids if not b.auto} <= {o.request_id for o in sent}

    # The independent recomputation: same bids, leader, leader max and price.
    model = ModelAuction(
        creator=str(seller[0].id), starting=START, inc=inc, end=10**9, reserve=reserve
    )
    result = replay(sent, state, model)
    assert not result.problems, result.problems[:10]
    assert [(b.bidder, b.amount, b.auto) for b in state.bids] == model.bids
    assert (state.leader, state.leader_max, state.current_price) == (
        model.leader,
        model.leader_max,
        model.price(),
    )
    assert state.reserve_met == model.reserve_met()

    # Delivery: every subscriber, on either instance, got every event once and in order.
    sentinel = await nothing_else_arrives(everyone, auction_id)
    expected = await stored_events(auction_id)
    assert [seq for seq, _, _ in expected] == list(range(1, sentinel + 1))
    delivery = [p for c in everyone for p in delivery_problems(c, auction_id, expected)]

    accepted = [o for o in sent if o.accepted]
    batches = Counter(decided_at for _, _, decided_at in state.requests.values())
    sizes = sorted(batches.values())
    autos = sum(b.auto for b in state.bids)
    ties = sum(1 for x, y in zip(state.bids, state.bids[1:], strict=False) if x.amount == y.amount)
    print(
        f"\n[e2e max bids {terms}] instances=2 bidders={BIDDERS} "
        f"offers={len(sent)} in {seconds:.1f}s "
        f"({len(sent) / seconds:.0f} decided/s) kinds={dict(kinds)} accepted={len(accepted)} "
        f"(leading {sum(o.reply['data']['leading'] for o in accepted)}) "
        f"rejected={dict(Counter(o.reply.get('code') for o in sent if not o.accepted))} "
        f"bids stored={len(state.bids)} (auto {autos}, ties {ties}) "
        f"final price={state.current_price} leader max={state.leader_max} "
        f"reserve={reserve} bids at it={sum(b.amount == reserve for b in state.bids)} "
        f"transactions={len(sizes)} offers/transaction mean={len(sent) / len(sizes):.2f} "
        f"max={sizes[-1]} in batches>1={sum(s for s in sizes if s > 1) / len(sent):.0%} "
        f"reply p50={percentile(reply_ms, 0.5):.1f}ms p99={percentile(reply_ms, 0.99):.1f}ms "
        f"events delivered={sum(len(c.seqs(auction_id)) for c in everyone)}"
    )
    assert not delivery, delivery
    await clients_close(everyone)


# --- b. two buyers at once -------------------------------------------------------------

BUY_ROUNDS = 8
BUY_NOW = Decimal("50.00")


async def open_pairs(a, b, tokens: list[str], prefix: str) -> list[tuple[WsClient, WsClient]]:
    """For each token, a connection on instance a and one on instance b."""
    return [
        (
            await WsClient.open(a, token, label=f"{prefix}{i}a"),
            await WsClient.open(b, token, label=f"{prefix}{i}b"),
        )
        for i, token in enumerate(tokens)
    ]


async def await_replies(client: WsClient, request_id: str, count: int = 1) -> list[dict]:
    arrived = await wait_for(lambda: len(replies_to(client, request_id)) >= count, REPLY_TIMEOUT)
    assert arrived, f"{client.label}: no reply to {request_id}"
    return replies_to(client, request_id)


async def test_two_buyers_at_once_on_two_instances_make_one_sale(daphnes):
    a, b = daphnes
    (seller, _), (x, x_token), (y, y_token) = await users_with_tokens(3)
    (xa, xb), (ya, yb) = await open_pairs(a, b, [x_token, y_token], "buyer")
    names = {str(x.id): "x", str(y.id): "y"}
    wins: Counter = Counter()
    losing_codes: Counter = Counter()
    for round_ in range(BUY_ROUNDS):
        auction_id = await auction_open_with(
            seller, starting_price="20", min_increment="1", buy_now_price=BUY_NOW
        )
        # The two buyers on different instances, swapping sides every round.
        pair = [(xa, x), (yb, y)] if round_ % 2 == 0 else [(xb, x), (ya, y)]
        for client, _ in pair:
            snapshot = (await client.subscribe(auction_id))["data"]
            assert snapshot["buy_now_price"] == money(BUY_NOW)
        request_ids = [f"buy-{round_}-{names[str(user.id)]}" for _, user in pair]
        await asyncio.gather(
            *(
                send_raw(client, {"type": "buy_now", "auction_id": auction_id, "request_id": rid})
                for (client, _), rid in zip(pair, request_ids, strict=True)
            )
        )
        replies = [
            (await await_replies(client, rid))[0]
            for (client, _), rid in zip(pair, request_ids, strict=True)
        ]
        accepted = [
            (reply, user, client)
            for reply, (client, user) in zip(replies, pair, strict=True)
            if reply["type"] == "bid_accepted"
        ]
        rejected = [r for r in replies if r["type"] == "bid_rejected"]
        assert len(accepted) == 1 and len(rejected) == 1, replies
        reply, winner, winning_client = accepted[0]
        assert reply["data"]["bought"] is True and reply["data"]["amount"] == money(BUY_NOW)
        assert rejected[0]["code"] in {"auction_ended", "buy_now_unavailable"}, rejected
        wins[f"{names[str(winner.id)]} on {winning_client.label[-1]}"] += 1
        losing_codes[rejected[0]["code"]] += 1

        state = await stored(auction_id)
        assert [(bid.bidder, bid.amount, bid.auto) for bid in state.bids] == [
            (str(winner.id), BUY_NOW, False)
        ]
        assert [(seq, type_) for seq, type_, _ in state.events] == [
            (1, "bid_placed"),
            (2, "auction_ended"),
        ]
        ended = state.events[1][2]
        assert ended["reason"] == "bought"
        assert ended["winner"]["id"] == str(winner.id)
        assert ended["final_price"] == money(BUY_NOW)
        assert ended["winning_bid_id"] == state.bids[0].id == reply["data"]["bid_id"]
        assert (state.status, state.winner, state.final_price) == ("ended", str(winner.id), BUY_NOW)
        assert len(state.requests) == 2

        # Both buyers, on their two instances, saw the sale once, in order.
        expected = await stored_events(auction_id)
        for client, _ in pair:
            seen = await wait_for(
                lambda c=client, i=auction_id: c.last_seq(i) >= 2, DELIVERY_TIMEOUT
            )
            assert seen, f"{client.label} did not see the sale"
            assert not delivery_problems(client, auction_id, expected)
    print(
        f"\n[e2e buy now] rounds={BUY_ROUNDS} sales={sum(wins.values())} "
        f"winners={dict(wins)} losers got={dict(losing_codes)}"
    )
    await clients_close([xa, xb, ya, yb])


async def test_a_buyer_and_a_bidder_at_once_never_both_win(daphnes):
    a, b = daphnes
    (seller, _), (x, x_token), (y, y_token) = await users_with_tokens(3)
    (xa, xb), (ya, yb) = await open_pairs(a, b, [x_token, y_token], "bb")
    outcomes: Counter = Counter()
    for round_ in range(BUY_ROUNDS):
        auction_id = await auction_open_with(
            seller, starting_price="20", min_increment="1", buy_now_price=BUY_NOW
        )
        buyer, bidder = (xa, yb) if round_ % 2 == 0 else (xb, ya)
        for client in (buyer, bidder):
            await client.subscribe(auction_id)
        buy_id, bid_id = f"bb-buy-{round_}", f"bb-bid-{round_}"
        await asyncio.gather(
            send_raw(buyer, {"type": "buy_now", "auction_id": auction_id, "request_id": buy_id}),
            send_raw(
                bidder,
                {
                    "type": "place_bid",
                    "auction_id": auction_id,
                    "amount": "20",
                    "request_id": bid_id,
                },
            ),
        )
        bought = (await await_replies(buyer, buy_id))[0]
        bid = (await await_replies(bidder, bid_id))[0]
        state = await stored(auction_id)
        if bought["type"] == "bid_accepted":
            assert bid["type"] == "bid_rejected" and bid["code"] == "auction_ended", bid
            assert [(b.bidder, b.amount) for b in state.bids] == [(str(x.id), BUY_NOW)]
            assert state.events[-1][1] == "auction_ended" and state.events[-1][2]["reason"] == (
                "bought"
            )
            outcomes["buyer first"] += 1
        else:
            assert bought["code"] == "buy_now_unavailable", bought
            assert bid["type"] == "bid_accepted", bid
            assert [(b.bidder, b.amount) for b in state.bids] == [(str(y.id), Decimal("20.00"))]
            assert state.status == "active" and [t for _, t, _ in state.events] == ["bid_placed"]
            # After the first bid the snapshot offers no buy it now.
            again = await buyer.subscribe(auction_id)
            assert again["data"]["buy_now_price"] is None
            outcomes["bidder first"] += 1
    print(f"\n[e2e buy vs bid] rounds={BUY_ROUNDS} {dict(outcomes)}")
    await clients_close([xa, xb, ya, yb])


# --- c. a repeated request id on both instances --------------------------------------

REPEAT_ROUNDS = 12


async def test_a_repeated_request_id_on_both_instances_has_one_outcome(daphnes):
    a, b = daphnes
    (seller, _), *people = await users_with_tokens(4)
    clients = await open_pairs(a, b, [token for _, token in people], "rep")
    ids = [str(user.id) for user, _ in people]
    step = Decimal("1.00")
    auction_id = await auction_open_with(seller, starting_price="20", min_increment=step)
    model = ModelAuction(
        creator=str(seller.id), starting=Decimal("20.00"), inc=fixed_inc(step), end=10**9
    )
    rng = random.Random(3)
    kinds: Counter = Counter()
    replays = 0
    for round_ in range(REPEAT_ROUNDS):
        # Every fourth round the leader goes again (a max raise); otherwise users take turns.
        who = round_ % len(people)
        if round_ % 4 == 3 and model.leader is not None:
            who = ids.index(model.leader)
        me = ids[who]
        if model.leader == me:
            kind, top = "raise", model.leader_max + step * rng.randint(1, 5)
        elif model.leader is None or round_ % 3 == 0:
            kind = "outbid"
            base = model.leader_max if model.leader_max is not None else model.min_next()
            top = base + step * rng.randint(1, 6)
        elif round_ % 3 == 1:
            kind, top = "tie", model.leader_max
        else:
            kind, top = "below", max(model.min_next(), model.leader_max - step)
        if top < model.min_next():  # the leader's max is used up: only outbidding is left
            kind, top = "outbid", model.min_next() + step * rng.randint(0, 6)
        kinds[kind] += 1
        request_id = f"same-{round_}"
        message = {
            "type": "place_bid",
            "auction_id": auction_id,
            "max_amount": str(top),
            "request_id": request_id,
        }
        on_a, on_b = clients[who]
        before = await stored(auction_id)
        # Twice on instance a's connection and once on b's, all at once.
        await asyncio.gather(
            send_raw(on_a, message), send_raw(on_b, message), send_raw(on_a, message)
        )
        replies = [
            *await await_replies(on_a, request_id, 2),
            *await await_replies(on_b, request_id),
        ]
        assert len(replies) == 3
        assert all(r["type"] == "bid_accepted" for r in replies), replies
        first = without_timestamp(replies[0])
        assert all(without_timestamp(r) == first for r in replies), replies
        outcome = model.offer(me, None, top)
        assert outcome == ("accepted", first["data"]["leading"]), (kind, outcome, first)

        after = await stored(auction_id)
        new_bids = [(b.bidder, b.amount, b.auto) for b in after.bids[len(before.bids) :]]
        assert new_bids == model.bids[len(before.bids) :], (kind, new_bids)
        assert after.bids[: len(before.bids)] == before.bids
        mine = [bid for bid in after.bids if bid.request_id == request_id]
        assert len(mine) == (0 if kind == "raise" else 1), mine
        assert (me, request_id) in after.requests
        assert len(after.requests) == len(before.requests) + 1
        assert (after.leader, after.leader_max, after.current_price) == (
            model.leader,
            model.leader_max,
            model.price(),
        )
        assert not sequence_problems(after), sequence_problems(after)
        replays += 2
    everyone = [c for pair in clients for c in pair]
    for client in everyone:
        await client.subscribe(auction_id, since_seq=0)
    sentinel = await nothing_else_arrives(everyone, auction_id)
    expected = await stored_events(auction_id)
    assert expected[-1][0] >= sentinel
    assert not [p for c in everyone for p in delivery_problems(c, auction_id, expected)]
    print(
        f"\n[e2e repeated request id] rounds={REPEAT_ROUNDS} kinds={dict(kinds)} "
        f"repeats answered alike={replays} bids={len(expected) - 1}"
    )
    await clients_close(everyone)


REUSE_ROUNDS = 10


async def test_a_request_id_repeated_on_two_auctions_at_once_has_one_outcome(daphnes):
    """The same user's request id on two auctions, on the two instances at once: the id
    names one bid whichever auction it names (spec §2, idempotency), so one is decided and
    the other gets its outcome again; neither connection sees an error or dies."""
    a, b = daphnes
    (seller, _), (user, token) = await users_with_tokens(2)
    ((on_a, on_b),) = await open_pairs(a, b, [token], "two")
    outcomes: Counter = Counter()
    for round_ in range(REUSE_ROUNDS):
        first = await auction_open_with(seller, starting_price="20", min_increment="1")
        second = await auction_open_with(seller, starting_price="20", min_increment="1")
        request_id = f"both-{round_}"
        await asyncio.gather(
            send_raw(
                on_a,
                {
                    "type": "place_bid",
                    "auction_id": first,
                    "max_amount": "40",
                    "request_id": request_id,
                },
            ),
            send_raw(
                on_b,
                {
                    "type": "place_bid",
                    "auction_id": second,
                    "max_amount": "40",
                    "request_id": request_id,
                },
            ),
        )
        replies = [
            (await await_replies(on_a, request_id))[0],
            (await await_replies(on_b, request_id))[0],
        ]
        assert all(r["type"] == "bid_accepted" for r in replies), replies
        assert replies[0]["data"] == replies[1]["data"], replies
        bids = [*(await stored(first)).bids, *(await stored(second)).bids]
        assert [(bid.bidder, bid.request_id) for bid in bids] == [(str(user.id), request_id)]
        outcomes["first" if (await stored(first)).bids else "second"] += 1
    pong = [await c.request({"type": "ping"}) for c in (on_a, on_b)]
    assert [p["type"] for p in pong] == ["pong", "pong"]
    print(f"\n[e2e request id on two auctions] rounds={REUSE_ROUNDS} decided on {dict(outcomes)}")
    await clients_close([on_a, on_b])
