"""Publishing events (realtime.publish): after commit, the sweep, and Redis being away."""

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db.models import F

from auctions.events import event_as_message
from auctions.models import Auction, AuctionEvent
from bidding.services import batcher, bid_place
from infra.redis import redis_client
from realtime.publish import (
    EVENT_MESSAGE_TYPE,
    auction_group,
    event_text,
    events_publish,
    events_publish_pending,
)
from realtime.tasks import publish_pending_events
from tests.factories import AuctionFactory
from tests.realtime.conftest import (
    assert_quiet,
    bid_count,
    place_bids,
    receive_events,
    request,
    seqs,
    subscribe,
)

pytestmark = pytest.mark.django_db(transaction=True)

SENTINEL = {"type": "test.sentinel"}


def sweep() -> int:
    """The sweep, taking every unpublished event however young."""
    return events_publish_pending(min_age=timedelta(0))


def unpublished(auction: Auction | None = None) -> list[int]:
    events = AuctionEvent.objects.filter(published_at__isnull=True)
    if auction is not None:
        events = events.filter(auction=auction)
    return sorted(events.values_list("seq", flat=True))


def stragglers_on(auction: Auction, *bidders: Any) -> None:
    """bids_on, as if every live publish had failed: the sweep's work (its events
    unpublished)."""
    bids_on(auction, *bidders)
    AuctionEvent.objects.filter(auction=auction).update(published_at=None)


def bids_on(auction: Auction, *bidders: Any) -> None:
    """One accepted bid per bidder in turn, from 10 up by 1."""
    for number, bidder in enumerate(bidders):
        bid_place(auction_id=auction.id, bidder=bidder, amount=10 + number)
    # Publishing follows each decision on the batcher's own thread: let it finish, so it
    # cannot land while a test listens for the sweep alone.
    batcher.wait_for_after()


def _group_channel(auction: Auction) -> str:
    prefix = settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("prefix", "asgi")
    # channels_redis's own naming, which realtime.publish relies on.
    return f"{prefix}__group__{auction_group(auction.id)}"


@contextmanager
def listening(*auctions: Auction) -> Iterator[Callable[[], dict[str, list[dict[str, Any]]]]]:
    """Subscribe to auctions' groups straight on Redis, as a consumer's channel layer does.

    Yields a function returning what was published to each group so far (by auction id):
    it publishes a sentinel after the fact and reads up to it, so nothing is left in flight.
    """
    layer = get_channel_layer()
    channels = {_group_channel(auction): str(auction.id) for auction in auctions}
    pubsub = redis_client().pubsub()
    pubsub.subscribe(*channels)
    confirmed = 0
    while confirmed < len(channels):
        message = pubsub.get_message(timeout=5)
        assert message is not None, "Redis did not confirm the subscription"
        confirmed += message["type"] == "subscribe"

    def received() -> dict[str, list[dict[str, Any]]]:
        for channel in channels:
            redis_client().publish(channel, layer.serialize(SENTINEL))
        found: dict[str, list[dict[str, Any]]] = {
            auction_id: [] for auction_id in channels.values()
        }
        waiting = set(channels)
        while waiting:
            message = pubsub.get_message(timeout=5)
            assert message is not None, "a sentinel did not come back"
            if message["type"] != "message":
                continue
            channel = message["channel"].decode()
            body = layer.deserialize(message["data"])
            if body == SENTINEL:
                waiting.discard(channel)
            else:
                found[channels[channel]].append(body)
        return found

    try:
        yield received
    finally:
        pubsub.close()


class TestEventsPublish:
    def test_an_event_goes_to_its_auctions_group_as_its_message_text(self, auction, alice):
        bids_on(auction, alice)
        event = AuctionEvent.objects.get(auction=auction)
        with listening(auction) as received:
            assert events_publish([event]) is True
            (message,) = received()[str(auction.id)]
        assert message == {
            "type": EVENT_MESSAGE_TYPE,
            "auction_id": str(auction.id),
            "seq": 1,
            "text": event_text(event),
            "committed_at": event.created_at.timestamp(),  # for the delivery-lag metric
        }
        assert json.loads(message["text"]) == json.loads(json.dumps(event_as_message(event)))

    def test_publishing_nothing_succeeds(self):
        assert events_publish([]) is True

    def test_an_unreachable_redis_makes_it_return_false_without_raising(
        self, auction, alice, redis_unreachable, caplog
    ):
        bids_on(auction, alice)
        event = AuctionEvent.objects.get(auction=auction)
        with redis_unreachable(), caplog.at_level(logging.WARNING, "realtime.publish"):
            assert events_publish([event]) is False
        assert any("sweep will retry" in record.getMessage() for record in caplog.records)

    async def test_a_bid_is_accepted_while_redis_is_unreachable(
        self, connect, alice_token, auction, redis_unreachable
    ):
        client = await connect(alice_token)
        with redis_unreachable():
            reply = await request(
                client, {"type": "place_bid", "auction_id": str(auction.id), "amount": "10.00"}
            )
        assert reply["type"] == "bid_accepted", reply
        assert await bid_count(auction) == 1


class TestSweep:
    def test_the_live_publish_marks_what_it_sent_so_the_sweep_meets_only_stragglers(
        self, auction, alice, bob
    ):
        bids_on(auction, alice, bob)
        assert unpublished(auction) == []
        with listening(auction) as received:
            assert sweep() == 0
            assert received() == {str(auction.id): []}

    def test_it_publishes_the_latest_unpublished_event_of_each_auction(
        self, auction, seller, alice, bob
    ):
        other = AuctionFactory(item__owner=seller)
        stragglers_on(auction, alice, bob, alice)
        stragglers_on(other, bob, alice)
        with listening(auction, other) as received:
            sweep()
            published = received()
        assert {auction_id: seqs(messages) for auction_id, messages in published.items()} == {
            str(auction.id): [3],
            str(other.id): [2],
        }

    def test_it_marks_every_event_it_covered_published(self, auction, seller, alice, bob):
        other = AuctionFactory(item__owner=seller)
        stragglers_on(auction, alice, bob, alice)
        stragglers_on(other, bob, alice)
        assert sweep() == 5
        assert unpublished() == []

    def test_it_leaves_events_younger_than_min_age(self, auction, alice, bob):
        stragglers_on(auction, alice, bob)
        assert events_publish_pending(min_age=timedelta(minutes=1)) == 0
        assert unpublished(auction) == [1, 2]

    def test_it_publishes_nothing_already_published(self, auction, alice, bob):
        stragglers_on(auction, alice, bob)
        sweep()
        with listening(auction) as received:
            assert sweep() == 0
            assert received() == {str(auction.id): []}

    def test_it_leaves_what_is_over_its_limit_to_the_next_sweep(self, auction, alice, bob):
        stragglers_on(auction, alice, bob, alice, bob, alice)
        with listening(auction) as received:
            assert events_publish_pending(min_age=timedelta(0), limit=2) == 2
            assert seqs(received()[str(auction.id)]) == [2]
        assert unpublished(auction) == [3, 4, 5]
        assert sweep() == 3

    def test_it_marks_nothing_when_publishing_fails(self, auction, alice, bob, redis_unreachable):
        stragglers_on(auction, alice, bob)
        with redis_unreachable():
            assert sweep() == 0
        assert unpublished(auction) == [1, 2]

    def test_it_publishes_after_redis_comes_back(self, auction, alice, bob, redis_unreachable):
        stragglers_on(auction, alice, bob)
        with redis_unreachable():
            sweep()
        with listening(auction) as received:
            assert sweep() == 2
            assert seqs(received()[str(auction.id)]) == [2]

    async def test_a_subscriber_that_missed_publishes_receives_everything_after_it(
        self, connect, carol_token, auction, alice, bob, redis_unreachable
    ):
        watcher = await connect(carol_token)
        await subscribe(watcher, auction)
        with redis_unreachable():
            await place_bids(auction, [alice, bob, alice])
        await assert_quiet(watcher)
        assert await database_sync_to_async(sweep)() == 3
        assert seqs(await receive_events(watcher, 3)) == [1, 2, 3]
        await assert_quiet(watcher)

    def test_the_periodic_task_publishes_and_marks_events_old_enough(self, auction, alice, bob):
        stragglers_on(auction, alice, bob)
        AuctionEvent.objects.update(created_at=F("created_at") - timedelta(minutes=1))
        with listening(auction) as received:
            result = publish_pending_events.apply()
            assert seqs(received()[str(auction.id)]) == [2]
        assert result.successful()
        assert result.get() == 2
        assert unpublished(auction) == []
