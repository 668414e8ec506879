"""Every use of a library's private internals, in one place, and the versions it was read from.

Written against the versions pinned in requirements.txt (a test checks they are the ones
installed): channels-redis 4.3.0, channels 4.3.2, daphne 4.2.3 and autobahn 26.11.1. On an
upgrade, read each function here against the new source; tests/realtime and tests/e2e
exercise all of them through real connections.
"""

import functools
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from channels.consumer import get_handler_name
from channels_redis.pubsub import RedisPubSubChannelLayer
from channels_redis.utils import _consistent_hash

WRITTEN_AGAINST = {
    "channels-redis": "4.3.0",
    "channels": "4.3.2",
    "daphne": "4.2.3",
    "autobahn": "26.11.1",
}

__all__ = [
    "WRITTEN_AGAINST",
    "DirectTextSender",
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


def local_group_members(loop: Any) -> dict[str, set[str]]:
    """Group channel → this process's member channels (`RedisPubSubLoopLayer.groups`)."""
    groups: dict[str, set[str]] = loop.groups
    return groups


def group_channel_name(prefix: str, group: str) -> str:
    """The Redis pub/sub channel of a group (`RedisPubSubLoopLayer._get_group_channel_name`)."""
    return f"{prefix}__group__{group}"


def shard_of(channel: str, shards: int) -> int:
    """Which of the layer's hosts carries `channel` (`RedisPubSubLoopLayer._get_shard`:
    channels_redis's consistent hash), so a publisher outside the layer finds it."""
    index: int = _consistent_hash(channel, shards)
    return index


def publish_payload(layer: RedisPubSubChannelLayer, message: dict[str, Any]) -> bytes:
    """A message serialised as the layer's receive loop decodes it (its `serialize`)."""
    payload: bytes = layer.serialize(message)
    return payload


# daphne: the transport behind an ASGI `send`.


def _daphne_reply(
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> functools.partial[Any] | None:
    """daphne's `functools.partial(server.handle_reply, protocol)` behind an ASGI `send`.

    Channels' middleware wraps it in objects that keep the inner one as `real_send`.
    """
    current: Any = send
    for _ in range(10):
        if isinstance(current, functools.partial):
            return current if current.args else None
        current = getattr(getattr(current, "__self__", None), "real_send", None)
        if current is None:
            return None
    return None


def daphne_transport(send: Callable[[dict[str, Any]], Awaitable[None]]) -> Any | None:
    """The Twisted transport behind daphne's `send`, or None under another server."""
    reply = _daphne_reply(send)
    return None if reply is None else getattr(reply.args[0], "transport", None)


@functools.lru_cache(maxsize=512)
def text_frame(text: str) -> bytes:
    """One unfragmented, unmasked WebSocket text frame (RFC 6455 §5.2), as a server sends.

    Cached: a live event is framed once for all the connections of the process it goes
    to (the same str object, whose hash Python keeps).
    """
    payload = text.encode()
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x81, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload


class DirectTextSender:
    """Writes a text message's frame straight to daphne's transport.

    What `send({"type": "websocket.send", "text": ...})` does through daphne's
    `handle_reply` and autobahn's `sendMessage` ends in the same bytes written to the same
    transport, after a dozen calls per message that were a third of a busy process's CPU.
    Used only in autobahn's plain state (open, no compression, no frames queued, no
    message size limit exceeded); otherwise `write` says no and the caller sends the
    ordinary way. Both run on the event loop, so their order is kept.
    """

    def __init__(self, server: Any, protocol: Any) -> None:
        self._connections: dict[Any, dict[str, Any]] = server.connections
        self._protocol = protocol

    @classmethod
    def behind(cls, send: Callable[[dict[str, Any]], Awaitable[None]]) -> "DirectTextSender | None":
        """The sender for daphne's `send`, or None under another server."""
        reply = _daphne_reply(send)
        server = getattr(reply.func, "__self__", None) if reply is not None else None
        if reply is None or not hasattr(server, "connections"):
            return None
        protocol = reply.args[0]
        needed = ("state", "STATE_OPEN", "transport", "send_queue", "_perMessageCompress")
        if not all(hasattr(protocol, name) for name in needed):
            return None
        return cls(server, protocol)

    def write(self, text: str) -> bool:
        protocol = self._protocol
        connection = self._connections.get(protocol)
        if (
            connection is None
            or connection.get("disconnected")
            or protocol.state != protocol.STATE_OPEN
            or protocol._perMessageCompress is not None
            or protocol.send_queue
        ):
            return False
        frame = text_frame(text)
        limit = getattr(protocol, "maxMessagePayloadSize", 0)
        if 0 < limit < len(frame):
            return False
        protocol.transport.write(frame)
        return True
