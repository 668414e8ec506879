"""The channel layer: channels_redis's pub/sub layer, with process-local consumer channels.

Nothing in this service sends to one connection through Redis: events go to an
auction's group. So a consumer's own channel needs no Redis subscription of its own;
`new_channel` makes just the local queue the group fan-out fills. That saves a Redis
round trip (under the layer's per-process lock) on every handshake and every disconnect,
and a Redis subscription per idle connection.

Channels asks a layer to forget a consumer's channel only by cancelling its pending
`receive`; a receive that had already completed when the consumer ended is never
cancelled, so the queue stayed forever. `delete_channel` forgets it explicitly.

Both use the layer's internals (its per-loop layer and channel queues): channels-redis is
pinned, and the end-to-end tests check delivery and that nothing is left behind.
"""

import asyncio
import uuid
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer


class AuctionChannelLayer(RedisPubSubChannelLayer):
    async def new_channel(self, prefix: str = "specific.") -> str:
        layer: Any = self._get_layer()
        channel = f"{layer.prefix}{prefix}local.{uuid.uuid4().hex}"
        layer.channels[channel] = asyncio.Queue()
        return channel

    async def delete_channel(self, channel: str) -> None:
        layer: Any = self._get_layer()
        layer.channels.pop(channel, None)
