"""Publishing stored events to each auction's group on the channel layer, at least once.

An event is published right after its transaction commits. A subscriber drops seqs it
has already sent and, when it sees a gap, fetches the missing events from the database;
so publishing an auction's latest event is enough for every earlier one to arrive too.

That is what the sweep (`events_publish_pending`, a periodic task) relies on: it takes
the events still unpublished after a short while, publishes the latest of each auction
again, and marks them all published. The live path never writes to the database, and a
publish lost to a Redis outage or a killed process is made good within seconds.
"""

import json
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer  # our AuctionChannelLayer too
from django.conf import settings
from django.db import transaction
from django.db.models.functions import Now

from auctions.events import event_as_message
from auctions.models import AuctionEvent
from infra.redis import redis_client
from realtime.internals import group_channel_name, publish_payload

logger = logging.getLogger(__name__)

# The channel-layer message type; consumers handle it in `auction_event`.
EVENT_MESSAGE_TYPE = "auction.event"


def auction_group(auction_id: UUID | str) -> str:
    """The channel-layer group of an auction's subscribers."""
    return f"auction.{auction_id}"


def event_text(event: AuctionEvent) -> str:
    """The event's WebSocket message, serialised once for every subscriber."""
    return json.dumps(event_as_message(event), separators=(",", ":"))


def events_publish(events: Sequence[AuctionEvent]) -> bool:
    """Publish events (in seq order per auction). Never raises; True if they went out.

    Runs after the events' transaction committed, so a failure here must not look like
    a failure of the change itself: it is logged, and the sweep publishes later.
    """
    if not events:
        return True
    messages = [_layer_message(event) for event in events]
    try:
        if _is_pubsub_layer():
            _publish_pubsub(messages)
        else:
            async_to_sync(_group_send_all)(messages)
    except Exception:
        logger.warning(
            "publishing %d event(s) failed; the sweep will retry", len(events), exc_info=True
        )
        return False
    return True


def _layer_message(event: AuctionEvent) -> dict[str, Any]:
    return {
        "type": EVENT_MESSAGE_TYPE,
        "auction_id": str(event.auction_id),
        "seq": event.seq,
        "text": event_text(event),
    }


def _is_pubsub_layer() -> bool:
    return isinstance(get_channel_layer(), RedisPubSubChannelLayer)


def _publish_pubsub(messages: Sequence[dict[str, Any]]) -> None:
    """PUBLISH straight to the pub/sub layer's group channels, in one round trip.

    Callers are synchronous (the bid service, tasks); going through the async
    `group_send` from a thread without an event loop would open a Redis connection per
    call. The channel names and the serialisation are the layer's own (realtime.internals).
    """
    layer = get_channel_layer()
    pipeline = redis_client().pipeline(transaction=False)
    for message in messages:
        group = auction_group(message["auction_id"])
        channel = group_channel_name(settings.CHANNEL_LAYER_PREFIX, group)
        pipeline.publish(channel, publish_payload(layer, message))
    pipeline.execute()


async def _group_send_all(messages: Sequence[dict[str, Any]]) -> None:
    layer = get_channel_layer()
    assert layer is not None, "CHANNEL_LAYERS configures one"
    for message in messages:
        await layer.group_send(auction_group(message["auction_id"]), message)


def events_publish_pending(*, min_age: timedelta = timedelta(seconds=2), limit: int = 5000) -> int:
    """Sweep: publish each auction's latest event among those unpublished after `min_age`,
    then mark them all published. Returns how many events were marked.

    Rows are locked with SKIP LOCKED, so concurrent sweeps share the work; if publishing
    fails, nothing is marked and the next sweep tries again.
    """
    with transaction.atomic():
        events = list(
            AuctionEvent.objects.select_for_update(skip_locked=True)
            .filter(published_at__isnull=True, created_at__lt=Now() - min_age)
            .order_by("auction_id", "seq")[:limit]
        )
        latest = {event.auction_id: event for event in events}  # seq order: the last wins
        if not events or not events_publish(list(latest.values())):
            return 0
        AuctionEvent.objects.filter(id__in=[event.id for event in events]).update(
            published_at=Now()
        )
    return len(events)
