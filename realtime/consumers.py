"""The WebSocket API (spec §2): subscribe, unsubscribe, place_bid, ping, and event delivery.

Each subscription remembers the last seq it sent. A live event at or below it is a
repeat and is dropped; one beyond the next seq reveals a gap, which is filled from the
stored events first. So every subscriber gets every event exactly once, in order, from
at-least-once publishing. The live path touches no database.
"""

import asyncio
import contextlib
import json
import logging
import time
from typing import Any
from uuid import UUID

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from auctions.errors import Code, DomainError
from auctions.events import event_as_message
from auctions.selectors import auction_get, auction_snapshot, event_list
from bidding.services import bid_place
from realtime.db import in_db_thread
from realtime.flow import SendWindow
from realtime.protocol import ClientMessage, ProtocolError, parse_client_message
from realtime.publish import EVENT_MESSAGE_TYPE, auction_group

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
# 1009 is the standard code, but servers may only send 1000 and 3000-4999 themselves
# (daphne's protocol library enforces it); daphne itself answers 1009 above 1 MiB.
CLOSE_MESSAGE_TOO_BIG = 4009
# The client fell too far behind: reconnect and resume with since_seq.
CLOSE_TOO_SLOW = 4008
# The service cannot follow auctions right now (Redis is away): reconnect later, since_seq.
CLOSE_UNAVAILABLE = 4503
# Messages a connection may be sent while its client is not reading, before it is closed.
MAX_SENT_WHILE_BLOCKED = 1000
# How long an event that arrived ahead of a gap waits for the missing ones to arrive live
# before they are read from the database.
GAP_GRACE_SECONDS = 0.05
# Replays and gap fills read stored events in pages of this size.
REPLAY_PAGE = 500


def _dump(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


def _now() -> float:
    return round(time.time(), 3)


@in_db_thread
def _snapshot(auction_id: UUID) -> dict[str, Any]:
    return auction_snapshot(auction_get(auction_id=auction_id, for_snapshot=True))


@in_db_thread
def _stored_texts(auction_id: UUID, after: int, upto: int) -> list[tuple[int, str]]:
    limit = min(REPLAY_PAGE, upto - after)
    events = event_list(auction_id=auction_id, since_seq=after, limit=limit)
    return [(event.seq, _dump(event_as_message(event))) for event in events]


# Pages being read, by (auction, after, upto). The connections of a process that follow
# an auction see the same gap at the same moment (and a reconnect storm resumes from the
# same seq): they share one read instead of each querying the database. Events up to
# `upto` are committed before anyone asks, so a read begun earlier serves later askers.
_pages_in_flight: dict[tuple[UUID, int, int], asyncio.Future] = {}


async def _stored_page(auction_id: UUID, after: int, upto: int) -> list[tuple[int, str]]:
    key = (auction_id, after, upto)
    page = _pages_in_flight.get(key)
    if page is None:
        page = _pages_in_flight[key] = asyncio.ensure_future(_stored_texts(*key))
        page.add_done_callback(lambda _: _pages_in_flight.pop(key, None))
    # Shielded: one asker going away must not cancel the read for the others.
    return await asyncio.shield(page)


# Snapshot reads, per auction: the one running, and the one that starts after it. A
# subscriber's snapshot must be read after it joined the group, or an event published in
# between would reach neither; so it never joins a read already running, only the next
# one. Everyone who subscribes while a read runs shares the next (a page load of a busy
# auction, a reconnect storm): one query per auction at a time, per process.
_snapshots_running: dict[UUID, asyncio.Task] = {}
_snapshots_next: dict[UUID, asyncio.Task] = {}


async def _shared_snapshot(auction_id: UUID) -> dict[str, Any]:
    """The auction's snapshot, read after this call began. Callers must not change it."""
    read = _snapshots_next.get(auction_id)
    if read is None:
        read = _snapshots_next[auction_id] = asyncio.ensure_future(_read_after_running(auction_id))
    # Shielded: one subscriber going away must not cancel the read for the others.
    return await asyncio.shield(read)


async def _read_after_running(auction_id: UUID) -> dict[str, Any]:
    running = _snapshots_running.get(auction_id)
    if running is not None:
        await asyncio.wait([running])
    # From here on, new subscribers wait for the read after this one.
    this = _snapshots_running[auction_id] = _snapshots_next.pop(auction_id)
    try:
        return await _snapshot(auction_id)
    finally:
        if _snapshots_running.get(auction_id) is this:
            del _snapshots_running[auction_id]


@in_db_thread
def _place_bid(message: ClientMessage, user: Any) -> dict[str, Any]:
    accepted = bid_place(
        auction_id=message.auction_id,
        bidder=user,
        amount=message.amount,
        request_id=message.request_id,
    )
    return accepted.as_data()


class AuctionConsumer(AsyncWebsocketConsumer):
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # Per auction followed: the last seq sent, events that arrived ahead of a gap,
        # and the task that fills the gap from the database if it does not close itself.
        self.last_sent: dict[str, int] = {}
        self.held: dict[str, dict[int, str]] = {}
        self.gap_fills: dict[str, asyncio.Task] = {}
        # Live events that arrived while a client message was being handled wait here.
        self.handling_client = False
        self.deferred_events: list[dict[str, Any]] = []
        try:
            await super().__call__(scope, receive, send)
        finally:
            # However the consumer ends (a disconnect, a failed send, cancellation), it
            # leaves its groups and its own channel: nothing stays subscribed in Redis.
            await self.leave_all()
            try:
                if hasattr(self.channel_layer, "delete_channel"):
                    await self.channel_layer.delete_channel(self.channel_name)
            except Exception:
                logger.warning("cleaning up a finished connection failed", exc_info=True)

    async def connect(self) -> None:
        self.user = self.scope.get("user")
        self.window = SendWindow(limit=MAX_SENT_WHILE_BLOCKED)
        await self.accept()
        if self.user is None or not self.user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.window.attach(self.base_send)
        if hasattr(self.channel_layer, "take_live"):
            self.channel_layer.take_live(self.channel_name, self.take_live_event)

    async def disconnect(self, code: int) -> None:
        self.window.detach()
        await self.leave_all()

    async def leave_all(self) -> None:
        """Leave every group this connection joined. Never raises."""
        auction_ids = list(self.last_sent)
        self.last_sent.clear()
        for auction_id in auction_ids:
            self.forget_gap(auction_id)
            try:
                await self.channel_layer.group_discard(auction_group(auction_id), self.channel_name)
            except Exception:
                logger.warning("leaving the group of auction %s failed", auction_id, exc_info=True)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' own dispatch closes stale database connections before every handler,
        # a hop to its one sync thread per message. Nothing here touches the database on
        # the event loop: live events never do, and every query runs in `in_db_thread`,
        # which closes stale connections in its own thread. So no handler needs the hop.
        if message["type"] == EVENT_MESSAGE_TYPE:
            await self.auction_event(message)
            return
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        # Live events wait while a client message is handled, as they would in a queue:
        # a subscribe's snapshot and replay come before the events that follow them.
        self.handling_client = True
        try:
            await handler(message)
        finally:
            while self.deferred_events:
                await self.auction_event(self.deferred_events.pop(0))
            self.handling_client = False

    async def take_live_event(self, message: dict[str, Any]) -> None:
        """The layer's direct fan-out hands this connection a live event (layers.py)."""
        if self.handling_client:
            self.deferred_events.append(message)
            return
        # A failed send means the client is gone; daphne tells the consumer so, and it ends.
        with contextlib.suppress(StopConsumer):
            await self.auction_event(message)

    # Client → server

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not getattr(self.user, "is_authenticated", False):
            return
        size = len(bytes_data) if bytes_data is not None else len((text_data or "").encode())
        if size > settings.WS_MAX_MESSAGE_BYTES:
            await self.close(code=CLOSE_MESSAGE_TOO_BIG)
            return
        try:
            if bytes_data is not None:
                raise ProtocolError(Code.INVALID_MESSAGE, "Binary frames are not accepted.")
            message = parse_client_message(text_data or "")
            await getattr(self, f"on_{message.type}")(message)
        except ProtocolError as error:
            await self.reply("error", error.request_id, code=error.code, message=error.message)
        except DomainError as error:
            await self.reply("error", None, code=error.code, message=error.message)

    async def on_ping(self, message: ClientMessage) -> None:
        await self.reply("pong", message.request_id)

    async def on_subscribe(self, message: ClientMessage) -> None:
        auction_id = str(message.auction_id)
        if (
            auction_id not in self.last_sent
            and len(self.last_sent) >= settings.WS_MAX_SUBSCRIPTIONS
        ):
            raise ProtocolError(
                Code.TOO_MANY_SUBSCRIPTIONS,
                f"At most {settings.WS_MAX_SUBSCRIPTIONS} subscriptions per connection.",
                message.request_id,
            )
        # Join before reading the snapshot: a live event published meanwhile waits in this
        # consumer's queue and is then dropped as a repeat or sent after the replay.
        try:
            await self.channel_layer.group_add(auction_group(auction_id), self.channel_name)
        except Exception:
            # Redis is away: this connection cannot follow anything until it is back.
            logger.warning("subscribing failed; closing the connection", exc_info=True)
            await self.close(code=CLOSE_UNAVAILABLE)
            raise StopConsumer() from None
        try:
            snapshot = await _shared_snapshot(message.auction_id)
        except DomainError as error:
            if auction_id not in self.last_sent:
                await self.channel_layer.group_discard(auction_group(auction_id), self.channel_name)
            raise ProtocolError(error.code, error.message, message.request_id) from error
        await self.reply("subscribed", message.request_id, auction_id=auction_id, data=snapshot)
        # A since_seq ahead of the auction (a client's mistake) replays nothing and must
        # not hide the events still to come.
        start = (
            snapshot["seq"]
            if message.since_seq is None
            else min(message.since_seq, snapshot["seq"])
        )
        self.forget_gap(auction_id)
        self.last_sent[auction_id] = start
        # Events after the snapshot arrive live: the group was joined before it was read.
        await self.send_stored(auction_id, upto=snapshot["seq"])

    async def on_unsubscribe(self, message: ClientMessage) -> None:
        auction_id = str(message.auction_id)
        self.forget_gap(auction_id)
        if self.last_sent.pop(auction_id, None) is not None:
            try:
                await self.channel_layer.group_discard(auction_group(auction_id), self.channel_name)
            except Exception:  # Redis is away; the event stream is ignored from now on anyway
                logger.warning("leaving the group of auction %s failed", auction_id, exc_info=True)
        await self.reply("unsubscribed", message.request_id, auction_id=auction_id)

    async def on_place_bid(self, message: ClientMessage) -> None:
        auction_id = str(message.auction_id)
        try:
            data = await _place_bid(message, self.user)
        except DomainError as rejected:  # BidRejected, or NotFound for an unknown auction
            await self.reply(
                "bid_rejected",
                message.request_id,
                auction_id=auction_id,
                code=rejected.code,
                message=rejected.message,
                data=rejected.data,
            )
        else:
            await self.reply("bid_accepted", message.request_id, auction_id=auction_id, data=data)

    # Server → subscribers

    async def auction_event(self, event: dict[str, Any]) -> None:
        auction_id, seq = event["auction_id"], event["seq"]
        last = self.last_sent.get(auction_id)
        if last is None or seq <= last:
            return  # not subscribed (any more), or already sent
        if seq == last + 1:
            await self.send_in_order(auction_id, seq, event["text"])
            await self.release_held(auction_id)
            return
        # A gap. Events of two commits often arrive in the other order within
        # milliseconds: hold this one, and fill from the database only if the gap stays.
        held = self.held.setdefault(auction_id, {})
        held[seq] = event["text"]
        if auction_id not in self.gap_fills:
            self.gap_fills[auction_id] = asyncio.create_task(self.fill_gap_later(auction_id))

    async def send_in_order(self, auction_id: str, seq: int, text: str) -> None:
        # Claim the seq before sending, so nothing else sends it meanwhile.
        self.last_sent[auction_id] = seq
        await self.send_counted(text)

    async def release_held(self, auction_id: str) -> None:
        """Send the held events that now follow on; forget those already sent."""
        held = self.held.get(auction_id)
        while held and auction_id in self.last_sent:
            next_seq = self.last_sent[auction_id] + 1
            for seq in [s for s in held if s < next_seq]:
                del held[seq]
            if next_seq not in held:
                break
            await self.send_in_order(auction_id, next_seq, held.pop(next_seq))
        if not held:
            self.held.pop(auction_id, None)
            task = self.gap_fills.pop(auction_id, None)
            if task is not None and task is not asyncio.current_task():
                task.cancel()

    async def fill_gap_later(self, auction_id: str) -> None:
        try:
            await asyncio.sleep(GAP_GRACE_SECONDS)
            while self.held.get(auction_id) and auction_id in self.last_sent:
                after = self.last_sent[auction_id]
                await self.send_stored(auction_id, upto=min(self.held[auction_id]) - 1)
                await self.release_held(auction_id)
                if self.last_sent.get(auction_id) == after:
                    await asyncio.sleep(GAP_GRACE_SECONDS)  # not stored yet: look again
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("filling a gap of auction %s failed", auction_id, exc_info=True)
        finally:
            if self.gap_fills.get(auction_id) is asyncio.current_task():
                del self.gap_fills[auction_id]

    def forget_gap(self, auction_id: str) -> None:
        self.held.pop(auction_id, None)
        task = self.gap_fills.pop(auction_id, None)
        if task is not None:
            task.cancel()

    async def send_stored(self, auction_id: str, upto: int) -> None:
        """Send stored events after the last one sent, up to seq `upto`.

        Used by subscribe's replay and by gap fills; an event something else sent while
        a page was being read is skipped, never sent twice.
        """
        while auction_id in self.last_sent:
            after = self.last_sent[auction_id]
            if after >= upto:
                return
            page = await _stored_page(UUID(auction_id), after, upto)
            for seq, text in page:
                if self.last_sent.get(auction_id) == seq - 1:
                    await self.send_in_order(auction_id, seq, text)
            if len(page) < REPLAY_PAGE:
                return

    # Sending

    async def reply(self, type: str, request_id: str | None, **fields: Any) -> None:
        message: dict[str, Any] = {"type": type}
        if request_id is not None:
            message["request_id"] = request_id
        message.update(fields)
        message["timestamp"] = _now()
        await self.send_counted(_dump(message))

    async def send_counted(self, text: str) -> None:
        if not self.window.note_sent():
            logger.info("closing a connection whose client stopped reading")
            await self.leave_all()
            await self.close(code=CLOSE_TOO_SLOW)
            return
        try:
            await self.send(text_data=text)
        except Exception:
            # The client is gone but daphne has not told us yet: end like a disconnect.
            raise StopConsumer() from None
