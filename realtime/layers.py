"""The channel layer: channels_redis's pub/sub layer, with process-local consumer channels
and a direct local fan-out.

Nothing in this service sends to one connection through Redis: events go to an
auction's group. So a consumer's own channel needs no Redis subscription of its own;
`new_channel` makes just the local inbox the group fan-out fills. That saves a Redis
round trip (under the layer's per-process lock) on every handshake and every disconnect,
and a Redis subscription per idle connection.

The layer already subscribes once per process per group. What it does next is costly at
thousands of subscribers: it queues the message for every member, and each member's
consumer wakes, decodes its own copy and goes through Channels' dispatch. A consumer that
registers a live handler (`take_live`) skips all of that: the message is decoded once,
and one task per published message hands it to each member's handler in turn.

Channels asks a layer to forget a consumer's channel only by cancelling its pending
`receive`; a receive that had already completed when the consumer ended is never
cancelled, so the queue stayed forever. `delete_channel` forgets it explicitly.

These use the layer's internals (its per-loop layer, channel queues and the way its
receive loop fills them), all through realtime.internals.
"""

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer

from infra.metrics import DELIVERY_LAG_SECONDS
from realtime.internals import channel_inboxes, loop_layer

logger = logging.getLogger(__name__)

# Connections handed an event before the loop lets other work run: a hand-out to
# thousands would otherwise hold every bid and reply in the process back for its length.
HAND_OUT_SLICE = 25

LiveHandler = Callable[[dict[str, Any]], Awaitable[None]]


class LocalFanout:
    """Hands each group message, decoded once, to the live handlers of its members."""

    def __init__(self, deserialize: Callable[[bytes], dict[str, Any]]) -> None:
        self._deserialize = deserialize
        self._batch: list[tuple[LiveHandler, dict[str, Any]]] = []
        self._last_data: bytes | None = None
        self._last_message: dict[str, Any] = {}
        # The distinct messages of the batch, for the delivery-lag metric.
        self._messages: list[dict[str, Any]] = []

    def add(self, handler: LiveHandler, data: bytes) -> None:
        # The layer's receive loop passes the same bytes object to every member in turn.
        if data is not self._last_data:
            self._last_data, self._last_message = data, self._deserialize(data)
            self._messages.append(self._last_message)
        if not self._batch:
            asyncio.get_running_loop().create_task(self._hand_out())
        self._batch.append((handler, self._last_message))

    async def _hand_out(self) -> None:
        batch, self._batch = self._batch, []
        messages, self._messages = self._messages, []
        self._last_data = None
        for index, (handler, message) in enumerate(batch, 1):
            try:
                await handler(message)
            except Exception:  # one broken connection must not cost the others their event
                logger.warning("delivering a live event failed", exc_info=True)
            if index % HAND_OUT_SLICE == 0:
                await asyncio.sleep(0)  # let a bid or a reply through between slices
        # Once per message handed out (not per socket): commit to the last socket's write.
        now = time.time()
        for message in messages:
            if (committed_at := message.get("committed_at")) is not None:
                DELIVERY_LAG_SECONDS.observe(max(now - committed_at, 0.0))


class LocalInbox(asyncio.Queue[Any]):
    """A consumer's channel: a queue, unless the consumer takes group messages live."""

    def __init__(self, fanout: LocalFanout) -> None:
        super().__init__()
        self.fanout = fanout
        self.live_handler: LiveHandler | None = None

    def put_nowait(self, item: Any) -> None:
        if self.live_handler is None:
            super().put_nowait(item)
        else:
            self.fanout.add(self.live_handler, item)


class AuctionChannelLayer(RedisPubSubChannelLayer):
    def _fanout(self, loop: Any) -> LocalFanout:
        fanout = getattr(loop, "local_fanout", None)
        if fanout is None:
            fanout = loop.local_fanout = LocalFanout(self.deserialize)
        return fanout

    async def new_channel(self, prefix: str = "specific.") -> str:
        loop = loop_layer(self)
        channel = f"{loop.prefix}{prefix}local.{uuid.uuid4().hex}"
        channel_inboxes(loop)[channel] = LocalInbox(self._fanout(loop))
        return channel

    def take_live(self, channel: str, handler: LiveHandler) -> None:
        """Hand this channel's group messages to `handler` as they arrive, not via receive."""
        inbox = channel_inboxes(loop_layer(self)).get(channel)
        if isinstance(inbox, LocalInbox):
            inbox.live_handler = handler

    def local_send(self, channels: set[str], message: dict[str, Any]) -> int:
        """Hand a message to these local channels' live handlers, not through Redis.
        Returns how many took it."""
        inboxes = channel_inboxes(loop_layer(self))
        data = self.serialize(message)
        handed = 0
        for channel in list(channels):
            inbox = inboxes.get(channel)
            if isinstance(inbox, LocalInbox) and inbox.live_handler is not None:
                inbox.fanout.add(inbox.live_handler, data)
                handed += 1
        return handed

    async def delete_channel(self, channel: str) -> None:
        channel_inboxes(loop_layer(self)).pop(channel, None)
