"""Fuzzing the WebSocket API (spec §2 "Bad input"): whatever a client sends is answered once.

Random JSON values, random messages of the real types (bids with random amounts on a real
auction among them), random text and binary frames, all thrown at one connection. After
every frame a ping with a unique request_id follows: exactly one reply must come before
its pong (events may interleave), the application must not crash, and bids must be
stored exactly when a reply says one was accepted.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import uuid4

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auction_site.asgi import application
from auctions.errors import BID_REJECTION_CODES, Code
from auctions.models import Auction, AuctionEvent
from bidding.models import Bid
from tests.realtime.conftest import (
    EVENT_TYPES,
    TIMEOUT,
    disconnect,
    make_auction,
    receive_json,
    send_bytes,
    send_text,
)

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGE_TYPES = ["subscribe", "unsubscribe", "place_bid", "ping"]
SUCCESS_REPLY = {
    "ping": {"pong"},
    "subscribe": {"subscribed"},
    "unsubscribe": {"unsubscribed"},
    "place_bid": {"bid_accepted", "bid_rejected"},
}
ERROR_CODES = {
    Code.INVALID_JSON,
    Code.INVALID_MESSAGE,
    Code.UNKNOWN_TYPE,
    Code.NOT_FOUND,
    Code.TOO_MANY_SUBSCRIPTIONS,
    Code.RATE_LIMITED,
}

# Strings that tend to break parsers and databases; random text rarely hits them.
NASTY_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "\udfff\ud800",
    "\u2028",
    "\ufeff",
    "é",
    "💸",
    "\\",
    '"',
    "'; DROP TABLE bidding_bid; --",
    "null",
    "ping",
    "NaN",
    "-0",
    "1e400",
    "0" * 32,
    "x" * 64,
    "x" * 65,
]
texts = st.text(max_size=20) | st.sampled_from(NASTY_STRINGS)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)

# NUL characters and lone surrogates included: PostgreSQL can store neither.
request_ids = (
    st.text(max_size=70)
    | st.sampled_from(NASTY_STRINGS)
    | st.integers()
    | st.lists(st.text(max_size=3), max_size=2)
)

# Amounts that may well be accepted, so bids get past the amount check to the database.
likely_amounts = (
    st.integers(min_value=10, max_value=10**6)
    | st.decimals(min_value=10, max_value=10**6, places=2).map(str)
    | st.floats(min_value=10, max_value=10**6).map(lambda amount: round(amount, 2))
)
amounts = (
    likely_amounts
    | st.integers(min_value=-5, max_value=100)
    | st.integers()
    | st.decimals(min_value=-1, max_value=200, places=2).map(str)
    | st.decimals(allow_nan=True, allow_infinity=True).map(str)
    | st.floats()
    | st.sampled_from(["10", "10.00", "10.001", " 12 ", "1e3", "-1", "0", "", "١٢"])
    | json_values
)


def frames(auction_id: str) -> st.SearchStrategy[tuple[str, Any]]:
    """Frames as ("text", str) or ("bytes", bytes)."""
    auction_ids = (
        st.just(auction_id)
        | st.just(auction_id.upper())
        | st.uuids().map(str)
        | texts
        | json_values
    )
    messages = st.fixed_dictionaries(
        {"type": st.sampled_from(MESSAGE_TYPES) | texts | json_values},
        optional={
            "auction_id": auction_ids,
            "amount": amounts,
            "since_seq": st.integers(min_value=-2, max_value=10) | json_values,
            "request_id": request_ids,
            "extra": json_values,
        },
    )
    # Bids on the real auction (or on none), with and without a request_id.
    bid_fields = {
        "type": st.just("place_bid"),
        "auction_id": st.just(auction_id) | st.uuids().map(str),
        "amount": likely_amounts | amounts,
    }
    bids = st.fixed_dictionaries(bid_fields, optional={"request_id": request_ids})
    bids_with_request_id = st.fixed_dictionaries({**bid_fields, "request_id": request_ids})
    return st.one_of(
        messages.map(lambda message: ("text", json.dumps(message))),
        bids.map(lambda message: ("text", json.dumps(message))),
        bids_with_request_id.map(lambda message: ("text", json.dumps(message))),
        json_values.map(lambda value: ("text", json.dumps(value))),
        st.text(max_size=60).map(lambda text: ("text", text)),
        st.binary(max_size=60).map(lambda data: ("bytes", data)),
    )


def expected_replies(kind: str, payload: Any) -> set[str]:
    """The reply types a frame may get: a success for its type, or an error."""
    if kind == "bytes":
        return {"error"}
    try:
        body = json.loads(payload, parse_constant=lambda name: 1 / 0)
    except (ValueError, ZeroDivisionError, RecursionError):
        return {"error"}
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        return {"error"}
    return {"error", *SUCCESS_REPLY.get(body["type"], set())}


@database_sync_to_async
def database_state() -> tuple[set[str], int, int]:
    """Bid ids, event count and the sum of auction versions."""
    return (
        {str(bid_id) for bid_id in Bid.objects.values_list("id", flat=True)},
        AuctionEvent.objects.count(),
        sum(Auction.objects.values_list("version", flat=True)),
    )


@contextmanager
def bids_unlimited() -> Iterator[None]:
    # The rate limit has its own tests; here it would only turn bids into rejections.
    with override_settings(BID_RATE_LIMIT=0):
        yield


async def exchange(client: WebsocketCommunicator, kind: str, payload: Any) -> dict[str, Any]:
    """Send a frame, then a ping; return the one reply before the pong."""
    if kind == "bytes":
        await send_bytes(client, payload)
    else:
        await send_text(client, payload)
    sentinel = f"sentinel-{uuid4()}"
    await send_text(client, json.dumps({"type": "ping", "request_id": sentinel}))
    replies = []
    while True:
        message = await receive_json(client, TIMEOUT)
        if message.get("type") in EVENT_TYPES and "seq" in message:
            continue
        if message.get("request_id") == sentinel:
            assert message["type"] == "pong", message
            break
        replies.append(message)
    assert len(replies) == 1, f"{payload!r} got {len(replies)} replies: {replies}"
    return replies[0]


def check_reply(reply: dict[str, Any], kind: str, payload: Any) -> None:
    assert reply["type"] in expected_replies(kind, payload), (payload, reply)
    assert isinstance(reply["timestamp"], float | int)
    if reply["type"] == "error":
        assert reply["code"] in ERROR_CODES, reply
        assert isinstance(reply["message"], str)
    if reply["type"] == "bid_rejected":
        assert reply["code"] in BID_REJECTION_CODES, reply


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_any_frames_get_one_reply_each_and_change_only_what_accepted_bids_change(
    data, alice_token, seller
):
    auction = await make_auction(item__owner=seller)
    sent = data.draw(st.lists(frames(str(auction.id)), min_size=1, max_size=8), label="frames")
    bids_before, events_before, versions_before = await database_state()
    client = WebsocketCommunicator(application, f"/ws/?token={alice_token}")
    accepted: set[str] = set()
    try:
        connected, _ = await client.connect(timeout=TIMEOUT)
        assert connected
        with bids_unlimited():
            for kind, payload in sent:
                reply = await exchange(client, kind, payload)
                check_reply(reply, kind, payload)
                if reply["type"] == "bid_accepted":
                    accepted.add(reply["data"]["bid_id"])
    finally:
        await disconnect(client)
    bids_after, events_after, versions_after = await database_state()
    new_bids = bids_after - bids_before
    assert new_bids == accepted - bids_before
    # No soft close here: each accepted bid is one event and one change of its auction.
    assert events_after - events_before == len(new_bids)
    assert versions_after - versions_before == len(new_bids)
