"""`AuctionClient`: the WebSocket API as a careful client uses it (docs/websocket.md).

One background task owns the connection. It connects (trying the given URLs in turn),
and after any drop (a close, a network error, a server restart: 1006, 1011, 4008, 4503, …)
waits an exponential, capped, jittered delay and connects again; on every new connection
it follows every auction again with `since_seq` = the last seq the application got, asks
for the notifications after the last one it got, and sends again every bid still waiting
for its answer, with the same `request_id`. Only 4401 (no valid identity) is final.

Events pass through one `SeqStream` per auction (and one for notifications), so the
application sees each seq once, in order, however often the server repeats or replays.
"""

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from uuid import UUID

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidURI, WebSocketException

from auction_client.backoff import Backoff
from auction_client.clock import ClockSync
from auction_client.errors import (
    AuctionClientError,
    AuthenticationFailed,
    BidRejected,
    ClientClosed,
    ConnectionLost,
    RequestTimeout,
    ServerError,
)
from auction_client.messages import BidResult, Event, Notification, ServerMessage, Viewers
from auction_client.streams import SeqStream

logger = logging.getLogger("auction_client")

# Close codes of the service (docs/websocket.md, "Close codes").
CLOSE_UNAUTHENTICATED = 4401  # final: the token is not (or no longer) valid
CLOSE_TOO_SLOW = 4008  # the client fell behind: reconnect and resume
CLOSE_MESSAGE_TOO_BIG = 4009
CLOSE_UNAVAILABLE = 4503  # Redis is away: reconnect later and resume
CLOSE_ABNORMAL = 1006  # no close frame: the network or the server went away

# Direct replies: never taken for events, even if a later version adds a `seq` to them.
REPLY_TYPES = frozenset(
    {"subscribed", "unsubscribed", "bid_accepted", "bid_rejected", "pong", "error"}
)
# A notifications replay in flight is asked again for a gap only after this long.
NOTIFICATION_REFILL_SECONDS = 1.0

Money = Decimal | int | str


# Error codes that mean "not decided, send it again" (spec §10).
RETRYABLE = frozenset({"unavailable", "internal_error"})


def _auction_id(value: str | UUID) -> str:
    """The auction id as the server writes it (lowercase, hyphenated)."""
    return str(value if isinstance(value, UUID) else UUID(str(value)))


def _money(value: Money) -> str | int:
    """An amount for the wire: exact (a Decimal goes as a plain decimal string)."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise TypeError("amounts are Decimal, int or str (never float)")
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


def _new_request_id() -> str:
    return str(uuid.uuid4())


@dataclass
class _Request:
    """A client message waiting for its direct reply."""

    message: dict[str, Any]
    future: asyncio.Future[dict[str, Any]]
    carry_over: bool  # sent again (same request_id) on the next connection after a drop
    sent_on: int = 0  # the connection it was last sent on (0: none yet)


@dataclass
class _Subscription:
    auction_id: str
    since_seq: int | None  # as the application first asked
    ready: asyncio.Future[dict[str, Any]]
    stream: SeqStream[Event] = field(default_factory=SeqStream)
    snapshot: dict[str, Any] | None = None
    sent_on: int = 0
    request_id: str | None = None  # of the subscribe in flight
    asked_since: int | None = None  # its since_seq


@dataclass(frozen=True)
class _End:
    error: BaseException | None


class AuctionClient:
    """A WebSocket API client that resumes after any drop and never double-bids.

    ```
    async with AuctionClient("ws://127.0.0.1:8000/ws/", token) as client:
        await client.subscribe(auction_id)
        result = await client.place_bid(auction_id, Decimal("12.00"))
        async for event in client:
            ...
    ```

    `url` may be several URLs (instances behind no load balancer): each new connection
    tries the next. Times are in seconds. `connect_timeout` bounds how long `connect()`
    (`async with`) keeps trying; `request_timeout` how long a bid or subscribe waits for
    its answer, across reconnects.
    """

    def __init__(
        self,
        url: str | Sequence[str],
        token: str,
        *,
        token_in_query: bool = False,
        backoff: Backoff | None = None,
        connect_timeout: float = 30.0,
        request_timeout: float = 30.0,
        open_timeout: float = 10.0,
        clock_interval: float = 30.0,
        clock_samples: int = 3,
        keepalive_interval: float | None = 20.0,
        keepalive_timeout: float | None = 20.0,
        stable_after: float = 5.0,
        max_size: int = 4 * 2**20,
    ) -> None:
        self._urls = [url] if isinstance(url, str) else list(url)
        if not self._urls:
            raise ValueError("give at least one URL")
        self._token = token
        self._token_in_query = token_in_query
        self._backoff = backoff or Backoff()
        self._connect_timeout = connect_timeout
        self._request_timeout = request_timeout
        self._open_timeout = open_timeout
        self._clock_interval = clock_interval
        self._clock_samples = max(1, clock_samples)
        self._keepalive = (keepalive_interval, keepalive_timeout)
        self._stable_after = stable_after
        self._max_size = max_size

        self._ws: ClientConnection | None = None
        self._conn_id = 0  # the connection now (or last) open: 1, 2, …
        self._ready_conn = 0  # the connection whose setup finished
        self._runner: asyncio.Task[None] | None = None
        self._first_ready: asyncio.Future[None] | None = None
        self._failure: BaseException | None = None
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()

        self._requests: dict[str, _Request] = {}
        self._subs: dict[str, _Subscription] = {}
        self._sub_replies: dict[str, str] = {}  # subscribe request_id -> auction_id
        self._notes: SeqStream[Notification] = SeqStream()
        self._notes_following = False
        self._notes_asked_at: float | None = None
        self._queue: asyncio.Queue[ServerMessage | _End] = asyncio.Queue()
        self._clock = ClockSync()

        self.url: str | None = None  # the URL of the connection now open
        self.connections = 0  # connections opened so far (reconnects: this minus one)
        self.close_codes: list[int] = []  # how each connection so far ended

    # --- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Connect (retrying with backoff for up to `connect_timeout`) and sync the clock.

        Raises AuthenticationFailed if the server refuses the token, ConnectionError if no
        URL answered in time.
        """
        if self._runner is not None:
            raise RuntimeError("this client is already connected (or closed)")
        self._first_ready = asyncio.get_running_loop().create_future()
        self._runner = asyncio.create_task(self._run(), name="auction-client")
        try:
            await asyncio.wait_for(asyncio.shield(self._first_ready), self._connect_timeout)
        except TimeoutError:
            await self.close()
            raise ConnectionError(
                f"could not connect to {', '.join(self._urls)} in {self._connect_timeout}s"
            ) from None
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close the connection and stop reconnecting. Waiting calls raise ClientClosed."""
        if self._closed:
            return
        self._closed = True
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 5)
        for task in [self._runner, *self._tasks]:
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._end(ClientClosed("the client was closed"), final=None)

    @property
    def connected(self) -> bool:
        """A connection is open and set up (subscriptions sent again, clock synced)."""
        return self._ws is not None and self._ready_conn == self._conn_id

    @property
    def reconnects(self) -> int:
        return max(0, self.connections - 1)

    # --- following auctions ------------------------------------------------------------

    async def subscribe(
        self, auction_id: str | UUID, since_seq: int | None = None, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Follow an auction; returns its snapshot. With `since_seq`, the events after it are
        delivered first (in order), then the live ones; without, those after the snapshot.

        From then on the auction is followed again after every reconnect, from the last seq
        delivered. Subscribing to an auction already followed returns its snapshot.
        Raises ServerError (`not_found`, `too_many_subscriptions`).
        """
        self._check_usable()
        key = _auction_id(auction_id)
        sub = self._subs.get(key)
        if sub is None:
            ready: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            sub = self._subs[key] = _Subscription(key, since_seq, ready)
            ws = self._ws
            if ws is not None:
                await self._send_subscribe(sub, ws, self._conn_id)
        try:
            return await asyncio.wait_for(
                asyncio.shield(sub.ready), timeout or self._request_timeout
            )
        except TimeoutError:
            if self._subs.get(key) is sub and not sub.ready.done():
                del self._subs[key]
            raise RequestTimeout(sub.request_id or "", f"subscribe {key}") from None

    async def unsubscribe(self, auction_id: str | UUID, *, timeout: float | None = None) -> None:
        """Stop following an auction (its events still queued are still delivered)."""
        self._check_usable()
        key = _auction_id(auction_id)
        sub = self._subs.pop(key, None)
        if sub is not None and not sub.ready.done():
            sub.ready.cancel()
        if self._ws is None:
            return  # the next connection will not follow it
        with contextlib.suppress(ConnectionLost):
            await self._request(
                {"type": "unsubscribe", "auction_id": key},
                _new_request_id(),
                carry_over=False,
                timeout=timeout,
                what=f"unsubscribe {key}",
            )

    def subscriptions(self) -> list[str]:
        return list(self._subs)

    def last_seq(self, auction_id: str | UUID) -> int | None:
        """The seq of the last event of the auction delivered (None before its snapshot)."""
        sub = self._subs.get(_auction_id(auction_id))
        return None if sub is None else sub.stream.last

    def snapshot(self, auction_id: str | UUID) -> dict[str, Any] | None:
        """The auction's snapshot from the latest `subscribed` (not updated by events)."""
        sub = self._subs.get(_auction_id(auction_id))
        return None if sub is None else sub.snapshot

    # --- notifications -----------------------------------------------------------------

    async def follow_notifications(self, since_seq: int = 0) -> None:
        """Deliver the user's notifications after `since_seq` (0: all), then the live ones,
        and after every reconnect those after the last one delivered.

        Without this call, live notifications are delivered too, and resumed from the
        first one seen.
        """
        self._check_usable()
        self._notes = SeqStream(last=since_seq)
        self._notes_following = True
        ws = self._ws
        if ws is not None:
            await self._send_notifications(ws)

    @property
    def last_notification_seq(self) -> int | None:
        return self._notes.last

    # --- bidding -----------------------------------------------------------------------

    async def place_bid(
        self,
        auction_id: str | UUID,
        amount: Money | None = None,
        *,
        max_amount: Money | None = None,
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> BidResult:
        """Bid `amount`, or up to `max_amount` (a maximum bid: the server bids for you).

        Every bid carries a `request_id` (a new uuid4 unless given). If the connection
        drops before the answer, the bid is sent again on the next connection with the
        same `request_id`, so it is decided once: the server answers a repeat from the
        stored outcome. Raises BidRejected (with `code` and `data`) if it is refused, and
        RequestTimeout (with the `request_id` to retry with) if no answer came in time.
        """
        if amount is None and max_amount is None:
            raise ValueError("give an amount, a max_amount or both")
        message: dict[str, Any] = {"type": "place_bid", "auction_id": _auction_id(auction_id)}
        if amount is not None:
            message["amount"] = _money(amount)
        if max_amount is not None:
            message["max_amount"] = _money(max_amount)
        return await self._offer(message, request_id, timeout)

    async def buy_now(
        self,
        auction_id: str | UUID,
        *,
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> BidResult:
        """Buy at the buy-it-now price; retried like `place_bid` (`result.bought` is true)."""
        message = {"type": "buy_now", "auction_id": _auction_id(auction_id)}
        return await self._offer(message, request_id, timeout)

    async def _offer(
        self, message: dict[str, Any], request_id: str | None, timeout: float | None
    ) -> BidResult:
        request_id = request_id or _new_request_id()
        deadline = time.monotonic() + (timeout or self._request_timeout)
        attempt = 0
        while True:
            left = max(deadline - time.monotonic(), 0.001)
            reply = await self._request(
                message, request_id, carry_over=True, timeout=left, what=message["type"]
            )
            # The server could not decide it (its database is away): the same request_id
            # again is decided once, so it is safe to send until the time is up.
            attempt += 1
            pause = self._backoff.delay(attempt)
            if reply.get("code") not in RETRYABLE or time.monotonic() + pause >= deadline:
                break
            await asyncio.sleep(pause)
        kind = reply.get("type")
        if kind == "bid_accepted":
            return BidResult.from_reply(reply)
        if kind == "bid_rejected":
            raise BidRejected(
                str(reply.get("code")),
                str(reply.get("message", "")),
                dict(reply.get("data") or {}),
                auction_id=str(reply.get("auction_id", message["auction_id"])),
                request_id=request_id,
            )
        raise self._reply_error(reply)

    # --- the server's clock ------------------------------------------------------------

    def server_time(self) -> float:
        """The server's time now (Unix seconds), from the `pong`s (local time before any)."""
        return self._clock.server_time()

    @property
    def clock_offset(self) -> float | None:
        """Server clock minus the local clock (seconds), None before the first pong."""
        return self._clock.offset

    @property
    def clock_rtt(self) -> float | None:
        """The round trip (seconds) of the ping the estimate comes from."""
        return self._clock.rtt

    async def sync_clock(self, samples: int = 3) -> float:
        """Ping `samples` times now; returns the new offset estimate."""
        self._check_usable()
        ws = self._ws
        if ws is None:
            raise ConnectionLost("not connected")
        for _ in range(samples):
            await self._ping(ws)
        offset = self._clock.offset
        assert offset is not None
        return offset

    # --- receiving ---------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[ServerMessage]:
        return self.events()

    async def events(self) -> AsyncIterator[ServerMessage]:
        """Events, notifications and viewer counts, as they come; ends when the client is
        closed, raises AuthenticationFailed if the server refused the token. One reader."""
        while True:
            try:
                message = await self.next_event()
            except ClientClosed:
                return  # closed by the application: the iteration simply ends
            yield message

    async def next_event(self, timeout: float | None = None) -> ServerMessage:
        """The next event, notification or viewer count (TimeoutError after `timeout`)."""
        item = await asyncio.wait_for(self._queue.get(), timeout)
        if isinstance(item, _End):
            self._queue.put_nowait(item)  # every later call ends the same way
            # A final failure wins over the close that follows it, whichever _End came.
            error = self._failure or item.error
            raise error if error is not None else ClientClosed("the client was closed")
        return item

    # --- the connection's task ---------------------------------------------------------

    def _connect_url(self, url: str) -> str:
        if not self._token_in_query:
            return url
        parts = urlsplit(url)
        query = [*parse_qsl(parts.query), ("token", self._token)]
        return urlunsplit(parts._replace(query=urlencode(query)))

    async def _open(self, url: str) -> ClientConnection:
        headers = None if self._token_in_query else {"Authorization": f"Bearer {self._token}"}
        interval, keepalive_timeout = self._keepalive
        return await connect(
            self._connect_url(url),
            additional_headers=headers,
            open_timeout=self._open_timeout,
            ping_interval=interval,
            ping_timeout=keepalive_timeout,
            close_timeout=2,
            max_size=self._max_size,
        )

    async def _run(self) -> None:
        attempt = 0
        index = 0
        try:
            while not self._closed:
                url = self._urls[index % len(self._urls)]
                index += 1
                try:
                    ws = await self._open(url)
                except InvalidURI:
                    raise
                except (OSError, TimeoutError, WebSocketException) as error:
                    logger.info("connecting to %s failed: %r", url, error)
                else:
                    opened = time.monotonic()
                    code = await self._serve(ws, url)
                    self.close_codes.append(code)
                    if code == CLOSE_UNAUTHENTICATED:
                        raise AuthenticationFailed("the server refused the token (4401)")
                    if self._closed:
                        return
                    if time.monotonic() - opened >= self._stable_after:
                        attempt = 0
                    logger.warning("connection to %s closed (%s); reconnecting", url, code)
                delay = self._backoff.delay(attempt)
                attempt += 1
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # final: a refused token, a bad URL
            self._end(error, final=error)

    async def _serve(self, ws: ClientConnection, url: str) -> int:
        """Run one connection until it ends; returns its close code."""
        self._conn_id += 1
        self.connections += 1
        conn = self._conn_id
        self._ws, self.url = ws, url
        reader = asyncio.create_task(self._read(ws))
        setup = asyncio.create_task(self._on_open(ws, conn))
        try:
            await asyncio.shield(reader)
        finally:
            for task in (setup, reader):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self._ws = None
            self._on_drop()
        code = ws.close_code
        return CLOSE_ABNORMAL if code is None else code

    async def _on_open(self, ws: ClientConnection, conn: int) -> None:
        """Follow everything again, resend unanswered bids, sync the clock, keep it synced."""
        try:
            for sub in list(self._subs.values()):
                if sub.sent_on != conn and self._subs.get(sub.auction_id) is sub:
                    await self._send_subscribe(sub, ws, conn)
            if self._notes_following:
                await self._send_notifications(ws)
            for request in list(self._requests.values()):
                if request.carry_over and request.sent_on != conn and not request.future.done():
                    await self._send_request(request, ws, conn)
            for _ in range(self._clock_samples):
                await self._ping(ws)
            self._ready_conn = conn
            if self._first_ready is not None and not self._first_ready.done():
                self._first_ready.set_result(None)
            while True:
                await asyncio.sleep(self._clock_interval)
                await self._ping(ws)
        except (ConnectionLost, ConnectionClosed):
            return  # the reader sees the end too
        except RequestTimeout:
            logger.warning("no pong from %s in time; dropping the connection", self.url)
            await ws.close()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("setting up the connection failed; dropping it")
            await ws.close()

    def _on_drop(self) -> None:
        """The connection ended: what waited on it only is told; the rest waits for the next."""
        for request in self._requests.values():
            if not request.carry_over and not request.future.done():
                request.future.set_exception(ConnectionLost("the connection dropped"))
        for sub in self._subs.values():
            sub.sent_on, sub.request_id = 0, None
        self._sub_replies.clear()
        self._notes_asked_at = None

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                if not isinstance(raw, str):
                    continue
                try:
                    message = json.loads(raw)
                except ValueError:
                    logger.warning("not JSON from the server: %.200r", raw)
                    continue
                if not isinstance(message, dict):
                    continue
                try:
                    self._handle(message, ws)
                except Exception:
                    logger.exception("handling a server message failed: %.500r", message)
        except ConnectionClosed:
            pass

    # --- what arrives --------------------------------------------------------------------

    def _handle(self, message: dict[str, Any], ws: ClientConnection) -> None:
        kind = message.get("type")
        request_id = message.get("request_id")
        if kind == "notification":
            self._on_notification(message, ws)
        elif kind == "viewers":
            auction_id = str(message.get("auction_id"))
            if auction_id in self._subs:
                self._queue.put_nowait(
                    Viewers(auction_id, int(message["count"]), float(message["timestamp"]))
                )
        elif kind not in REPLY_TYPES and "seq" in message and "auction_id" in message:
            self._on_event(message, ws)
        elif isinstance(request_id, str) and request_id in self._sub_replies:
            self._on_subscribe_reply(request_id, message)
        elif isinstance(request_id, str) and request_id in self._requests:
            future = self._requests[request_id].future
            if not future.done():
                future.set_result(message)
        elif kind == "error":
            logger.warning("the server said: %s %s", message.get("code"), message.get("message"))

    def _on_event(self, message: dict[str, Any], ws: ClientConnection) -> None:
        sub = self._subs.get(str(message["auction_id"]))
        if sub is None:
            return  # not followed (any more)
        event = Event(
            type=str(message["type"]),
            auction_id=sub.auction_id,
            seq=int(message["seq"]),
            timestamp=float(message.get("timestamp", 0.0)),
            data=dict(message.get("data") or {}),
        )
        for released in sub.stream.offer(event.seq, event):
            self._queue.put_nowait(released)
        if sub.stream.gap() is not None and sub.request_id is None:
            # The server fills gaps itself; should one stay, ask for the replay again.
            logger.info(
                "gap in auction %s after seq %s: replaying", sub.auction_id, sub.stream.last
            )
            self._spawn(self._send_subscribe(sub, ws, self._conn_id))

    def _on_subscribe_reply(self, request_id: str, message: dict[str, Any]) -> None:
        auction_id = self._sub_replies.pop(request_id)
        sub = self._subs.get(auction_id)
        if sub is None or sub.request_id != request_id:
            return  # a stale reply
        sub.request_id = None
        if message.get("type") == "subscribed":
            snapshot: dict[str, Any] = message["data"]
            sub.snapshot = snapshot
            latest = int(snapshot["seq"])
            start = latest if sub.asked_since is None else min(sub.asked_since, latest)
            for released in sub.stream.start(start):
                self._queue.put_nowait(released)
            if not sub.ready.done():
                sub.ready.set_result(snapshot)
            return
        error = self._reply_error(message)
        del self._subs[auction_id]
        if not sub.ready.done():
            self._fail(sub.ready, error)
        else:
            logger.warning("following auction %s again failed: %s", auction_id, error)

    def _on_notification(self, message: dict[str, Any], ws: ClientConnection) -> None:
        note = Notification(
            seq=int(message["seq"]),
            kind=str(message.get("kind")),
            auction_id=str(message.get("auction_id")),
            created_at=str(message.get("created_at")),
            timestamp=float(message.get("timestamp", 0.0)),
            data=dict(message.get("data") or {}),
        )
        if self._notes.last is None:
            # Not asked for: resume from the first one seen.
            self._notes.start(note.seq - 1)
            self._notes_following = True
        for released in self._notes.offer(note.seq, note):
            self._queue.put_nowait(released)
        asked = self._notes_asked_at
        if self._notes.gap() is not None and (
            asked is None or time.monotonic() - asked > NOTIFICATION_REFILL_SECONDS
        ):
            self._spawn(self._send_notifications(ws))

    # --- sending -------------------------------------------------------------------------

    async def _send(self, ws: ClientConnection, message: dict[str, Any]) -> bool:
        try:
            await ws.send(json.dumps(message, separators=(",", ":")))
        except ConnectionClosed:
            return False  # the reader sees the end; what must be resent will be
        return True

    async def _send_subscribe(self, sub: _Subscription, ws: ClientConnection, conn: int) -> None:
        if ws is not self._ws or conn != self._conn_id or self._subs.get(sub.auction_id) is not sub:
            # A refill spawned on a connection that has dropped since (or a subscription
            # given up meanwhile): the next connection follows it again by itself.
            return
        request_id = _new_request_id()
        since = sub.stream.last if sub.stream.last is not None else sub.since_seq
        message: dict[str, Any] = {
            "type": "subscribe",
            "auction_id": sub.auction_id,
            "request_id": request_id,
        }
        if since is not None:
            message["since_seq"] = since
        if sub.request_id is not None:
            self._sub_replies.pop(sub.request_id, None)
        sub.request_id, sub.asked_since, sub.sent_on = request_id, since, conn
        self._sub_replies[request_id] = sub.auction_id
        await self._send(ws, message)

    async def _send_notifications(self, ws: ClientConnection) -> None:
        since = self._notes.last or 0
        self._notes_asked_at = time.monotonic()
        message = {"type": "notifications", "since_seq": since, "request_id": _new_request_id()}
        await self._send(ws, message)

    async def _send_request(self, request: _Request, ws: ClientConnection, conn: int) -> None:
        request.sent_on = conn
        sent = await self._send(ws, request.message)
        if not sent and not request.carry_over and not request.future.done():
            request.future.set_exception(ConnectionLost("the connection dropped"))

    async def _request(
        self,
        message: dict[str, Any],
        request_id: str,
        *,
        carry_over: bool,
        timeout: float | None,
        what: str,
    ) -> dict[str, Any]:
        """Send a message with `request_id` and wait for the reply that echoes it."""
        self._check_usable()
        if request_id in self._requests:
            raise ValueError(f"request_id {request_id} is already waiting for its answer")
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        request = _Request({**message, "request_id": request_id}, future, carry_over)
        self._requests[request_id] = request
        try:
            ws = self._ws
            if ws is not None:
                await self._send_request(request, ws, self._conn_id)
            elif not carry_over:
                raise ConnectionLost("not connected")
            return await asyncio.wait_for(future, timeout or self._request_timeout)
        except TimeoutError:
            raise RequestTimeout(request_id, what) from None
        finally:
            if self._requests.get(request_id) is request:
                del self._requests[request_id]

    async def _ping(self, ws: ClientConnection) -> None:
        sent = time.monotonic()
        reply = await self._request(
            {"type": "ping"}, _new_request_id(), carry_over=False, timeout=None, what="ping"
        )
        received = time.monotonic()
        if reply.get("type") != "pong":
            raise self._reply_error(reply)
        self._clock.add(sent=sent, received=received, server_timestamp=float(reply["timestamp"]))

    # --- helpers -------------------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _check_usable(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._closed or self._runner is None:
            raise ClientClosed("the client is not connected: use `async with` or connect()")

    @staticmethod
    def _reply_error(reply: dict[str, Any]) -> AuctionClientError:
        if reply.get("type") == "error":
            request_id = reply.get("request_id")
            return ServerError(
                str(reply.get("code")),
                str(reply.get("message", "")),
                request_id if isinstance(request_id, str) else None,
            )
        return AuctionClientError(f"unexpected reply: {reply!r:.300}")

    @staticmethod
    def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
        """Fail a future that its waiter may have stopped waiting for (a timed-out
        connect, a cancelled caller), without asyncio logging it as never retrieved."""
        if not future.done():
            future.set_exception(error)
            future.exception()  # marks it retrieved; a waiter still gets the error

    def _end(self, error: BaseException, *, final: BaseException | None) -> None:
        """Everything waiting gets `error`; the event iterator ends (raising `final`)."""
        if final is not None:
            self._failure = final
            logger.error("the auction client stopped: %s", final)
        for request in self._requests.values():
            self._fail(request.future, error)
        for sub in self._subs.values():
            self._fail(sub.ready, error)
        if self._first_ready is not None:
            self._fail(self._first_ready, error)
        self._queue.put_nowait(_End(final))
