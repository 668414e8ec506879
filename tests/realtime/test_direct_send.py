"""Frames written straight to daphne's connection (realtime.internals.DirectTextSender)."""

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from realtime.internals import DirectTextSender, text_frame


def parsed(data: bytes) -> Frame:
    """The frame as a client reads it, by the websockets library's own parser."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        while True:
            next(parser)
    except StopIteration as done:
        frame: Frame = done.value
    assert reader.at_eof(), "bytes left over after the frame"
    return frame


# Around each length encoding's edges (RFC 6455 §5.2: 7 bits, 16 bits, 64 bits).
@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_a_text_frame_reads_back_as_the_same_text(size):
    text = ("é" + "x" * size)[:size] if size else ""
    frame = parsed(text_frame(text))
    assert frame.opcode == Opcode.TEXT
    assert frame.fin
    assert frame.data.decode() == text


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)


class FakeProtocol:
    STATE_OPEN = 1

    def __init__(self) -> None:
        self.state = self.STATE_OPEN
        self.transport = FakeTransport()
        self.send_queue: list[bytes] = []
        self._perMessageCompress = None
        self.maxMessagePayloadSize = 0


def sender_for(protocol: FakeProtocol, connection: dict) -> DirectTextSender:
    class Server:
        connections = {protocol: connection}

    return DirectTextSender(Server(), protocol)


def test_it_writes_the_frame_while_the_connection_is_plain_and_open():
    protocol = FakeProtocol()
    assert sender_for(protocol, {}).write("hello")
    assert protocol.transport.written == [text_frame("hello")]


@pytest.mark.parametrize(
    "unusual",
    [
        lambda p, c: setattr(p, "state", 3),  # closing
        lambda p, c: c.update(disconnected=True),
        lambda p, c: setattr(p, "_perMessageCompress", object()),
        lambda p, c: p.send_queue.append(b"queued"),
        lambda p, c: setattr(p, "maxMessagePayloadSize", 3),
    ],
    ids=["not open", "disconnected", "compressed", "frames queued", "over the size limit"],
)
def test_it_leaves_anything_unusual_to_the_ordinary_send(unusual):
    protocol, connection = FakeProtocol(), {}
    unusual(protocol, connection)
    assert not sender_for(protocol, connection).write("hello")
    assert protocol.transport.written == []


def test_it_is_not_found_behind_another_server():
    async def send(message: dict) -> None:
        pass

    assert DirectTextSender.behind(send) is None
