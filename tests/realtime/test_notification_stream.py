"""A user's notifications on their WebSocket connections (spec §8): live, exactly once per
connection and in seq order, replayed with `notifications` / `since_seq`, gaps filled from
the database. Real PostgreSQL and Redis, the real consumer, bids through the real engine."""

from typing import Any

import pytest
from channels.db import database_sync_to_async

from notifications.models import Notification
from notifications.services import notifications
from realtime.publish import notifications_publish
from tests.realtime.conftest import (
    assert_alive,
    assert_quiet,
    place_bid,
    receive_json,
    request,
    send_json,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def receive_notifications(communicator: Any, count: int) -> list[dict[str, Any]]:
    received = [await receive_json(communicator) for _ in range(count)]
    assert all(message["type"] == "notification" for message in received), received
    return received


def seqs(messages: list[dict[str, Any]]) -> list[int]:
    return [message["seq"] for message in messages]


@database_sync_to_async
def stored_seqs(user: Any) -> list[int]:
    return list(
        Notification.objects.filter(user=user).order_by("seq").values_list("seq", flat=True)
    )


async def test_an_outbid_reaches_every_connection_of_the_user_once(
    connect, alice_token, auction, alice, bob
):
    first, second = await connect(alice_token), await connect(alice_token)
    await place_bid(auction, alice, "10.00")
    await place_bid(auction, bob, "11.00")
    for connection in (first, second):
        (notice,) = await receive_notifications(connection, 1)
        assert notice["seq"] == 1
        assert notice["kind"] == "outbid"
        assert notice["auction_id"] == str(auction.id)
        assert notice["data"]["price"] == "11.00"
        assert {"created_at", "timestamp"} <= set(notice)
        await assert_quiet(connection)


async def test_notifications_flow_without_any_subscription_and_only_to_their_user(
    connect, alice_token, bob_token, carol_token, auction, alice, bob
):
    alices, bobs, carols = (
        await connect(alice_token),
        await connect(bob_token),
        await connect(carol_token),
    )
    await place_bid(auction, alice, "10.00")
    await place_bid(auction, bob, "11.00")
    await place_bid(auction, alice, "12.00")
    assert seqs(await receive_notifications(alices, 1)) == [1]
    assert seqs(await receive_notifications(bobs, 1)) == [1]
    for connection in (alices, bobs, carols):
        await assert_quiet(connection)


async def test_since_seq_replays_the_stored_ones_in_order_before_any_live_one(
    connect, alice_token, auction, alice, bob
):
    for amount, bidder in (("10.00", alice), ("11.00", bob), ("12.00", alice), ("13.00", bob)):
        await place_bid(auction, bidder, amount)
    assert await stored_seqs(alice) == [1, 2]
    connection = await connect(alice_token)
    await assert_quiet(connection)  # what came before the connection is not pushed
    await send_json(connection, {"type": "notifications", "since_seq": 0})
    assert seqs(await receive_notifications(connection, 2)) == [1, 2]
    await place_bid(auction, alice, "14.00")
    await place_bid(auction, bob, "15.00")
    assert seqs(await receive_notifications(connection, 1)) == [3]
    # Asking again from 1 replays 2 and 3 once more, then nothing else.
    await send_json(connection, {"type": "notifications", "since_seq": 1})
    assert seqs(await receive_notifications(connection, 2)) == [2, 3]
    await assert_quiet(connection)


async def test_a_since_seq_ahead_of_the_latest_replays_nothing_and_hides_nothing(
    connect, alice_token, auction, alice, bob
):
    connection = await connect(alice_token)
    await send_json(connection, {"type": "notifications", "since_seq": 99})
    await assert_alive(connection)
    await place_bid(auction, alice, "10.00")
    await place_bid(auction, bob, "11.00")
    assert seqs(await receive_notifications(connection, 1)) == [1]


@pytest.mark.parametrize("since_seq", [-1, "3", 1.5, None, True])
async def test_a_bad_since_seq_is_an_invalid_message(connect, alice_token, since_seq):
    connection = await connect(alice_token)
    reply = await request(
        connection, {"type": "notifications", "since_seq": since_seq, "request_id": "n-1"}
    )
    assert (reply["type"], reply["code"], reply["request_id"]) == (
        "error",
        "invalid_message",
        "n-1",
    )
    await assert_alive(connection)


async def test_a_notification_whose_publish_was_lost_is_filled_from_the_database(
    connect, alice_token, auction, alice, bob
):
    connection = await connect(alice_token)
    previous = notifications.publisher_set(lambda rows: False)  # publishes lost
    try:
        await place_bid(auction, alice, "10.00")
        await place_bid(auction, bob, "11.00")
        await place_bid(auction, alice, "12.00")
        await place_bid(auction, bob, "13.00")
    finally:
        notifications.publisher_set(previous)
    await assert_quiet(connection)
    # Only the latest is published again (as the sweep does): the earlier one comes too.
    latest = await database_sync_to_async(
        lambda: Notification.objects.filter(user=alice).order_by("-seq").first()
    )()
    assert latest is not None and latest.seq == 2
    await database_sync_to_async(notifications_publish)([latest])
    assert seqs(await receive_notifications(connection, 2)) == [1, 2]
    await assert_quiet(connection)
