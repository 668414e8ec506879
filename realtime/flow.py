"""Noticing a client that stops reading, so it can be told to reconnect instead of hoarding memory.

ASGI gives an application no back-pressure: daphne buffers whatever it is sent for a
client that does not read. Under daphne, the connection's Twisted transport (found by
realtime.internals) takes a streaming producer: Twisted calls
`pauseProducing` when its write buffer is full and `resumeProducing` once it has drained.
`SendWindow` becomes that producer. daphne's HTTP channel registered itself there before
the upgrade; the window takes its place and passes every call on to it, so the channel
keeps doing what it did (it stops reading a client that does not read). Elsewhere (tests,
other servers) the window never pauses.
"""

import logging
from typing import Any

from realtime.internals import daphne_transport

logger = logging.getLogger(__name__)


class SendWindow:
    """Counts messages sent while the client's write buffer is full."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.paused = False
        self.sent_while_paused = 0
        self.attached = False
        self._transport: Any = None
        self._previous: Any = None

    def attach(self, send: Any) -> None:
        """Become the producer of the Twisted transport behind daphne's `send`, if any."""
        transport = daphne_transport(send)
        if transport is None or not hasattr(transport, "registerProducer"):
            return
        try:
            previous = getattr(transport, "producer", None)
            if previous is not None:
                transport.unregisterProducer()
            transport.registerProducer(self, True)
        except Exception:  # not the transport we know: run without the window
            logger.debug("cannot watch the write buffer of %r", transport, exc_info=True)
            return
        self._transport, self._previous, self.attached = transport, previous, True

    def detach(self) -> None:
        transport = self._transport
        if transport is not None and getattr(transport, "producer", None) is self:
            transport.unregisterProducer()
        self._transport = self._previous = None

    def note_sent(self) -> bool:
        """Count one message sent; False once too many went out while the client lagged."""
        if self.paused:
            self.sent_while_paused += 1
        return self.sent_while_paused <= self.limit

    # Twisted's IPushProducer.
    def pauseProducing(self) -> None:
        self.paused = True
        if self._previous is not None:
            self._previous.pauseProducing()

    def resumeProducing(self) -> None:
        self.paused = False
        self.sent_while_paused = 0
        if self._previous is not None:
            self._previous.resumeProducing()

    def stopProducing(self) -> None:
        self.paused = True
        if self._previous is not None:
            self._previous.stopProducing()
