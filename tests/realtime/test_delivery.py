"""Delivery at the consumer (spec §2): every event exactly once and in seq order, per subscriber.

Publishing is at least once and may reorder or lose messages; these tests publish real
stored events by hand (duplicated, out of order, with gaps) and check what subscribers see.
Where a test must show that something does NOT arrive, it then causes an event that must
arrive: published later, it would come after the unwanted one.
"""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.utils import timezone

from auctions.events import events_publisher_set
from auctions.formats import iso
from auctions.models import AuctionEvent, AuctionStatus
from auctions.services import auction_cancel, auction_close, auction_start
from realtime import consumers
from realtime.latest import LatestSeqCheck
from realtime.publish import EVENT_MESSAGE_TYPE, auction_group, event_text, events_publish
from tests.realtime.conftest import (
    assert_quiet,
    make_auction,
    place_bid,
    place_bids,
    receive_events,
    receive_json,
    request,
    seqs,
    stored_event,
    subscribe,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def until(condition: Any, timeout: float = 5.0) -> None:
    """Wait for `condition()` to hold, letting the consumers run meanwhile."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the condition never held"
        await asyncio.sleep(0.005)


publish = database_sync_to_async(events_publish)


async def inject(event: AuctionEvent) -> None:
    """Send a stored event through the channel layer, as the publisher would."""
    await get_channel_layer().group_send(
        auction_group(event.auction_id),
        {
            "type": EVENT_MESSAGE_TYPE,
            "auction_id": str(event.auction_id),
            "seq": event.seq,
            "text": event_text(event),
        },
    )


@pytest.fixture
def live_publishing_lost(monkeypatch) -> Any:
    """A context manager: bids inside it are stored, but their live publish is lost."""

    @contextmanager
    def lost() -> Iterator[None]:
        publisher = events_publisher_set(lambda events: False)
        try:
            yield
        finally:
            events_publisher_set(publisher)

    return lost


async def test_a_duplicate_publish_is_delivered_once(connect, carol_token, auction, alice, bob):
    watcher = await connect(carol_token)
    await subscribe(watcher, auction)
    await place_bid(auction, alice, "10.00")
    assert seqs(await receive_events(watcher, 1)) == [1]
    await inject(await stored_event(auction, 1))
    await place_bid(auction, bob, "11.00")
    assert seqs(await receive_events(watcher, 1)) == [2]
    await assert_quiet(watcher)


async def test_an_event_published_before_its_predecessor_arrives_after_it(
    connect, carol_token, auction, alice, bob, live_publishing_lost
):
    watcher = await connect(carol_token)
    await subscribe(watcher, auction)
    await place_bid(auction, alice, "10.00")
    await receive_events(watcher, 1)
    with live_publishing_lost():
        await place_bids(auction, [bob, alice], start=11)
    await publish([await stored_event(auction, 3)])
    assert seqs(await receive_events(watcher, 2)) == [2, 3]


async def test_a_late_event_already_filled_in_from_the_database_is_dropped(
    connect, carol_token, auction, alice, bob, live_publishing_lost
):
    watcher = await connect(carol_token)
    await subscribe(watcher, auction)
    await place_bid(auction, alice, "10.00")
    await receive_events(watcher, 1)
    with live_publishing_lost():
        await place_bids(auction, [bob, alice], start=11)
    await publish([await stored_event(auction, 3)])
    await receive_events(watcher, 2)
    await publish([await stored_event(auction, 2)])
    await place_bid(auction, bob, "13.00")
    assert seqs(await receive_events(watcher, 1)) == [4]
    await assert_quiet(watcher)


async def test_events_lost_on_the_live_path_are_filled_in_when_a_later_one_arrives(
    connect, carol_token, auction, alice, bob, live_publishing_lost
):
    watcher = await connect(carol_token)
    await subscribe(watcher, auction)
    with live_publishing_lost():
        placed = await place_bids(auction, [alice, bob, alice, bob, alice])
    await publish([await stored_event(auction, 5)])
    events = await receive_events(watcher, 5)
    assert seqs(events) == [1, 2, 3, 4, 5]
    assert [event["data"]["bid_id"] for event in events] == [str(bid.bid_id) for bid in placed]
    await assert_quiet(watcher)


async def test_every_subscriber_receives_every_event_once_in_order(
    connect, token_for, auction, alice, bob, carol, seller
):
    # Watchers who do not bid: a bidder's connection also carries their outbid notices.
    watchers = [
        await connect(await database_sync_to_async(token_for)(user)) for user in (carol, seller)
    ]
    for watcher in watchers:
        await subscribe(watcher, auction)
    await place_bids(auction, [alice, bob, alice, bob, alice])
    for watcher in watchers:
        assert seqs(await receive_events(watcher, 5)) == [1, 2, 3, 4, 5]
    for watcher in watchers:
        await assert_quiet(watcher)


async def test_resubscribing_with_since_seq_resumes_without_loss_or_duplicate(
    connect, carol_token, auction, alice, bob
):
    watcher = await connect(carol_token)
    await subscribe(watcher, auction)
    await place_bid(auction, alice, "10.00")
    (first,) = await receive_events(watcher, 1)
    await request(watcher, {"type": "unsubscribe", "auction_id": str(auction.id)})
    await place_bids(auction, [bob, alice], start=11)
    await subscribe(watcher, auction, since_seq=first["seq"])
    assert seqs(await receive_events(watcher, 2)) == [2, 3]
    await place_bid(auction, bob, "13.00")
    assert seqs(await receive_events(watcher, 1)) == [4]
    await assert_quiet(watcher)


async def test_a_new_connection_resumes_with_since_seq_without_loss_or_duplicate(
    connect, carol_token, auction, alice, bob
):
    watcher = await connect(carol_token)
    await subscribe(watcher, auction)
    await place_bid(auction, alice, "10.00")
    await receive_events(watcher, 1)
    await watcher.disconnect()
    await place_bids(auction, [bob, alice], start=11)
    again = await connect(carol_token)
    await subscribe(again, auction, since_seq=1)
    assert seqs(await receive_events(again, 2)) == [2, 3]
    await assert_quiet(again)


async def test_events_of_an_auction_never_reach_a_subscriber_of_another_only(
    connect, carol_token, auction, seller, alice
):
    other = await make_auction(item__owner=seller)
    watcher = await connect(carol_token)
    await subscribe(watcher, other)
    await place_bid(auction, alice, "10.00")
    await inject(await stored_event(auction, 1))
    await place_bid(other, alice, "10.00")
    (event,) = await receive_events(watcher, 1)
    assert (event["auction_id"], event["seq"]) == (str(other.id), 1)
    await assert_quiet(watcher)


async def test_a_subscriber_of_several_auctions_gets_each_auctions_events_in_order(
    connect, carol_token, auction, seller, alice, bob
):
    other = await make_auction(item__owner=seller)
    watcher = await connect(carol_token)
    await subscribe(watcher, auction)
    await subscribe(watcher, other)
    for number, bidder in enumerate([alice, bob, alice]):
        await place_bid(auction, bidder, 10 + number)
        await place_bid(other, bidder, 10 + number)
    events = await receive_events(watcher, 6)
    by_auction = {
        str(auction_id): [
            event["seq"] for event in events if event["auction_id"] == str(auction_id)
        ]
        for auction_id in (auction.id, other.id)
    }
    assert by_auction == {str(auction.id): [1, 2, 3], str(other.id): [1, 2, 3]}


async def test_a_bid_in_the_soft_close_window_delivers_bid_placed_then_auction_extended(
    connect, carol_token, seller, alice
):
    now = timezone.now()
    auction = await make_auction(
        item__owner=seller,
        end_time=now + timedelta(seconds=30),
        max_end_time=now + timedelta(hours=1),
        extension_seconds=120,
    )
    watcher = await connect(carol_token)
    await subscribe(watcher, auction)
    accepted = await place_bid(auction, alice, "10.00")
    placed, extended = await receive_events(watcher, 2)
    assert (placed["type"], placed["seq"]) == ("bid_placed", 1)
    assert (extended["type"], extended["seq"]) == ("auction_extended", 2)
    assert extended["data"] == {
        "end_time": iso(accepted.end_time),
        "previous_end_time": iso(auction.end_time),
    }
    assert placed["data"]["end_time"] == iso(accepted.end_time)


async def test_a_pending_auction_starting_reaches_its_subscribers(connect, carol_token, seller):
    now = timezone.now()
    pending = await make_auction(
        item__owner=seller,
        status=AuctionStatus.PENDING,
        start_time=now - timedelta(seconds=1),
        end_time=now + timedelta(hours=1),
    )
    watcher = await connect(carol_token)
    await subscribe(watcher, pending)
    assert await database_sync_to_async(auction_start)(auction_id=pending.id)
    (event,) = await receive_events(watcher, 1)
    assert (event["type"], event["seq"]) == ("auction_started", 1)
    assert event["data"] == {
        "status": "active",
        "start_time": iso(pending.start_time),
        "end_time": iso(pending.end_time),
        "current_price": "10.00",
        "min_next_bid": "10.00",
    }


async def test_an_auction_closing_reaches_its_subscribers_with_the_winner(
    connect, carol_token, auction, alice
):
    watcher = await connect(carol_token)
    await subscribe(watcher, auction)
    accepted = await place_bid(auction, alice, "10.00")
    assert await database_sync_to_async(auction_close)(auction_id=auction.id, early=True)
    placed, ended = await receive_events(watcher, 2)
    assert (placed["type"], ended["type"], ended["seq"]) == ("bid_placed", "auction_ended", 2)
    assert ended["data"] == {
        "status": "ended",
        "final_price": "10.00",
        "winner": {"id": str(alice.id), "name": "alice"},
        "winning_bid_id": str(accepted.bid_id),
        "reserve_met": True,
        "reason": "ended",
    }


async def test_a_cancellation_reaches_its_subscribers(connect, carol_token, auction, seller):
    watcher = await connect(carol_token)
    await subscribe(watcher, auction)
    await database_sync_to_async(auction_cancel)(
        auction_id=auction.id, actor=seller, reason="Sold it"
    )
    (event,) = await receive_events(watcher, 1)
    assert (event["type"], event["seq"]) == ("auction_cancelled", 1)
    assert event["data"] == {"status": "cancelled", "reason": "Sold it"}


async def test_a_bid_committed_while_subscribing_arrives_with_the_next_event(
    connect, carol_token, auction, alice, bob, monkeypatch
):
    await bid_while_subscribing(monkeypatch, auction, alice)
    watcher = await connect(carol_token)
    await subscribe(watcher, auction)
    await place_bid(auction, bob, "11.00")
    assert seqs(await receive_events(watcher, 2)) == [1, 2]


async def test_a_bid_committed_while_subscribing_with_since_seq_is_replayed(
    connect, carol_token, auction, alice, monkeypatch
):
    await bid_while_subscribing(monkeypatch, auction, alice)
    watcher = await connect(carol_token)
    await subscribe(watcher, auction, since_seq=0)
    assert seqs(await receive_events(watcher, 1)) == [1]


async def test_a_bid_committed_while_subscribing_arrives_without_waiting_for_another_event(
    connect, carol_token, auction, alice, monkeypatch
):
    await bid_while_subscribing(monkeypatch, auction, alice)
    watcher = await connect(carol_token)
    reply = await subscribe(watcher, auction)
    assert reply["data"]["seq"] == 0
    # No sweep runs in the tests; well within its 2-4 seconds anyway.
    assert seqs(await receive_events(watcher, 1, timeout=1.5)) == [1]


@pytest.fixture
def stored_reads(monkeypatch) -> list[tuple]:
    """Every read of stored events the consumers make, by its (auction, after, upto)."""
    reads: list[tuple] = []
    shared = consumers.AuctionConsumer.reads
    real_read_page = shared.read_page

    async def counting_read_page(auction_id, after, upto, page_size):
        reads.append((auction_id, after, upto))
        return await real_read_page(auction_id, after, upto, page_size)

    monkeypatch.setattr(shared, "read_page", counting_read_page)
    return reads


async def bid_while_subscribing(monkeypatch: Any, auction: Any, bidder: Any) -> None:
    """Make the next subscribe commit (and publish) a bid right after reading the snapshot."""
    shared = consumers.AuctionConsumer.reads
    read_snapshot = shared.read_snapshot

    async def snapshot_then_bid(auction_id: Any) -> dict[str, Any]:
        snapshot = await read_snapshot(auction_id)
        monkeypatch.setattr(shared, "read_snapshot", read_snapshot)
        await place_bid(auction, bidder, "10.00")
        return snapshot

    monkeypatch.setattr(shared, "read_snapshot", snapshot_then_bid)


async def test_events_swapped_in_flight_are_delivered_in_order_without_reading_the_database(
    connect, carol_token, auction, alice, bob, live_publishing_lost, stored_reads
):
    """Two commits' publishes often cross: the later one is held briefly, not filled from the DB."""
    watcher = await connect(carol_token)
    await subscribe(watcher, auction)
    with live_publishing_lost():
        await place_bids(auction, [alice, bob])
    await publish([await stored_event(auction, 2)])
    await publish([await stored_event(auction, 1)])
    assert seqs(await receive_events(watcher, 2)) == [1, 2]
    await assert_quiet(watcher)
    assert stored_reads == []


async def test_connections_that_see_the_same_gap_share_one_database_read(
    connect, carol_token, auction, alice, bob, live_publishing_lost, stored_reads
):
    """A process's subscribers all miss the same event at once: one read fills every gap."""
    watchers = [await connect(carol_token) for _ in range(5)]
    for watcher in watchers:
        await subscribe(watcher, auction)
    with live_publishing_lost():
        await place_bids(auction, [alice, bob])
    await publish([await stored_event(auction, 2)])  # seq 1 is never published
    for watcher in watchers:
        assert seqs(await receive_events(watcher, 2)) == [1, 2]
    assert stored_reads == [(auction.id, 0, 1)]


async def test_a_resume_reads_stored_events_only_up_to_its_snapshot(
    connect, carol_token, auction, alice, bob, stored_reads
):
    """Later events arrive live; so resumes from one seq ask for the same pages and share them."""
    await place_bids(auction, [alice, bob, alice])
    watchers = [await connect(carol_token) for _ in range(3)]
    for watcher in watchers:
        await watcher.send_json_to(
            {"type": "subscribe", "auction_id": str(auction.id), "since_seq": 1}
        )
    for watcher in watchers:
        assert (await receive_json(watcher))["type"] == "subscribed"
        assert seqs(await receive_events(watcher, 2)) == [2, 3]
    assert stored_reads and all(args == (auction.id, 1, 3) for args in stored_reads)
    await place_bid(auction, bob, "20.00")
    for watcher in watchers:
        assert seqs(await receive_events(watcher, 1)) == [4]
        await assert_quiet(watcher)


async def test_subscribes_during_a_snapshot_read_share_the_next_read_not_the_running_one(
    connect, carol_token, auction, alice, monkeypatch
):
    """A snapshot read that began before a subscriber joined could miss an event it then
    never gets live; so it waits for the next read, which it shares with the others."""
    reads = []
    first_read_may_finish = asyncio.Event()
    shared = consumers.AuctionConsumer.reads
    real_snapshot = shared.read_snapshot

    async def held_snapshot(auction_id):
        reads.append(auction_id)
        if len(reads) == 1:
            await first_read_may_finish.wait()
        return await real_snapshot(auction_id)

    monkeypatch.setattr(shared, "read_snapshot", held_snapshot)
    subscribes = []
    real_shared_snapshot = shared.snapshot

    async def counted_snapshot(auction_id):
        subscribes.append(auction_id)  # then, in the same step, it joins a read
        return await real_shared_snapshot(auction_id)

    monkeypatch.setattr(shared, "snapshot", counted_snapshot)
    early = await connect(carol_token)
    await early.send_json_to({"type": "subscribe", "auction_id": str(auction.id)})
    await until(lambda: reads)  # the first read has begun (and waits)
    await place_bid(auction, alice, "10.00")  # committed and published meanwhile
    late = [await connect(carol_token) for _ in range(3)]
    for watcher in late:
        await watcher.send_json_to({"type": "subscribe", "auction_id": str(auction.id)})
    await until(lambda: len(subscribes) == 4)  # the late three wait for the next read
    first_read_may_finish.set()

    for watcher in late:
        reply = await receive_json(watcher)
        assert reply["type"] == "subscribed" and reply["data"]["seq"] == 1
        await assert_quiet(watcher)
    assert len(reads) == 2  # one read for the early subscriber, one shared by the late three
    # The early subscriber's snapshot may be from before or after the bid; either way it
    # gets bid 1 exactly once, as the snapshot's seq or as a live event.
    reply = await receive_json(early)
    assert reply["type"] == "subscribed"
    if reply["data"]["seq"] == 0:
        assert seqs(await receive_events(early, 1)) == [1]
    await assert_quiet(early)


class TestLatestSeqCheck:
    """realtime.latest: an auction's last event lost live still arrives (issue 14)."""

    async def test_a_subscriber_that_missed_the_last_events_gets_them_from_the_check(
        self, connect, carol_token, auction, alice, bob, live_publishing_lost
    ):
        watcher = await connect(carol_token)
        await subscribe(watcher, auction)
        await place_bid(auction, alice, "10.00")
        await receive_events(watcher, 1)
        with live_publishing_lost():
            await place_bids(auction, [bob, alice], start=11)
        await assert_quiet(watcher)  # no later event: no gap to notice
        assert await LatestSeqCheck(get_channel_layer()).check_once() == 1
        assert seqs(await receive_events(watcher, 2)) == [2, 3]
        assert await LatestSeqCheck(get_channel_layer()).check_once() == 1
        await assert_quiet(watcher)  # up to date: nothing again

    async def test_only_followed_auctions_are_read(self, connect, carol_token, auction):
        watcher = await connect(carol_token)
        assert await LatestSeqCheck(get_channel_layer()).check_once() == 0
        await subscribe(watcher, auction)
        assert await LatestSeqCheck(get_channel_layer()).check_once() == 1
