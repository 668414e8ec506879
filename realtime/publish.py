"""Publishing the outboxes to the channel layer, at least once: auction events to each
auction's group, notifications to each user's.

A row is published right after its transaction commits. A subscriber drops seqs it has
already sent and, when it sees a gap, fetches the missing rows from the database; so
publishing the latest row of a stream (an auction's events, a user's notifications) is
enough for every earlier one to arrive too.

That is what the sweeps (`events_publish_pending`, `notifications_publish_pending`, run by
one periodic task) rely on: each takes the rows still unpublished after a short while,
publishes the latest of each stream again, and marks them all published. The live path
never writes to the database, and a publish lost to a Redis outage or a killed process is
made good within seconds.
"""

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer  # our AuctionChannelLayer too
from django.conf import settings
from django.db import models, transaction
from django.db.models.functions import Now

from auctions.events import event_as_message
from auctions.models import AuctionEvent
from infra.metrics import EVENTS_PUBLISHED
from infra.redis import layer_shard_clients
from notifications.models import Notification
from notifications.services import notification_as_message
from realtime.internals import group_channel_name, publish_payload, shard_of

logger = logging.getLogger(__name__)

# The channel-layer message types; consumers handle both in `live_message`.
EVENT_MESSAGE_TYPE = "auction.event"
NOTIFICATION_MESSAGE_TYPE = "user.notification"
# To every connection of a user: the token named was revoked (its connections close, 4401).
TOKEN_REVOKED_MESSAGE_TYPE = "user.token_revoked"


def auction_group(auction_id: UUID | str) -> str:
    """The channel-layer group of an auction's subscribers."""
    return f"auction.{auction_id}"


def user_group(user_id: UUID | str) -> str:
    """The channel-layer group of every connection of one user."""
    return f"user.{user_id}"


def _dump(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


def event_text(event: AuctionEvent) -> str:
    """The event's WebSocket message, serialised once for every subscriber."""
    return _dump(event_as_message(event))


def notification_text(notification: Notification) -> str:
    return _dump(notification_as_message(notification))


# (group, layer message) pairs, in the order they must go out.
Outgoing = list[tuple[str, dict[str, Any]]]


def _event_messages(events: Sequence[AuctionEvent]) -> Outgoing:
    return [
        (
            auction_group(event.auction_id),
            {
                "type": EVENT_MESSAGE_TYPE,
                "auction_id": str(event.auction_id),
                "seq": event.seq,
                "text": event_text(event),
                "committed_at": event.created_at.timestamp(),
            },
        )
        for event in events
    ]


def _notification_messages(notifications: Sequence[Notification]) -> Outgoing:
    return [
        (
            user_group(notification.user_id),
            {
                "type": NOTIFICATION_MESSAGE_TYPE,
                "user_id": str(notification.user_id),
                "seq": notification.seq,
                "text": notification_text(notification),
                "committed_at": notification.created_at.timestamp(),
            },
        )
        for notification in notifications
    ]


def events_publish(events: Sequence[AuctionEvent]) -> bool:
    """Publish events (in seq order per auction). Never raises; True if they went out.

    Runs after the events' transaction committed, so a failure here must not look like
    a failure of the change itself: it is logged, and the sweep publishes later.
    """
    return _publish(_event_messages(events), "event", counted=True)


def notifications_publish(notifications: Sequence[Notification]) -> bool:
    """Publish notifications (in seq order per user), as `events_publish` does events."""
    return _publish(_notification_messages(notifications), "notification", counted=True)


def events_publish_live(events: Sequence[AuctionEvent]) -> bool:
    """The after-commit publish of new events: published, then marked, so the sweep only
    meets the stragglers (issue 14: it used to re-read every event ever written)."""
    published = events_publish(events)
    if published:
        _mark_published(AuctionEvent, events)
    return published


def notifications_publish_live(notifications: Sequence[Notification]) -> bool:
    """The after-commit publish of new notifications, marked as `events_publish_live`."""
    published = notifications_publish(notifications)
    if published:
        _mark_published(Notification, notifications)
    return published


def _mark_published(model: type[models.Model], rows: Sequence[models.Model]) -> None:
    """Set published_at on rows just published: one autocommit UPDATE on the publishing
    thread, after the replies went out. A mark that fails only means the sweep sends the
    rows again, which subscribers drop by their seq."""
    try:
        model._default_manager.filter(
            pk__in=[row.pk for row in rows], published_at__isnull=True
        ).update(published_at=Now())
    except Exception:  # a database away, or (in tests) access blocked after the test
        logger.warning("marking %d row(s) failed; the sweep will", len(rows), exc_info=True)


def token_revocation_publish(*, user_id: UUID | str, token_id: str, **kwargs: Any) -> None:
    """Tell the user's connections that a token was revoked (a `token_revoked` receiver).

    At most once, unlike events: if Redis is away the connections stay open until they
    next reconnect, when the token is refused."""
    message = {"type": TOKEN_REVOKED_MESSAGE_TYPE, "token_id": token_id}
    _publish([(user_group(user_id), message)], "token revocation")


def _publish(outgoing: Outgoing, what: str, *, counted: bool = False) -> bool:
    """Send each (group, message); `counted` ones are outbox rows, by stream `what`."""
    if not outgoing:
        return True
    try:
        if _is_pubsub_layer():
            _publish_pubsub(outgoing)
        else:
            async_to_sync(_group_send_all)(outgoing)
        if counted:
            EVENTS_PUBLISHED.labels(what).inc(len(outgoing))
    except Exception:
        logger.warning(
            "publishing %d %s(s) failed; the sweep will retry", len(outgoing), what, exc_info=True
        )
        return False
    return True


def _is_pubsub_layer() -> bool:
    return isinstance(get_channel_layer(), RedisPubSubChannelLayer)


def _publish_pubsub(outgoing: Outgoing) -> None:
    """PUBLISH straight to the pub/sub layer's group channels, in one round trip.

    Callers are synchronous (the bid service, tasks); going through the async
    `group_send` from a thread without an event loop would open a Redis connection per
    call. The channel names and the serialisation are the layer's own (realtime.internals).
    """
    layer = get_channel_layer()
    shards = layer_shard_clients()
    pipelines: dict[int, Any] = {}
    for group, message in outgoing:
        channel = group_channel_name(settings.CHANNEL_LAYER_PREFIX, group)
        index = shard_of(channel, len(shards))
        if index not in pipelines:
            pipelines[index] = shards[index].pipeline(transaction=False)
        pipelines[index].publish(channel, publish_payload(layer, message))
    for pipeline in pipelines.values():  # one round trip per layer server with messages
        pipeline.execute()


async def _group_send_all(outgoing: Outgoing) -> None:
    layer = get_channel_layer()
    assert layer is not None, "CHANNEL_LAYERS configures one"
    for group, message in outgoing:
        await layer.group_send(group, message)


# The sweep.


@dataclass(frozen=True)
class _Outbox:
    model: type[models.Model]
    stream: Callable[[Any], Any]  # a row's stream: its auction, or its user
    stream_field: str
    publish: Callable[[Sequence[Any]], bool]


_EVENTS = _Outbox(AuctionEvent, lambda event: event.auction_id, "auction_id", events_publish)
_NOTIFICATIONS = _Outbox(Notification, lambda note: note.user_id, "user_id", notifications_publish)


def events_publish_pending(*, min_age: timedelta = timedelta(seconds=2), limit: int = 5000) -> int:
    """Sweep the event outbox: publish each auction's latest event among those unpublished
    after `min_age`, then mark them all published. Returns how many events were marked.

    Rows are locked with SKIP LOCKED, so concurrent sweeps share the work; if publishing
    fails, nothing is marked and the next sweep tries again.
    """
    return _sweep(_EVENTS, min_age, limit)


def notifications_publish_pending(
    *, min_age: timedelta = timedelta(seconds=2), limit: int = 5000
) -> int:
    """The same sweep over the notification outbox, per user."""
    return _sweep(_NOTIFICATIONS, min_age, limit)


def outboxes_publish_pending() -> int:
    """Both sweeps, as the periodic task runs them. Returns how many rows were marked."""
    return events_publish_pending() + notifications_publish_pending()


def _sweep(outbox: _Outbox, min_age: timedelta, limit: int) -> int:
    manager = outbox.model._default_manager
    with transaction.atomic():
        rows = list(
            manager.select_for_update(skip_locked=True)
            .filter(published_at__isnull=True, created_at__lt=Now() - min_age)
            .order_by(outbox.stream_field, "seq")[:limit]
        )
        latest = {outbox.stream(row): row for row in rows}  # seq order: the last wins
        if not rows or not outbox.publish(list(latest.values())):
            return 0
        manager.filter(pk__in=[row.pk for row in rows]).update(published_at=Now())
    return len(rows)
