"""The WebSocket API of spec §7: `place_bid` with `max_amount`, the `buy_now` message, the
events automatic bids and sales send, and bad input for both."""

from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from channels.db import database_sync_to_async

from accounts.models import User
from auctions.formats import iso
from auctions.models import Auction, AuctionEvent
from auctions.services import auction_create
from bidding.services import BidAccepted, bid_place
from tests.factories import UserFactory
from tests.realtime.conftest import (
    assert_alive,
    assert_quiet,
    bid_count,
    make_auction,
    receive_events,
    receive_json,
    request,
    send_json,
    send_text,
    seqs,
    subscribe,
)

pytestmark = pytest.mark.django_db(transaction=True)


def max_bid(auction: Any, request_id: str = "m-1", **fields: Any) -> dict[str, Any]:
    return {"type": "place_bid", "auction_id": str(auction.id), "request_id": request_id, **fields}


def buy(auction_id: Any, request_id: str = "buy-1") -> dict[str, Any]:
    return {"type": "buy_now", "auction_id": str(auction_id), "request_id": request_id}


@database_sync_to_async
def place_max(auction: Auction, user: User, max_amount: str) -> BidAccepted:
    return bid_place(auction_id=auction.id, bidder=user, max_amount=max_amount)


@database_sync_to_async
def auction_state(auction: Auction) -> Auction:
    return Auction.objects.select_related("winner", "highest_bidder").get(id=auction.id)


@database_sync_to_async
def stored_events(auction: Auction) -> list[AuctionEvent]:
    return list(AuctionEvent.objects.filter(auction=auction).order_by("seq"))


make_user = database_sync_to_async(UserFactory)


def person(user: User) -> dict[str, str]:
    return {"id": str(user.id), "name": user.username}


def without_max(frames: list[dict[str, Any]], *maxes: str) -> None:
    """No frame names a max, nor spells one of `maxes` anywhere in its data."""
    for frame in frames:
        assert "max_amount" not in frame.get("data", {}), frame
        text = repr(frame.get("data"))
        for value in maxes:
            assert value not in text, frame


class TestMaxBids:
    async def test_a_max_bid_is_accepted_with_leading_and_its_max(
        self, connect, alice_token, auction
    ):
        client = await connect(alice_token)
        reply = await request(client, max_bid(auction, max_amount="50"))
        assert reply["type"] == "bid_accepted", reply
        assert (reply["request_id"], reply["auction_id"]) == ("m-1", str(auction.id))
        assert reply["data"] == {
            "bid_id": reply["data"]["bid_id"],
            "amount": "10.00",
            "seq": 1,
            "current_price": "10.00",
            "min_next_bid": "11.00",
            "end_time": iso(auction.end_time),
            "leading": True,
            "max_amount": "50.00",
            "bought": False,
        }
        state = await auction_state(auction)
        assert state.leader_max == Decimal("50.00")

    async def test_a_max_with_an_amount_bids_the_amount(self, connect, alice_token, auction):
        client = await connect(alice_token)
        reply = await request(client, max_bid(auction, amount=15, max_amount=50.5))
        assert (reply["data"]["amount"], reply["data"]["max_amount"]) == ("15.00", "50.50")

    async def test_a_null_max_with_an_amount_is_a_straight_bid(self, connect, alice_token, auction):
        client = await connect(alice_token)
        reply = await request(client, max_bid(auction, amount="20", max_amount=None))
        assert reply["type"] == "bid_accepted", reply
        assert (reply["data"]["amount"], reply["data"]["max_amount"]) == ("20.00", "20.00")

    async def test_a_higher_max_sends_the_automatic_bid_as_its_own_event_first(
        self, connect, alice_token, carol_token, auction, alice, bob
    ):
        await place_max(auction, bob, "50")
        watcher = await connect(carol_token)
        await subscribe(watcher, auction)
        client = await connect(alice_token)

        reply = await request(client, max_bid(auction, max_amount="80"))

        assert reply["type"] == "bid_accepted", reply
        data = reply["data"]
        assert (data["amount"], data["leading"], data["max_amount"]) == ("51.00", True, "80.00")
        assert (data["seq"], data["current_price"], data["min_next_bid"]) == (3, "51.00", "52.00")
        events = await receive_events(watcher, 2)
        assert seqs(events) == [2, 3]
        automatic, own = events
        assert automatic["type"] == own["type"] == "bid_placed"
        assert automatic["data"]["bidder"] == person(bob)
        assert (automatic["data"]["auto"], automatic["data"]["amount"]) == (True, "50.00")
        assert own["data"]["bidder"] == own["data"]["highest_bidder"] == person(alice)
        assert (own["data"]["auto"], own["data"]["amount"]) == (False, "51.00")
        assert own["data"]["bid_id"] == data["bid_id"]
        without_max(events, "80.00")
        await assert_quiet(watcher)

    async def test_a_lower_max_is_answered_and_the_reply_says_not_leading(
        self, connect, bob_token, carol_token, auction, alice, bob
    ):
        await place_max(auction, alice, "87.65")
        watcher = await connect(carol_token)
        await subscribe(watcher, auction)
        client = await connect(bob_token)

        reply = await request(client, max_bid(auction, max_amount="30"))

        data = reply["data"]
        assert reply["type"] == "bid_accepted", reply
        assert (data["leading"], data["amount"], data["max_amount"]) == (False, "30.00", "30.00")
        assert (data["seq"], data["current_price"]) == (3, "31.00")
        events = await receive_events(watcher, 2)
        assert seqs(events) == [2, 3]
        assert [
            (e["data"]["bidder"]["name"], e["data"]["amount"], e["data"]["auto"]) for e in events
        ] == [("bob", "30.00", False), ("alice", "31.00", True)]
        assert all(e["data"]["highest_bidder"] == person(alice) for e in events)
        without_max(events, "87.65")

    async def test_other_subscribers_never_see_a_max(
        self, connect, alice_token, bob_token, carol_token, auction
    ):
        watcher = await connect(carol_token)
        await subscribe(watcher, auction)
        alice_client = await connect(alice_token)
        bob_client = await connect(bob_token)
        await request(alice_client, max_bid(auction, "a-1", max_amount="87.65"))
        await request(bob_client, max_bid(auction, "b-1", max_amount="43.21"))
        await request(alice_client, max_bid(auction, "a-2", max_amount="91.23"))  # a raise
        events = await receive_events(watcher, 3)
        assert seqs(events) == [1, 2, 3]
        without_max(events, "87.65", "91.23")
        await assert_quiet(watcher)  # the raise sent no event
        late = await connect(carol_token)
        snapshot = (await subscribe(late, auction, since_seq=0))["data"]
        replayed = await receive_events(late, 3)
        assert replayed == events
        without_max([{"data": snapshot}], "87.65", "91.23")
        assert snapshot["current_price"] == "44.21"

    async def test_a_repeated_max_bid_gets_the_same_reply_and_no_second_event(
        self, connect, bob_token, carol_token, auction, alice
    ):
        await place_max(auction, alice, "50")
        watcher = await connect(carol_token)
        await subscribe(watcher, auction)
        client = await connect(bob_token)
        first = await request(client, max_bid(auction, "same", max_amount="30"))
        again = await request(client, max_bid(auction, "same", max_amount="30"))
        del first["timestamp"], again["timestamp"]
        assert again == first
        assert seqs(await receive_events(watcher, 2)) == [2, 3]
        await assert_quiet(watcher)
        assert await bid_count(auction) == 3

    async def test_concurrent_max_bids_reach_a_subscriber_once_each_in_seq_order(
        self, connect, token_for, carol_token, auction
    ):
        watcher = await connect(carol_token)
        await subscribe(watcher, auction)
        maxes = ["20", "30", "40", "50", "60"]
        users = [await make_user() for _ in maxes]
        clients = [await connect(await database_sync_to_async(token_for)(user)) for user in users]
        for number, (client, top) in enumerate(zip(clients, maxes, strict=True)):
            await send_json(client, max_bid(auction, f"c-{number}", max_amount=top))
        replies = [await receive_json(client) for client in clients]

        assert {reply["type"] for reply in replies} <= {"bid_accepted", "bid_rejected"}
        assert replies[-1]["type"] == "bid_accepted" and replies[-1]["data"]["leading"]
        stored = await stored_events(auction)
        events = await receive_events(watcher, len(stored))
        assert seqs(events) == list(range(1, len(stored) + 1))
        assert [e["data"]["bid_id"] for e in events] == [e.payload["bid_id"] for e in stored]
        assert events[-1]["data"]["highest_bidder"] == person(users[-1])
        assert events[-1]["data"]["current_price"] == "51.00"
        without_max(events, "60.00")
        await assert_quiet(watcher)

    async def test_the_snapshot_shows_the_table_and_the_increment_at_the_price(
        self, connect, alice_token, seller
    ):
        table = await database_sync_to_async(auction_create)(
            creator=seller,
            item_name="Lamp",
            starting_price="99",
            increments="standard",
            duration_seconds=3600,
        )
        client = await connect(alice_token)
        data = (await subscribe(client, table))["data"]
        assert data["increments"][:4] == [
            ["0.00", "0.05"],
            ["1.00", "0.25"],
            ["5.00", "0.50"],
            ["25.00", "1.00"],
        ]
        assert len(data["increments"]) == 10
        assert (data["min_increment"], data["min_next_bid"]) == ("1.00", "99.00")
        reply = await request(client, max_bid(table, amount="100"))
        assert reply["data"]["min_next_bid"] == "102.50"
        (event,) = await receive_events(client, 1)
        assert event["data"]["min_next_bid"] == "102.50"
        again = (await subscribe(client, table))["data"]
        assert (again["min_increment"], again["min_next_bid"]) == ("2.50", "102.50")


class TestBuyNow:
    async def test_buying_is_accepted_and_subscribers_see_the_bid_then_the_end(
        self, connect, alice_token, carol_token, seller, alice
    ):
        offered = await make_auction(item__owner=seller, buy_now_price=Decimal("200.00"))
        watcher = await connect(carol_token)
        assert (await subscribe(watcher, offered))["data"]["buy_now_price"] == "200.00"
        client = await connect(alice_token)

        reply = await request(client, buy(offered.id))

        assert reply["type"] == "bid_accepted", reply
        assert (reply["request_id"], reply["auction_id"]) == ("buy-1", str(offered.id))
        data = reply["data"]
        assert (data["bought"], data["leading"]) == (True, True)
        assert (data["amount"], data["max_amount"], data["current_price"]) == (
            "200.00",
            "200.00",
            "200.00",
        )
        assert data["seq"] == 2
        placed, ended = await receive_events(watcher, 2)
        assert (placed["type"], placed["seq"]) == ("bid_placed", 1)
        assert placed["data"]["bid_id"] == data["bid_id"]
        assert placed["data"]["bidder"] == person(alice)
        assert (ended["type"], ended["seq"]) == ("auction_ended", 2)
        assert ended["data"] == {
            "status": "ended",
            "final_price": "200.00",
            "winner": person(alice),
            "winning_bid_id": data["bid_id"],
            "reserve_met": True,
            "reason": "bought",
        }
        state = await auction_state(offered)
        assert (state.status, state.winner_id) == ("ended", alice.id)
        after = (await subscribe(watcher, offered))["data"]
        assert (after["status"], after["buy_now_price"]) == ("ended", None)
        assert after["winner"] == person(alice)

    async def test_a_second_buyer_is_rejected_auction_ended(
        self, connect, alice_token, bob_token, seller
    ):
        offered = await make_auction(item__owner=seller, buy_now_price=Decimal("200.00"))
        await request(await connect(alice_token), buy(offered.id))
        client = await connect(bob_token)
        reply = await request(client, buy(offered.id, "buy-2"))
        assert (reply["type"], reply["code"]) == ("bid_rejected", "auction_ended"), reply
        assert reply["request_id"] == "buy-2"
        assert await bid_count(offered) == 1
        await assert_alive(client)

    async def test_buying_after_a_bid_is_rejected_buy_now_unavailable(
        self, connect, alice_token, seller, bob
    ):
        offered = await make_auction(item__owner=seller, buy_now_price=Decimal("200.00"))
        await place_max(offered, bob, "50")
        client = await connect(alice_token)
        reply = await request(client, buy(offered.id))
        assert (reply["type"], reply["code"]) == ("bid_rejected", "buy_now_unavailable"), reply
        assert reply["data"] == {"current_price": "10.00", "min_next_bid": "11.00"}
        await assert_alive(client)

    async def test_buying_without_a_price_is_rejected_buy_now_unavailable(
        self, connect, alice_token, auction
    ):
        client = await connect(alice_token)
        reply = await request(client, buy(auction.id))
        assert (reply["type"], reply["code"]) == ("bid_rejected", "buy_now_unavailable"), reply
        assert await bid_count(auction) == 0

    async def test_buying_ones_own_auction_is_rejected_own_auction(
        self, connect, seller_token, seller
    ):
        offered = await make_auction(item__owner=seller, buy_now_price=Decimal("200.00"))
        client = await connect(seller_token)
        reply = await request(client, buy(offered.id))
        assert (reply["type"], reply["code"]) == ("bid_rejected", "own_auction"), reply

    async def test_buying_an_unknown_auction_is_rejected_not_found(self, connect, alice_token):
        client = await connect(alice_token)
        missing = uuid4()
        reply = await request(client, buy(missing))
        assert (reply["type"], reply["code"]) == ("bid_rejected", "not_found"), reply
        assert (reply["request_id"], reply["auction_id"]) == ("buy-1", str(missing))
        await assert_alive(client)

    async def test_a_repeated_purchase_gets_the_same_reply(self, connect, alice_token, seller):
        offered = await make_auction(item__owner=seller, buy_now_price=Decimal("200.00"))
        client = await connect(alice_token)
        first = await request(client, buy(offered.id, "same"))
        again = await request(client, buy(offered.id, "same"))
        del first["timestamp"], again["timestamp"]
        assert again == first
        assert first["data"]["bought"] is True
        assert await bid_count(offered) == 1

    @pytest.mark.parametrize(
        "auction_id",
        [
            pytest.param(None, id="missing"),
            pytest.param("null", id="null"),
            pytest.param(123, id="number"),
            pytest.param("", id="empty"),
            pytest.param("not-a-uuid", id="bad-uuid"),
        ],
    )
    async def test_buy_now_without_a_valid_auction_id_is_an_error_invalid_message(
        self, connect, alice_token, auction_id
    ):
        message: dict[str, Any] = {"type": "buy_now", "request_id": "buy-1"}
        if auction_id == "null":
            message["auction_id"] = None
        elif auction_id is not None:
            message["auction_id"] = auction_id
        client = await connect(alice_token)
        reply = await request(client, message)
        assert (reply["type"], reply["code"]) == ("error", "invalid_message"), reply
        assert reply["request_id"] == "buy-1"
        assert isinstance(reply["message"], str) and reply["message"]
        await assert_alive(client)

    async def test_buy_now_with_a_bad_request_id_is_an_error_and_buys_nothing(
        self, connect, alice_token, seller
    ):
        offered = await make_auction(item__owner=seller, buy_now_price=Decimal("200.00"))
        client = await connect(alice_token)
        reply = await request(
            client, {"type": "buy_now", "auction_id": str(offered.id), "request_id": 42}
        )
        assert (reply["type"], reply["code"]) == ("error", "invalid_message"), reply
        assert "request_id" not in reply
        await assert_alive(client)
        assert await bid_count(offered) == 0


class TestBadMaxAmount:
    @pytest.mark.parametrize(
        "fields",
        [
            pytest.param('"max_amount":null', id="null-without-amount"),
            pytest.param('"max_amount":"abc"', id="string"),
            pytest.param('"max_amount":""', id="empty-string"),
            pytest.param('"max_amount":-5', id="negative"),
            pytest.param('"max_amount":0', id="zero"),
            pytest.param('"max_amount":10.001', id="three-decimals"),
            pytest.param('"max_amount":"10.001"', id="three-decimals-string"),
            pytest.param('"max_amount":10000000000', id="too-large"),
            pytest.param('"max_amount":1e309', id="huge-exponent"),
            pytest.param('"max_amount":true', id="boolean"),
            pytest.param('"max_amount":[50]', id="list"),
            pytest.param('"max_amount":{}', id="object"),
            pytest.param('"amount":30,"max_amount":20', id="max-below-amount"),
            pytest.param('"amount":"abc","max_amount":50', id="bad-amount-with-max"),
        ],
    )
    async def test_a_malformed_max_is_rejected_invalid_amount_and_changes_nothing(
        self, connect, alice_token, auction, fields
    ):
        client = await connect(alice_token)
        await send_text(
            client,
            f'{{"type":"place_bid","auction_id":"{auction.id}","request_id":"m-1",{fields}}}',
        )
        reply = await receive_json(client)
        assert (reply["type"], reply["code"]) == ("bid_rejected", "invalid_amount"), reply
        assert (reply["request_id"], reply["auction_id"]) == ("m-1", str(auction.id))
        assert isinstance(reply["message"], str) and reply["message"]
        await assert_alive(client)
        state = await auction_state(auction)
        assert (state.bid_count, state.version, state.leader_max) == (0, 0, None)

    async def test_a_max_below_min_next_bid_is_rejected_bid_too_low(
        self, connect, alice_token, auction, bob
    ):
        await place_max(auction, bob, "20")
        client = await connect(alice_token)
        reply = await request(client, max_bid(auction, max_amount="10.50"))
        assert (reply["type"], reply["code"]) == ("bid_rejected", "bid_too_low"), reply
        assert reply["data"] == {"current_price": "10.00", "min_next_bid": "11.00"}
        await assert_alive(client)

    async def test_a_raise_not_above_the_max_is_too_low_and_a_straight_bid_already_highest(
        self, connect, alice_token, auction
    ):
        client = await connect(alice_token)
        await request(client, max_bid(auction, "m-1", max_amount="50"))
        low = await request(client, max_bid(auction, "m-2", max_amount="50"))
        straight = await request(client, max_bid(auction, "m-3", amount="60"))
        assert (low["type"], low["code"]) == ("bid_rejected", "bid_too_low")
        assert (straight["type"], straight["code"]) == ("bid_rejected", "already_highest")
        state = await auction_state(auction)
        assert (state.leader_max, state.bid_count) == (Decimal("50.00"), 1)
        await assert_alive(client)
