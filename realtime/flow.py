"""Noticing a client that stops reading, so it can be told to reconnect instead of hoarding memory.

ASGI gives an application no back-pressure: daphne buffers whatever it is sent for a
client that does not read. Under daphne, the consumer's `send` is a partial bound to the
connection's protocol, whose Twisted transport accepts a streaming producer: Twisted
calls `pauseProducing` when its write buffer is full and `resumeProducing` once it has
drained. `SendWindow` is that producer. Elsewhere (tests, other servers) it never pauses.
"""

import functools
import logging
from typing import Any

logger = logging.getLogger(__name__)


class SendWindow:
    """Counts messages sent while the client's write buffer is full."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.paused = False
        self.sent_while_paused = 0
        self._transport: Any = None

    def attach(self, send: Any) -> None:
        """Register with the Twisted transport behind daphne's `send`, if there is one."""
        protocol = send.args[0] if isinstance(send, functools.partial) and send.args else None
        transport = getattr(protocol, "transport", None)
        if transport is None or getattr(transport, "producer", None) is not None:
            return
        try:
            transport.registerProducer(self, True)
        except Exception:  # not a Twisted transport after all: run without the window
            logger.debug("no producer support on %r", transport, exc_info=True)
            return
        self._transport = transport

    def detach(self) -> None:
        if self._transport is not None and getattr(self._transport, "producer", None) is self:
            self._transport.unregisterProducer()
        self._transport = None

    def note_sent(self) -> bool:
        """Count one message sent; False once too many went out while the client lagged."""
        if self.paused:
            self.sent_while_paused += 1
        return self.sent_while_paused <= self.limit

    # Twisted's IPushProducer.
    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self.sent_while_paused = 0

    def stopProducing(self) -> None:
        self.paused = True
