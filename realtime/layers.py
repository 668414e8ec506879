"""The channel layer: channels_redis's pub/sub layer, plus cleaning up after a consumer.

Channels asks a layer to forget a consumer's own channel only by cancelling its pending
`receive`; a receive that had already completed when the consumer ended is never
cancelled, so the pub/sub layer kept that channel's Redis subscription and queue forever.
`delete_channel` forgets it explicitly. It uses the layer's internals (its per-loop
layer, channel queues and shards): channels-redis is pinned, and the end-to-end tests
check that no subscription is left behind.
"""

from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer


class AuctionChannelLayer(RedisPubSubChannelLayer):
    async def delete_channel(self, channel: str) -> None:
        layer: Any = self._get_layer()
        if layer.channels.pop(channel, None) is not None:
            await layer._get_shard(channel).unsubscribe(channel)
