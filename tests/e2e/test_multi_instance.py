"""Delivery over real sockets across two daphne instances: every event, once, in order."""

import asyncio

import pytest

from tests.e2e.conftest import (
    WsClient,
    auction_open,
    bid_stream,
    clients_close,
    delivery_problems,
    last_seq,
    nothing_else_arrives,
    percentile,
    stored_events,
    users_with_tokens,
    wait_for,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BIDDERS = 4
OBSERVERS = 12
BID_SECONDS = 5.0
MAX_BIDS = 5000
DELIVERY_TIMEOUT = 20.0


async def test_every_observer_on_either_instance_gets_every_bid_once_in_order(daphnes):
    a, b = daphnes
    seller, *people = await users_with_tokens(1 + BIDDERS + OBSERVERS)
    auction_id = await auction_open(seller[0])
    bidder_tokens = [token for _, token in people[:BIDDERS]]
    observer_tokens = [token for _, token in people[BIDDERS:]]

    # Split across the instances; half the clients authenticate by header, half by query.
    bidders = [
        await WsClient.open((a, b)[i % 2], token, label=f"b{i}", header=i < 2)
        for i, token in enumerate(bidder_tokens)
    ]
    observers = [
        await WsClient.open((a, b)[i % 2], token, label=f"o{i}", header=i % 4 == 1)
        for i, token in enumerate(observer_tokens)
    ]
    for observer in observers:
        reply = await observer.subscribe(auction_id)
        assert reply["data"]["seq"] == 0

    # Observer 0 (on instance a) leaves mid-stream and resumes on instance b.
    mover = observers[0]
    first_leg: list = []

    async def leave_and_come_back() -> WsClient:
        await wait_for(lambda: len(mover.events) >= 20, timeout=BID_SECONDS)
        await asyncio.sleep(0.5)
        await mover.close()
        first_leg.extend(mover.events)
        await asyncio.sleep(0.3)  # bids go on while it is away
        back = await WsClient.open(b, observer_tokens[0], label="o0r")
        await back.subscribe(auction_id, since_seq=mover.last_seq(auction_id))
        return back

    stream, returned = await asyncio.gather(
        bid_stream(bidders, auction_id, seconds=BID_SECONDS, max_bids=MAX_BIDS),
        leave_and_come_back(),
    )
    observers[0] = returned
    final = await last_seq(auction_id)
    assert final == stream.accepted > 0

    await wait_for(
        lambda: all(o.last_seq(auction_id) >= final for o in observers),
        timeout=DELIVERY_TIMEOUT,
    )
    sentinel = await nothing_else_arrives(observers, auction_id)
    expected = await stored_events(auction_id)
    assert [seq for seq, _, _ in expected] == list(range(1, sentinel + 1))
    assert {bid_id for _, _, bid_id in expected[:final]} == set(stream.sent_at)

    # The mover's two connections together must be exactly the stored stream.
    returned.events[:0] = first_leg
    problems = [p for o in observers for p in delivery_problems(o, auction_id, expected)]

    delivered = sum(len(o.seqs(auction_id)) for o in observers)
    distinct = sum(len(set(o.seqs(auction_id))) for o in observers)
    lost = OBSERVERS * sentinel - distinct
    latencies = [
        (r.at - stream.sent_at[r.message["data"]["bid_id"]]) * 1000
        for o in observers[1:]  # the mover's replayed events would measure its absence
        for r in o.events
        if r.message["data"].get("bid_id") in stream.sent_at  # not the sentinel
    ]
    print(
        f"\n[e2e delivery] instances=2 bidders={BIDDERS} observers={OBSERVERS} "
        f"bids accepted={stream.accepted} in {stream.seconds:.1f}s "
        f"({stream.accepted / stream.seconds:.0f}/s) rejected={dict(stream.rejected)} "
        f"events delivered={delivered} lost={lost} duplicated={delivered - distinct} "
        f"mover resumed at seq {first_leg[-1].message['seq'] if first_leg else 0} "
        f"latency bid->observer p50={percentile(latencies, 0.5):.1f}ms "
        f"p99={percentile(latencies, 0.99):.1f}ms max={max(latencies):.1f}ms "
        f"(n={len(latencies)})"
    )
    assert not problems, problems
    assert lost == 0 and delivered == distinct

    # The servers still answer.
    pong = await observers[-1].request({"type": "ping"})
    assert pong["type"] == "pong"
    await clients_close(bidders + observers)
