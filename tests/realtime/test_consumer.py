"""The WebSocket API's messages (spec §2): every client message, its reply, and bad input."""

import json
import time
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from django.db import OperationalError
from django.test import override_settings
from django.utils import timezone

from auctions.formats import iso
from auctions.models import AuctionStatus
from realtime import consumers
from tests.realtime.conftest import (
    assert_alive,
    assert_quiet,
    bid_count,
    make_auction,
    place_bid,
    place_bids,
    receive_events,
    receive_frame,
    receive_json,
    request,
    send_bytes,
    send_json,
    send_text,
    seqs,
    subscribe,
)

pytestmark = pytest.mark.django_db(transaction=True)

SNAPSHOT_FIELDS = {
    "id",
    "item",
    "status",
    "starting_price",
    "current_price",
    "min_next_bid",
    "min_increment",
    "increments",
    "buy_now_price",
    "reserve_met",
    "bid_count",
    "highest_bidder",
    "start_time",
    "end_time",
    "seq",
    "winner",
    "viewers",
}
BID_PLACED_FIELDS = {
    "bid_id",
    "amount",
    "bidder",
    "auto",
    "highest_bidder",
    "current_price",
    "min_next_bid",
    "bid_count",
    "end_time",
}


def assert_timestamp(message: dict[str, Any]) -> None:
    """Server time in Unix seconds, a number with millisecond precision."""
    timestamp = message["timestamp"]
    assert isinstance(timestamp, int | float) and not isinstance(timestamp, bool)
    assert round(timestamp, 3) == timestamp
    assert abs(timestamp - time.time()) < 60


def assert_error(reply: dict[str, Any], code: str, request_id: str | None = None) -> None:
    assert reply["type"] == "error", reply
    assert reply["code"] == code, reply
    assert isinstance(reply["message"], str) and reply["message"]
    assert reply.get("request_id") == request_id, reply
    assert_timestamp(reply)


def bid_message(auction_id: Any, amount: Any, request_id: str = "bid-1") -> dict[str, Any]:
    return {
        "type": "place_bid",
        "auction_id": str(auction_id),
        "amount": amount,
        "request_id": request_id,
    }


class TestPing:
    async def test_ping_is_answered_with_pong_echoing_the_request_id(self, connect, alice_token):
        client = await connect(alice_token)
        reply = await request(client, {"type": "ping", "request_id": "p-1"})
        assert set(reply) == {"type", "request_id", "timestamp"}
        assert (reply["type"], reply["request_id"]) == ("pong", "p-1")

    async def test_pong_timestamp_is_server_time_in_seconds_with_millisecond_precision(
        self, connect, alice_token
    ):
        client = await connect(alice_token)
        before = time.time()
        reply = await request(client, {"type": "ping"})
        assert before - 0.001 <= reply["timestamp"] <= time.time() + 0.001
        assert_timestamp(reply)

    async def test_a_reply_to_a_message_without_request_id_has_none(self, connect, alice_token):
        client = await connect(alice_token)
        reply = await request(client, {"type": "ping"})
        assert "request_id" not in reply

    async def test_a_request_id_of_64_characters_is_echoed(self, connect, alice_token):
        client = await connect(alice_token)
        reply = await request(client, {"type": "ping", "request_id": "r" * 64})
        assert reply["request_id"] == "r" * 64


class TestSubscribe:
    async def test_subscribe_replies_subscribed_with_the_auction_snapshot(
        self, connect, alice_token, auction
    ):
        client = await connect(alice_token)
        reply = await subscribe(client, auction, request_id="s-1")
        assert reply["request_id"] == "s-1"
        assert reply["auction_id"] == str(auction.id)
        assert_timestamp(reply)
        assert set(reply["data"]) == SNAPSHOT_FIELDS
        assert reply["data"] == {
            "id": str(auction.id),
            "item": {
                "id": str(auction.item.id),
                "name": auction.item.name,
                "description": auction.item.description,
                "category": None,
                "images": [],
            },
            "status": "active",
            "starting_price": "10.00",
            "current_price": "10.00",
            "min_next_bid": "10.00",
            "min_increment": "1.00",
            "increments": None,
            "buy_now_price": None,
            "reserve_met": True,
            "bid_count": 0,
            "highest_bidder": None,
            "start_time": iso(auction.start_time),
            "end_time": iso(auction.end_time),
            "seq": 0,
            "winner": None,
            "viewers": 1,
        }

    async def test_snapshot_shows_the_state_after_earlier_bids(
        self, connect, carol_token, auction, alice, bob
    ):
        await place_bids(auction, [alice, bob])
        client = await connect(carol_token)
        data = (await subscribe(client, auction))["data"]
        assert data["current_price"] == "11.00"
        assert data["min_next_bid"] == "12.00"
        assert data["bid_count"] == 2
        assert data["highest_bidder"] == {"id": str(bob.id), "name": "bob"}
        assert data["seq"] == 2

    async def test_subscribe_without_since_seq_replays_nothing(
        self, connect, carol_token, auction, alice, bob
    ):
        await place_bids(auction, [alice, bob])
        client = await connect(carol_token)
        await subscribe(client, auction)
        await assert_alive(client)

    async def test_subscribe_with_since_seq_replays_the_later_stored_events_in_order(
        self, connect, carol_token, auction, alice, bob
    ):
        placed = await place_bids(auction, [alice, bob, alice])
        client = await connect(carol_token)
        reply = await subscribe(client, auction, since_seq=1)
        assert reply["data"]["seq"] == 3
        events = await receive_events(client, 2)
        assert seqs(events) == [2, 3]
        assert [event["data"]["bid_id"] for event in events] == [
            str(bid.bid_id) for bid in placed[1:]
        ]
        await assert_alive(client)

    async def test_live_events_follow_the_replay(self, connect, carol_token, auction, alice, bob):
        await place_bids(auction, [alice, bob, alice])
        client = await connect(carol_token)
        await subscribe(client, auction, since_seq=1)
        await receive_events(client, 2)
        await place_bid(auction, bob, "13.00")
        (live,) = await receive_events(client, 1)
        assert (live["type"], live["seq"], live["data"]["amount"]) == ("bid_placed", 4, "13.00")

    async def test_since_seq_zero_replays_every_stored_event(
        self, connect, carol_token, auction, alice, bob
    ):
        await place_bids(auction, [alice, bob, alice])
        client = await connect(carol_token)
        await subscribe(client, auction, since_seq=0)
        assert seqs(await receive_events(client, 3)) == [1, 2, 3]
        await assert_alive(client)

    async def test_since_seq_ahead_of_the_auction_replays_nothing_and_live_events_still_arrive(
        self, connect, carol_token, auction, alice, bob
    ):
        await place_bids(auction, [alice, bob])
        client = await connect(carol_token)
        await subscribe(client, auction, since_seq=50)
        await assert_alive(client)
        await place_bid(auction, alice, "12.00")
        assert seqs(await receive_events(client, 1)) == [3]

    async def test_a_replay_longer_than_a_page_arrives_whole_and_in_order(
        self, connect, carol_token, auction, alice, bob, monkeypatch
    ):
        monkeypatch.setattr(consumers.AuctionConsumer.reads, "page_size", 2)
        await place_bids(auction, [alice, bob, alice, bob, alice])
        client = await connect(carol_token)
        await subscribe(client, auction, since_seq=0)
        assert seqs(await receive_events(client, 5)) == [1, 2, 3, 4, 5]
        await assert_alive(client)

    async def test_an_event_has_the_spec_fields(self, connect, carol_token, auction, alice):
        client = await connect(carol_token)
        await subscribe(client, auction)
        accepted = await place_bid(auction, alice, "12.50")
        (event,) = await receive_events(client, 1)
        assert set(event) == {"type", "auction_id", "seq", "timestamp", "data"}
        assert_timestamp(event)
        assert set(event["data"]) == BID_PLACED_FIELDS
        assert event["data"] == {
            "bid_id": str(accepted.bid_id),
            "amount": "12.50",
            "bidder": {"id": str(alice.id), "name": "alice"},
            "auto": False,
            "highest_bidder": {"id": str(alice.id), "name": "alice"},
            "current_price": "12.50",
            "min_next_bid": "13.50",
            "bid_count": 1,
            "end_time": iso(auction.end_time),
        }

    async def test_a_replayed_event_reads_the_same_as_the_live_one(
        self, connect, bob_token, carol_token, auction, alice
    ):
        live_watcher = await connect(bob_token)
        await subscribe(live_watcher, auction)
        await place_bid(auction, alice, "12.50")
        (live,) = await receive_events(live_watcher, 1)
        late_watcher = await connect(carol_token)
        await subscribe(late_watcher, auction, since_seq=0)
        (replayed,) = await receive_events(late_watcher, 1)
        assert replayed == live

    async def test_subscribing_again_to_the_same_auction_does_not_duplicate_events(
        self, connect, carol_token, auction, alice
    ):
        client = await connect(carol_token)
        await subscribe(client, auction)
        await subscribe(client, auction)
        await place_bid(auction, alice, "10.00")
        assert seqs(await receive_events(client, 1)) == [1]
        await assert_quiet(client)

    async def test_subscribe_to_an_unknown_auction_is_an_error_not_found(
        self, connect, alice_token
    ):
        client = await connect(alice_token)
        reply = await request(
            client, {"type": "subscribe", "auction_id": str(uuid4()), "request_id": "s-1"}
        )
        assert_error(reply, "not_found", "s-1")
        await assert_alive(client)

    async def test_a_cancelled_auction_can_be_subscribed_to(self, connect, alice_token, seller):
        auction = await make_auction(item__owner=seller, status=AuctionStatus.CANCELLED)
        client = await connect(alice_token)
        reply = await subscribe(client, auction)
        assert reply["data"]["status"] == "cancelled"


class TestUnsubscribe:
    async def test_unsubscribe_replies_unsubscribed(self, connect, alice_token, auction):
        client = await connect(alice_token)
        await subscribe(client, auction)
        reply = await request(
            client, {"type": "unsubscribe", "auction_id": str(auction.id), "request_id": "u-1"}
        )
        assert (reply["type"], reply["request_id"]) == ("unsubscribed", "u-1")
        assert reply["auction_id"] == str(auction.id)
        assert_timestamp(reply)

    async def test_no_events_arrive_after_unsubscribe(
        self, connect, carol_token, auction, seller, alice
    ):
        other = await make_auction(item__owner=seller)
        client = await connect(carol_token)
        await subscribe(client, auction)
        await subscribe(client, other)
        await request(client, {"type": "unsubscribe", "auction_id": str(auction.id)})
        await place_bid(auction, alice, "10.00")
        await place_bid(other, alice, "10.00")
        # Published in this order: had the first been delivered, it would come first.
        (event,) = await receive_events(client, 1)
        assert event["auction_id"] == str(other.id)
        await assert_quiet(client)

    async def test_unsubscribe_from_an_auction_not_subscribed_still_replies_unsubscribed(
        self, connect, alice_token, auction
    ):
        client = await connect(alice_token)
        reply = await request(client, {"type": "unsubscribe", "auction_id": str(auction.id)})
        assert reply["type"] == "unsubscribed"


class TestPlaceBid:
    async def test_a_valid_bid_is_accepted_with_the_auction_state_after_it(
        self, connect, alice_token, auction
    ):
        client = await connect(alice_token)
        reply = await request(client, bid_message(auction.id, 12.5, "b-1"))
        assert reply["type"] == "bid_accepted", reply
        assert (reply["request_id"], reply["auction_id"]) == ("b-1", str(auction.id))
        assert_timestamp(reply)
        data = reply["data"]
        UUID(data["bid_id"])
        assert data == {
            "bid_id": data["bid_id"],
            "amount": "12.50",
            "seq": 1,
            "current_price": "12.50",
            "min_next_bid": "13.50",
            "end_time": iso(auction.end_time),
            "leading": True,
            "max_amount": "12.50",
            "bought": False,
        }
        assert await bid_count(auction) == 1

    async def test_a_bid_without_request_id_is_accepted_too(self, connect, alice_token, auction):
        client = await connect(alice_token)
        reply = await request(
            client, {"type": "place_bid", "auction_id": str(auction.id), "amount": "10"}
        )
        assert reply["type"] == "bid_accepted", reply
        assert "request_id" not in reply

    @pytest.mark.parametrize("amount", ["150.10", 150.1])
    async def test_an_amount_as_a_numeric_string_or_a_number_is_parsed_exactly(
        self, connect, alice_token, auction, amount
    ):
        client = await connect(alice_token)
        reply = await request(client, bid_message(auction.id, amount))
        assert reply["data"]["amount"] == "150.10"

    async def test_the_bidder_also_gets_the_event_when_subscribed(
        self, connect, alice_token, auction
    ):
        client = await connect(alice_token)
        await subscribe(client, auction)
        reply = await request(client, bid_message(auction.id, "10.00"))
        (event,) = await receive_events(client, 1)
        assert event["data"]["bid_id"] == reply["data"]["bid_id"]

    async def assert_rejected(
        self, client: Any, message: dict[str, Any], code: str
    ) -> dict[str, Any]:
        reply = await request(client, message)
        assert reply["type"] == "bid_rejected", reply
        assert reply["code"] == code, reply
        assert reply["request_id"] == message.get("request_id")
        assert reply["auction_id"] == message["auction_id"]
        assert isinstance(reply["message"], str) and reply["message"]
        assert_timestamp(reply)
        await assert_alive(client)
        return reply

    async def test_a_bid_below_min_next_bid_is_rejected_bid_too_low(
        self, connect, alice_token, auction
    ):
        client = await connect(alice_token)
        reply = await self.assert_rejected(client, bid_message(auction.id, "9.99"), "bid_too_low")
        assert reply["data"] == {"current_price": "10.00", "min_next_bid": "10.00"}
        assert await bid_count(auction) == 0

    async def test_a_bid_on_a_pending_auction_is_rejected_auction_not_active(
        self, connect, alice_token, seller
    ):
        now = timezone.now()
        pending = await make_auction(
            item__owner=seller,
            status=AuctionStatus.PENDING,
            start_time=now + timedelta(hours=1),
            end_time=now + timedelta(hours=2),
        )
        client = await connect(alice_token)
        await self.assert_rejected(client, bid_message(pending.id, 20), "auction_not_active")

    async def test_a_bid_on_a_cancelled_auction_is_rejected_auction_not_active(
        self, connect, alice_token, seller
    ):
        cancelled = await make_auction(item__owner=seller, status=AuctionStatus.CANCELLED)
        client = await connect(alice_token)
        await self.assert_rejected(client, bid_message(cancelled.id, 20), "auction_not_active")

    async def test_a_bid_on_an_ended_auction_is_rejected_auction_ended(
        self, connect, alice_token, seller
    ):
        ended = await make_auction(item__owner=seller, status=AuctionStatus.ENDED)
        client = await connect(alice_token)
        await self.assert_rejected(client, bid_message(ended.id, 20), "auction_ended")

    async def test_a_bid_after_end_time_is_rejected_auction_ended_before_it_is_closed(
        self, connect, alice_token, seller
    ):
        now = timezone.now()
        overdue = await make_auction(
            item__owner=seller,
            start_time=now - timedelta(hours=2),
            end_time=now - timedelta(seconds=1),
        )
        client = await connect(alice_token)
        await self.assert_rejected(client, bid_message(overdue.id, 20), "auction_ended")
        assert await bid_count(overdue) == 0

    async def test_a_bid_on_ones_own_auction_is_rejected_own_auction(
        self, connect, seller_token, auction
    ):
        client = await connect(seller_token)
        await self.assert_rejected(client, bid_message(auction.id, 20), "own_auction")

    async def test_the_highest_bidder_cannot_outbid_themselves(self, connect, alice_token, auction):
        client = await connect(alice_token)
        await request(client, bid_message(auction.id, 10, "first"))
        reply = await self.assert_rejected(
            client, bid_message(auction.id, 20, "second"), "already_highest"
        )
        assert reply["data"] == {"current_price": "10.00", "min_next_bid": "11.00"}
        assert await bid_count(auction) == 1

    async def test_a_bid_on_an_unknown_auction_is_rejected_not_found(self, connect, alice_token):
        client = await connect(alice_token)
        await self.assert_rejected(client, bid_message(uuid4(), 20), "not_found")

    @pytest.mark.parametrize(
        "amount",
        [
            pytest.param(None, id="missing"),
            "null",
            '"abc"',
            '""',
            "1e309",
            "-5",
            "0",
            "0.00",
            "1.001",
            '"1.001"',
            "true",
            "10000000000",
            "[20]",
            "{}",
            '"1e3"',
        ],
    )
    async def test_an_amount_that_is_not_valid_money_is_rejected_invalid_amount(
        self, connect, alice_token, auction, amount
    ):
        field = "" if amount is None else f',"amount":{amount}'
        text = f'{{"type":"place_bid","auction_id":"{auction.id}","request_id":"b-1"{field}}}'
        client = await connect(alice_token)
        await send_text(client, text)
        reply = await receive_json(client)
        assert (reply["type"], reply["code"]) == ("bid_rejected", "invalid_amount"), reply
        assert reply["request_id"] == "b-1"
        await assert_alive(client)
        assert await bid_count(auction) == 0

    async def test_a_nan_amount_is_not_json_at_all(self, connect, alice_token, auction):
        client = await connect(alice_token)
        await send_text(client, f'{{"type":"place_bid","auction_id":"{auction.id}","amount":NaN}}')
        assert_error(await receive_json(client), "invalid_json")
        await assert_alive(client)

    async def test_bids_faster_than_the_rate_limit_are_rejected_rate_limited(
        self, connect, alice_token, auction
    ):
        client = await connect(alice_token)
        # One bid per second, bursts of two: the third at once is over the limit.
        with override_settings(BID_RATE_LIMIT=1):
            first = await request(client, bid_message(auction.id, 10, "b-1"))
            second = await request(client, bid_message(auction.id, 11, "b-2"))
            reply = await self.assert_rejected(
                client, bid_message(auction.id, 12, "b-3"), "rate_limited"
            )
        assert first["type"] == "bid_accepted"
        assert second["code"] == "already_highest"
        assert "current_price" not in reply["data"]
        assert await bid_count(auction) == 1

    async def test_the_rate_limit_is_per_user(self, connect, alice_token, bob_token, auction):
        alice_client = await connect(alice_token)
        bob_client = await connect(bob_token)
        with override_settings(BID_RATE_LIMIT=1):
            for number in range(3):
                await request(alice_client, bid_message(auction.id, 100 + number, f"a-{number}"))
            reply = await request(bob_client, bid_message(auction.id, 200))
        assert reply["type"] == "bid_accepted", reply

    async def test_a_repeated_request_id_gets_the_same_outcome_and_creates_one_bid(
        self, connect, alice_token, auction
    ):
        client = await connect(alice_token)
        first = await request(client, bid_message(auction.id, "12.00", "same"))
        again = await request(client, bid_message(auction.id, "12.00", "same"))
        assert first["type"] == "bid_accepted"
        del first["timestamp"], again["timestamp"]
        assert again == first
        assert await bid_count(auction) == 1

    async def test_a_repeated_request_id_gets_the_earlier_outcome_after_the_auction_moved_on(
        self, connect, alice_token, auction, bob
    ):
        client = await connect(alice_token)
        first = await request(client, bid_message(auction.id, "12.00", "same"))
        await place_bid(auction, bob, "13.00")
        again = await request(client, bid_message(auction.id, "12.00", "same"))
        assert again["type"] == "bid_accepted", again
        assert again["data"] == first["data"]
        assert await bid_count(auction) == 2

    async def test_a_repeated_request_id_of_a_rejected_bid_is_rejected_again(
        self, connect, alice_token, auction
    ):
        client = await connect(alice_token)
        first = await request(client, bid_message(auction.id, "5.00", "low"))
        again = await request(client, bid_message(auction.id, "5.00", "low"))
        assert first["code"] == again["code"] == "bid_too_low"
        assert again["data"] == first["data"]
        assert await bid_count(auction) == 0

    async def test_a_repeated_request_id_creates_no_second_event(
        self, connect, alice_token, carol_token, auction
    ):
        watcher = await connect(carol_token)
        await subscribe(watcher, auction)
        client = await connect(alice_token)
        await request(client, bid_message(auction.id, "12.00", "same"))
        await request(client, bid_message(auction.id, "12.00", "same"))
        assert seqs(await receive_events(watcher, 1)) == [1]
        await assert_quiet(watcher)

    async def test_a_request_id_with_a_nul_character_is_answered_not_a_crash(
        self, connect, alice_token, auction
    ):
        client = await connect(alice_token)
        reply = await request(client, bid_message(auction.id, "12.00", "a\x00b"))
        assert reply["type"] in {"error", "bid_accepted", "bid_rejected"}
        await assert_alive(client)

    async def test_a_request_id_with_a_lone_surrogate_is_answered_not_a_crash(
        self, connect, alice_token, auction
    ):
        client = await connect(alice_token)
        await send_text(
            client,
            f'{{"type":"place_bid","auction_id":"{auction.id}","amount":12,'
            f'"request_id":"a\\ud800b"}}',
        )
        reply = await receive_json(client)
        assert reply["type"] in {"error", "bid_accepted", "bid_rejected"}
        await assert_alive(client)


class TestBadInput:
    @pytest.mark.parametrize(
        "text",
        [
            "not json",
            "{",
            "",
            " ",
            '{"type": "ping",}',
            "{'type': 'ping'}",
            "NaN",
            '{"a": Infinity}',
        ],
    )
    async def test_text_that_is_not_json_is_an_error_invalid_json(self, connect, alice_token, text):
        client = await connect(alice_token)
        await send_text(client, text)
        assert_error(await receive_json(client), "invalid_json")
        await assert_alive(client)

    @pytest.mark.parametrize(
        "text", ["[]", '[{"type": "ping"}]', "1", "1.5", '"ping"', "null", "true"]
    )
    async def test_json_that_is_not_an_object_is_an_error_invalid_message(
        self, connect, alice_token, text
    ):
        client = await connect(alice_token)
        await send_text(client, text)
        assert_error(await receive_json(client), "invalid_message")
        await assert_alive(client)

    @pytest.mark.parametrize(
        "message",
        [{}, {"type": None}, {"type": 1}, {"type": True}, {"type": ["ping"]}, {"type": {}}],
        ids=["no-type", "null", "number", "bool", "list", "object"],
    )
    async def test_a_message_without_a_string_type_is_an_error_invalid_message(
        self, connect, alice_token, message
    ):
        client = await connect(alice_token)
        reply = await request(client, {**message, "request_id": "m-1"})
        assert_error(reply, "invalid_message", "m-1")
        await assert_alive(client)

    @pytest.mark.parametrize("kind", ["bid", "PING", "", "subscribed", "pong"])
    async def test_an_unknown_type_is_an_error_unknown_type(self, connect, alice_token, kind):
        client = await connect(alice_token)
        reply = await request(client, {"type": kind, "request_id": "m-1"})
        assert_error(reply, "unknown_type", "m-1")
        await assert_alive(client)

    @pytest.mark.parametrize("kind", ["subscribe", "unsubscribe", "place_bid"])
    @pytest.mark.parametrize(
        "auction_id",
        [
            pytest.param(None, id="missing"),
            pytest.param("null", id="null"),
            pytest.param(123, id="number"),
            pytest.param(["x"], id="list"),
            pytest.param("", id="empty"),
            pytest.param("not-a-uuid", id="bad-uuid"),
            pytest.param("12345678-1234-1234-1234-12345678901", id="short-uuid"),
        ],
    )
    async def test_a_missing_or_bad_auction_id_is_an_error_invalid_message(
        self, connect, alice_token, kind, auction_id
    ):
        message: dict[str, Any] = {"type": kind, "request_id": "m-1", "amount": 20}
        if auction_id == "null":
            message["auction_id"] = None
        elif auction_id is not None:
            message["auction_id"] = auction_id
        client = await connect(alice_token)
        assert_error(await request(client, message), "invalid_message", "m-1")
        await assert_alive(client)

    @pytest.mark.parametrize(
        "request_id",
        [1, 1.5, True, ["r"], {"r": 1}, "r" * 65],
        ids=["number", "float", "bool", "list", "object", "65-chars"],
    )
    async def test_a_bad_request_id_is_an_error_invalid_message_without_request_id(
        self, connect, alice_token, auction, request_id
    ):
        client = await connect(alice_token)
        reply = await request(client, bid_message(auction.id, 20, request_id))
        assert_error(reply, "invalid_message", None)
        await assert_alive(client)
        assert await bid_count(auction) == 0

    @pytest.mark.parametrize(
        "since_seq",
        ["1", True, -1, 1.5, 1.0, [1], 2**63],
        ids=["string", "bool", "negative", "fraction", "float", "list", "too-large"],
    )
    async def test_a_bad_since_seq_is_an_error_invalid_message(
        self, connect, alice_token, auction, since_seq
    ):
        client = await connect(alice_token)
        reply = await request(
            client,
            {
                "type": "subscribe",
                "auction_id": str(auction.id),
                "since_seq": since_seq,
                "request_id": "s-1",
            },
        )
        assert_error(reply, "invalid_message", "s-1")
        await assert_alive(client)

    async def test_a_rejected_subscribe_does_not_subscribe(
        self, connect, carol_token, auction, seller, alice
    ):
        other = await make_auction(item__owner=seller)
        client = await connect(carol_token)
        await subscribe(client, other)
        await request(
            client, {"type": "subscribe", "auction_id": str(auction.id), "since_seq": "0"}
        )
        await place_bid(auction, alice, "10.00")
        await place_bid(other, alice, "10.00")
        (event,) = await receive_events(client, 1)
        assert event["auction_id"] == str(other.id)

    @pytest.mark.parametrize("data", [b"{}", b'{"type": "ping"}', b"\x00\xff"])
    async def test_a_binary_frame_is_an_error_invalid_message(self, connect, alice_token, data):
        client = await connect(alice_token)
        await send_bytes(client, data)
        assert_error(await receive_json(client), "invalid_message")
        await assert_alive(client)

    async def test_subscribing_beyond_the_limit_is_an_error_too_many_subscriptions(
        self, connect, alice_token, seller
    ):
        auctions = [await make_auction(item__owner=seller) for _ in range(3)]
        client = await connect(alice_token)
        with override_settings(WS_MAX_SUBSCRIPTIONS=2):
            await subscribe(client, auctions[0])
            await subscribe(client, auctions[1])
            reply = await request(
                client,
                {"type": "subscribe", "auction_id": str(auctions[2].id), "request_id": "s-3"},
            )
        assert_error(reply, "too_many_subscriptions", "s-3")
        await assert_alive(client)

    async def test_subscribing_again_at_the_limit_is_not_an_error(
        self, connect, alice_token, seller
    ):
        auctions = [await make_auction(item__owner=seller) for _ in range(2)]
        client = await connect(alice_token)
        with override_settings(WS_MAX_SUBSCRIPTIONS=2):
            await subscribe(client, auctions[0])
            await subscribe(client, auctions[1])
            await subscribe(client, auctions[0])

    async def test_unsubscribing_frees_a_subscription(self, connect, alice_token, seller):
        auctions = [await make_auction(item__owner=seller) for _ in range(3)]
        client = await connect(alice_token)
        with override_settings(WS_MAX_SUBSCRIPTIONS=2):
            await subscribe(client, auctions[0])
            await subscribe(client, auctions[1])
            await request(client, {"type": "unsubscribe", "auction_id": str(auctions[0].id)})
            await subscribe(client, auctions[2])

    async def test_the_subscriptions_refused_past_the_limit_get_no_events(
        self, connect, carol_token, seller, alice
    ):
        first, refused = [await make_auction(item__owner=seller) for _ in range(2)]
        client = await connect(carol_token)
        with override_settings(WS_MAX_SUBSCRIPTIONS=1):
            await subscribe(client, first)
            await request(client, {"type": "subscribe", "auction_id": str(refused.id)})
        await place_bid(refused, alice, "10.00")
        await place_bid(first, alice, "10.00")
        (event,) = await receive_events(client, 1)
        assert event["auction_id"] == str(first.id)


class TestFrameSize:
    async def test_an_oversized_frame_closes_the_connection_with_4009_and_changes_nothing(
        self, connect, alice_token, auction
    ):
        client = await connect(alice_token)
        message = bid_message(auction.id, "12.00") | {"padding": "x" * 2000}
        with override_settings(WS_MAX_MESSAGE_BYTES=1024):
            await send_json(client, message)
            closed = await receive_frame(client)
        assert closed == {"type": "websocket.close", "code": 4009}
        assert await bid_count(auction) == 0

    async def test_an_oversized_binary_frame_closes_the_connection_with_4009(
        self, connect, alice_token
    ):
        client = await connect(alice_token)
        with override_settings(WS_MAX_MESSAGE_BYTES=1024):
            await send_bytes(client, b"x" * 2000)
            closed = await receive_frame(client)
        assert closed == {"type": "websocket.close", "code": 4009}

    async def test_the_size_limit_counts_bytes_not_characters(self, connect, alice_token):
        client = await connect(alice_token)
        # 600 characters, 1200 bytes in UTF-8.
        with override_settings(WS_MAX_MESSAGE_BYTES=1024):
            await send_json(client, {"type": "ping", "padding": "é" * 600})
            closed = await receive_frame(client)
        assert closed == {"type": "websocket.close", "code": 4009}

    async def test_a_frame_of_exactly_the_limit_is_processed(self, connect, alice_token):
        client = await connect(alice_token)
        head = '{"type":"ping","request_id":"edge","padding":"'
        text = head + "x" * (1024 - len(head) - 2) + '"}'
        assert len(text.encode()) == 1024
        with override_settings(WS_MAX_MESSAGE_BYTES=1024):
            await send_text(client, text)
            reply = await receive_json(client)
        assert (reply["type"], reply["request_id"]) == ("pong", "edge")


async def test_messages_are_answered_in_the_order_sent(connect, alice_token):
    client = await connect(alice_token)
    for number in range(20):
        await send_json(client, {"type": "ping", "request_id": str(number)})
    replies = [await receive_json(client) for _ in range(20)]
    assert [reply["request_id"] for reply in replies] == [str(n) for n in range(20)]


async def test_a_json_reply_is_one_text_frame(connect, alice_token):
    client = await connect(alice_token)
    await send_json(client, {"type": "ping"})
    frame = await receive_frame(client)
    assert frame["type"] == "websocket.send" and "bytes" not in frame
    assert json.loads(frame["text"])["type"] == "pong"


class TestFaultsOfOurs:
    """What the server cannot do is still answered, and the connection stays (spec §2, §10)."""

    @pytest.mark.parametrize(
        ("fault", "code"),
        [
            (OperationalError("the server closed the connection"), "unavailable"),
            (RuntimeError("a bug"), "internal_error"),
        ],
        ids=["database away", "a bug"],
    )
    async def test_a_bid_that_could_not_be_decided_is_answered(
        self, connect, alice_token, auction, monkeypatch, fault, code
    ):
        async def failing(**_: Any) -> None:
            raise fault

        monkeypatch.setattr(consumers, "bid_place_async", failing)
        communicator = await connect(alice_token)
        message = {"type": "place_bid", "auction_id": str(auction.id), "amount": "11.00"}
        reply = await request(communicator, {**message, "request_id": "r-1"})
        assert (reply["type"], reply["code"], reply["request_id"]) == ("error", code, "r-1")
        assert "same request_id" in reply["message"]
        await assert_alive(communicator)
