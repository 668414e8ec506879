"""Every use of a library's private internals, in one place, and the versions it was read from.

Written against the versions pinned in requirements.txt (a test checks they are the ones
installed): channels-redis 4.3.0, channels 4.3.2 and daphne 4.2.3. On an upgrade, read
each function here against the new source; tests/realtime and tests/e2e exercise all of
them through real connections.
"""

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from channels.consumer import get_handler_name
from channels_redis.pubsub import RedisPubSubChannelLayer

WRITTEN_AGAINST = {"channels-redis": "4.3.0", "channels": "4.3.2", "daphne": "4.2.3"}

__all__ = [
    "WRITTEN_AGAINST",
    "channel_inboxes",
    "daphne_transport",
    "get_handler_name",
    "group_channel_name",
    "loop_layer",
    "publish_payload",
]


# channels-redis: the pub/sub layer.


def loop_layer(layer: RedisPubSubChannelLayer) -> Any:
    """The layer's per-event-loop implementation (`RedisPubSubLoopLayer`), where its
    channels, subscriptions and receive loop live (`RedisPubSubChannelLayer._get_layer`)."""
    return layer._get_layer()


def channel_inboxes(loop: Any) -> dict[str, Any]:
    """Channel name → the queue the layer's receive loop fills for it.

    The loop layer puts every message for a channel (a group message, once per member)
    with `channels[name].put_nowait(message)`, passing the same bytes object to each
    member; realtime.layers replaces the queue to hand messages out directly.
    """
    inboxes: dict[str, Any] = loop.channels
    return inboxes


def group_channel_name(prefix: str, group: str) -> str:
    """The Redis pub/sub channel of a group (`RedisPubSubLoopLayer._get_group_channel_name`)."""
    return f"{prefix}__group__{group}"


def publish_payload(layer: RedisPubSubChannelLayer, message: dict[str, Any]) -> bytes:
    """A message serialised as the layer's receive loop decodes it (its `serialize`)."""
    payload: bytes = layer.serialize(message)
    return payload


# daphne: the transport behind an ASGI `send`.


def daphne_transport(send: Callable[[dict[str, Any]], Awaitable[None]]) -> Any | None:
    """The Twisted transport behind daphne's `send`, or None under another server.

    daphne hands the application `functools.partial(server.handle_reply, protocol)`;
    Channels' middleware wraps it in objects that keep the inner one as `real_send`.
    """
    current: Any = send
    for _ in range(10):
        if isinstance(current, functools.partial):
            protocol = current.args[0] if current.args else None
            return getattr(protocol, "transport", None)
        current = getattr(getattr(current, "__self__", None), "real_send", None)
        if current is None:
            return None
    return None
