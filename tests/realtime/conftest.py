"""Fixtures for the WebSocket API tests: people, tokens, auctions and connected clients.

The tests drive the full ASGI stack (origin check, session and token auth, routing) with
channels' WebsocketCommunicator, against the real PostgreSQL and Redis. Test modules mark
themselves `django_db(transaction=True)`: the consumer works in other threads, and events
are published only once their transaction has committed.
"""

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client, override_settings

from accounts.models import User
from accounts.services import api_token_create
from auction_site.asgi import application
from auctions.models import Auction, AuctionEvent
from bidding.models import Bid
from bidding.services import BidAccepted, batcher, bid_place
from tests.factories import AuctionFactory, UserFactory, redis_clients_forget

# Seconds to wait for a message. Generous, because a timeout also kills the consumer
# and other test runs may share the machine.
TIMEOUT = 5
# Seconds to watch for a message that must not come.
QUIET = 0.3

EVENT_TYPES = frozenset(
    {"bid_placed", "auction_started", "auction_extended", "auction_ended", "auction_cancelled"}
)

Headers = list[tuple[bytes, bytes]]


# Talking to a connection


async def send_json(communicator: WebsocketCommunicator, message: Any) -> None:
    await communicator.send_to(text_data=json.dumps(message))


async def send_text(communicator: WebsocketCommunicator, text: str) -> None:
    """Send a text frame as is (send_to refuses an empty one, which a client can send)."""
    await communicator.send_input({"type": "websocket.receive", "text": text})


async def send_bytes(communicator: WebsocketCommunicator, data: bytes) -> None:
    await communicator.send_input({"type": "websocket.receive", "bytes": data})


async def receive_frame(
    communicator: WebsocketCommunicator, timeout: float = TIMEOUT
) -> dict[str, Any]:
    """The next ASGI message the application sends; raises at once what it died of, if it did.

    (The communicator's own receive waits out its timeout when the application crashed,
    and cancels the application when it times out.)
    """
    output = asyncio.ensure_future(communicator.output_queue.get())
    done, _ = await asyncio.wait(
        {output, communicator.future}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
    )
    if output in done:
        return output.result()
    output.cancel()
    if communicator.future.done():
        communicator.future.result()
        raise AssertionError("the application stopped without closing the connection")
    raise TimeoutError(f"nothing received in {timeout} seconds")


async def receive_json(communicator: WebsocketCommunicator, timeout: float = TIMEOUT) -> Any:
    frame = await receive_frame(communicator, timeout)
    assert frame["type"] == "websocket.send" and "text" in frame, frame
    return json.loads(frame["text"])


async def request(communicator: WebsocketCommunicator, message: Any) -> dict[str, Any]:
    """Send a message and return the next one received (its reply, where nothing else flows)."""
    await send_json(communicator, message)
    return await receive_json(communicator)


async def receive_events(
    communicator: WebsocketCommunicator, count: int, timeout: float = TIMEOUT
) -> list[dict[str, Any]]:
    """The next `count` messages, which must all be events."""
    events = [await receive_json(communicator, timeout) for _ in range(count)]
    assert all(event["type"] in EVENT_TYPES for event in events), events
    return events


async def subscribe(
    communicator: WebsocketCommunicator, auction: Auction, **fields: Any
) -> dict[str, Any]:
    """Subscribe and return the `subscribed` reply (replayed events follow it)."""
    reply = await request(
        communicator, {"type": "subscribe", "auction_id": str(auction.id), **fields}
    )
    assert reply["type"] == "subscribed", reply
    return reply


async def assert_alive(communicator: WebsocketCommunicator) -> None:
    """The connection still answers a ping (and had nothing else queued)."""
    reply = await request(communicator, {"type": "ping", "request_id": "alive?"})
    assert (reply["type"], reply["request_id"]) == ("pong", "alive?"), reply


async def assert_quiet(communicator: WebsocketCommunicator) -> None:
    assert await communicator.receive_nothing(QUIET), "an unexpected message arrived"


def seqs(events: list[dict[str, Any]]) -> list[int]:
    return [event["seq"] for event in events]


# The database, from async tests


def _bid(auction: Auction, user: User, amount: Any, request_id: str | None = None) -> BidAccepted:
    accepted = bid_place(auction_id=auction.id, bidder=user, amount=amount, request_id=request_id)
    # Its events are published on the batcher's own thread: the bid is done once they are.
    batcher.wait_for_after()
    return accepted


place_bid = database_sync_to_async(_bid)
make_auction = database_sync_to_async(AuctionFactory)


@database_sync_to_async
def bid_count(auction: Auction) -> int:
    return Bid.objects.filter(auction=auction).count()


@database_sync_to_async
def stored_event(auction: Auction, seq: int) -> AuctionEvent:
    return AuctionEvent.objects.get(auction=auction, seq=seq)


@database_sync_to_async
def place_bids(auction: Auction, bidders: list[User], start: int = 10) -> list[BidAccepted]:
    """One accepted bid per bidder in turn, from `start` up by 1 (the factory's increment)."""
    return [_bid(auction, bidder, Decimal(start + number)) for number, bidder in enumerate(bidders)]


# People, tokens, cookies


@pytest.fixture
def carol(db) -> User:
    return UserFactory(username="carol")


@pytest.fixture
def token_for(db) -> Callable[[User], str]:
    """A fresh API token for a user."""

    def make(user: User) -> str:
        return api_token_create(user=user)[1]

    return make


@pytest.fixture
def alice_token(token_for, alice) -> str:
    return token_for(alice)


@pytest.fixture
def bob_token(token_for, bob) -> str:
    return token_for(bob)


@pytest.fixture
def carol_token(token_for, carol) -> str:
    return token_for(carol)


@pytest.fixture
def seller_token(token_for, seller) -> str:
    return token_for(seller)


@pytest.fixture
def alice_cookie(alice) -> tuple[bytes, bytes]:
    """The `Cookie` header of a browser where alice is logged in."""
    client = Client()
    client.force_login(alice)
    session_id = client.cookies[settings.SESSION_COOKIE_NAME].value
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={session_id}".encode())


# Connections


async def disconnect(communicator: WebsocketCommunicator) -> None:
    """Disconnect; raise whatever the application died of, if it did."""
    future = communicator.future
    if future.done():
        if not future.cancelled():
            future.result()
        return
    await communicator.disconnect(timeout=TIMEOUT)


@pytest.fixture
async def handshake() -> AsyncIterator[
    Callable[..., Awaitable[tuple[WebsocketCommunicator, bool, Any]]]
]:
    """Open a WebSocket: returns (communicator, accepted, close code or subprotocol).

    Every communicator opened is disconnected when the test ends.
    """
    opened: list[WebsocketCommunicator] = []

    async def open_socket(
        path: str = "/ws/", headers: Headers | None = None
    ) -> tuple[WebsocketCommunicator, bool, Any]:
        communicator = WebsocketCommunicator(application, path, headers=headers or [])
        opened.append(communicator)
        accepted, detail = await communicator.connect(timeout=TIMEOUT)
        return communicator, accepted, detail

    yield open_socket
    for communicator in opened:
        await disconnect(communicator)


@pytest.fixture
async def connect(handshake) -> Callable[..., Awaitable[WebsocketCommunicator]]:
    """A connected client identified by `token` (as `?token=`), disconnected at the end."""

    async def open_connection(token: str, headers: Headers | None = None) -> WebsocketCommunicator:
        communicator, accepted, _ = await handshake(f"/ws/?token={token}", headers)
        assert accepted
        return communicator

    return open_connection


# Redis away


def _closed_port() -> int:
    """A local port nothing listens on: connecting to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def _redis_away() -> Iterator[None]:
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    layers = {
        "default": {
            **settings.CHANNEL_LAYERS["default"],
            "CONFIG": {"hosts": [{"address": url, "socket_connect_timeout": 1}]},
        }
    }
    # The clients are cached per process: drop them on the way in and on the way out.
    try:
        with override_settings(REDIS_URL=url, CHANNEL_REDIS_URLS=[url], CHANNEL_LAYERS=layers):
            redis_clients_forget()
            yield
    finally:
        redis_clients_forget()


@pytest.fixture
def redis_unreachable() -> Callable[[], Any]:
    """A context manager: inside it, the process's Redis (client and channel layer) is away.

    Connections opened before keep their own channel layer, as a running server's would.
    """
    return _redis_away
