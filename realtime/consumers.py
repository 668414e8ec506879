"""The WebSocket API (spec §2, §8): the connection's protocol, and sending each stream in order.

Messages in are parsed (realtime.protocol) and answered by calling the services. Two kinds
of stream go out, both numbered by `seq`: each subscribed auction's events, and the signed-in
user's notifications (followed from the moment the connection opens). Each goes through an
`EventOrder` (realtime.ordering), which turns at-least-once publishing into every message
exactly once, in seq order. Stored rows are read for replays and gap fills only (auction
events through the process's shared reads, realtime.shared_reads), never on the live path.
"""

import asyncio
import contextlib
import json
import logging
import time
from typing import Any
from uuid import UUID

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError

from accounts.models import User
from auctions.errors import Code, DomainError
from bidding.services import bid_place_async
from infra.metrics import CONNECTIONS, SUBSCRIPTIONS
from infra.replica import replica_configured, wrote
from realtime.flow import SendWindow
from realtime.internals import DirectTextSender, get_handler_name
from realtime.latest import LATEST_MESSAGE_TYPE, LatestSeqCheck
from realtime.ordering import EventOrder
from realtime.protocol import (
    AuctionMessage,
    ClientMessage,
    Notifications,
    PlaceBid,
    ProtocolError,
    Subscribe,
    parse_client_message,
)
from realtime.publish import (
    EVENT_MESSAGE_TYPE,
    NOTIFICATION_MESSAGE_TYPE,
    TOKEN_REVOKED_MESSAGE_TYPE,
    auction_group,
    user_group,
)
from realtime.shared_reads import (
    Page,
    SharedReads,
    read_last_notification_seq,
    read_notification_page,
)
from realtime.viewers import Presence

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
# before they are read from the database: two commits' publishes often cross.
GAP_GRACE_SECONDS = 0.05
UNAVAILABLE_MESSAGE = (
    "The service cannot reach its database right now; nothing was decided that you can rely "
    "on. Send the same message again in a moment (a bid with the same request_id: it is "
    "decided once)."
)
INTERNAL_ERROR_MESSAGE = (
    "Something went wrong on our side; nothing was decided that you can rely on. Send the "
    "same message again (a bid with the same request_id: it is decided once)."
)
# The stream key of the user's notifications; every other key is an auction's id.
NOTIFICATIONS = "notifications"


LIVE_MESSAGE_TYPES = frozenset(
    {EVENT_MESSAGE_TYPE, NOTIFICATION_MESSAGE_TYPE, TOKEN_REVOKED_MESSAGE_TYPE, LATEST_MESSAGE_TYPE}
)


def _dump(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


def _now() -> float:
    return round(time.time(), 3)


class AuctionConsumer(AsyncWebsocketConsumer):
    # Every connection of the process shares these reads.
    reads = SharedReads()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # Per stream followed (each subscribed auction by its id, and NOTIFICATIONS): its
        # delivery order, and the task that fills a gap from the database if the gap does
        # not close by itself.
        self.orders: dict[str, EventOrder] = {}
        self.gap_fills: dict[str, asyncio.Task[None]] = {}
        # Live events that arrived while a client message was being handled wait here.
        self.handling_client = False
        self.deferred_events: list[dict[str, Any]] = []
        # Under daphne, messages are written as frames straight to the connection.
        self.direct: DirectTextSender | None = None
        # Auctions this connection is counted as a viewer of (spec §8, realtime.viewers).
        self.viewing: set[str] = set()
        self.counted = False  # in the open-connections gauge
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self.counted:
                CONNECTIONS.dec()
            # However the consumer ends (a disconnect, a failed send, cancellation), it
            # leaves its groups and its own channel: nothing stays subscribed in Redis.
            await self.leave_all()
            try:
                if hasattr(self.channel_layer, "delete_channel"):
                    await self.channel_layer.delete_channel(self.channel_name)
            except Exception:
                logger.warning("cleaning up a finished connection failed", exc_info=True)

    async def connect(self) -> None:
        user = self.scope.get("user")
        # The signed-in user, or None: a connection without one is closed at once.
        self.user: User | None = user if isinstance(user, User) and user.is_authenticated else None
        self.window = SendWindow(limit=MAX_SENT_WHILE_BLOCKED)
        if self.scope.get("database_unavailable"):
            # Who this is could not be read: come back later (spec §10), not 4401.
            await self.accept()
            await self.close(code=CLOSE_UNAVAILABLE)
            return
        if self.user is None:
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if hasattr(self.channel_layer, "take_live"):
            self.channel_layer.take_live(self.channel_name, self.take_live_event)
        # Before the handshake completes: a notification committed once the client sees
        # the connection open reaches it (live messages wait until connect returns).
        following = await self.follow_notifications()
        await self.accept()
        if not following:
            await self.close(code=CLOSE_UNAVAILABLE)
            return
        LatestSeqCheck.ensure_running(self.channel_layer)
        self.window.attach(self.base_send)
        self.direct = DirectTextSender.behind(self.base_send)
        CONNECTIONS.inc()
        self.counted = True

    async def follow_notifications(self) -> bool:
        """Follow the user's notifications (spec §8): join their group, then read the
        latest seq, so one committed meanwhile arrives live or by a gap fill. False if the
        channel layer is away (the connection is then closed with 4503)."""
        assert self.user is not None
        try:
            await self.channel_layer.group_add(user_group(self.user.id), self.channel_name)
        except Exception:
            logger.warning("following notifications failed; closing the connection", exc_info=True)
            return False
        try:
            latest = await read_last_notification_seq(self.user.id)
        except DatabaseError:
            logger.warning("reading the latest notification failed; closing", exc_info=True)
            with contextlib.suppress(Exception):
                await self.channel_layer.group_discard(user_group(self.user.id), self.channel_name)
            return False
        self.orders[NOTIFICATIONS] = EventOrder(last_sent=latest)
        return True

    async def disconnect(self, code: int) -> None:
        self.window.detach()
        await self.leave_all()

    async def leave_all(self) -> None:
        """Leave every group this connection joined. Never raises."""
        self.unview_all()
        keys = list(self.orders)
        self.orders.clear()
        SUBSCRIPTIONS.dec(len(keys) - (NOTIFICATIONS in keys))
        for key in keys:
            self.forget_gap(key)
            try:
                await self.channel_layer.group_discard(self.group_of(key), self.channel_name)
            except Exception:
                logger.warning("leaving the group %s failed", self.group_of(key), exc_info=True)

    def group_of(self, key: str) -> str:
        """The channel-layer group a stream's live messages come from."""
        if key == NOTIFICATIONS:
            assert self.user is not None
            return user_group(self.user.id)
        return auction_group(key)

    def subscription_count(self) -> int:
        return len(self.orders) - (NOTIFICATIONS in self.orders)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' own dispatch closes stale database connections before every handler,
        # a hop to its one sync thread per message. Nothing here touches the database on
        # the event loop: live events never do, and every query runs in `in_db_thread`,
        # which closes stale connections in its own thread. So no handler needs the hop.
        if message["type"] in LIVE_MESSAGE_TYPES:
            await self.live_message(message)
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
                await self.live_message(self.deferred_events.pop(0))
            self.handling_client = False

    async def take_live_event(self, message: dict[str, Any]) -> None:
        """The layer's direct fan-out hands this connection a live message (layers.py)."""
        if self.handling_client:
            self.deferred_events.append(message)
            return
        # A failed send means the client is gone; daphne tells the consumer so, and it ends.
        with contextlib.suppress(StopConsumer):
            await self.live_message(message)

    # Client → server

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.user is None:
            return
        size = len(bytes_data) if bytes_data is not None else len((text_data or "").encode())
        if size > settings.WS_MAX_MESSAGE_BYTES:
            await self.close(code=CLOSE_MESSAGE_TOO_BIG)
            return
        request_id = None
        try:
            if bytes_data is not None:
                raise ProtocolError(Code.INVALID_MESSAGE, "Binary frames are not accepted.")
            message = parse_client_message(text_data or "")
            request_id = message.request_id
            await getattr(self, f"on_{message.type}")(message)
        except ProtocolError as error:
            await self.reply("error", error.request_id, code=error.code, message=error.message)
        except DomainError as error:
            await self.reply("error", None, code=error.code, message=error.message)
        except (OperationalError, InterfaceError):
            # A reply, never silence: the client learns to send it again (spec §10).
            logger.warning("the database is unavailable; answered so", exc_info=True)
            await self.reply(
                "error", request_id, code=Code.UNAVAILABLE, message=UNAVAILABLE_MESSAGE
            )
        except StopConsumer:
            raise  # the connection is closing
        except Exception:
            logger.exception("handling a client message failed")
            await self.reply(
                "error", request_id, code=Code.INTERNAL_ERROR, message=INTERNAL_ERROR_MESSAGE
            )

    async def on_ping(self, message: ClientMessage) -> None:
        await self.reply("pong", message.request_id)

    async def on_subscribe(self, message: Subscribe) -> None:
        auction_id = str(message.auction_id)
        if (
            auction_id not in self.orders
            and self.subscription_count() >= settings.WS_MAX_SUBSCRIPTIONS
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
            snapshot = await self.reads.snapshot(message.auction_id)
        except (DomainError, DatabaseError) as error:
            if auction_id not in self.orders:
                await self.channel_layer.group_discard(auction_group(auction_id), self.channel_name)
            if isinstance(error, DomainError):
                raise ProtocolError(error.code, error.message, message.request_id) from error
            raise
        # The snapshot is shared with other subscribers: the count goes into a copy.
        snapshot = {**snapshot, "viewers": await self.view(auction_id)}
        await self.reply("subscribed", message.request_id, auction_id=auction_id, data=snapshot)
        # A since_seq ahead of the auction (a client's mistake) replays nothing and must
        # not hide the events still to come.
        start = (
            snapshot["seq"]
            if message.since_seq is None
            else min(message.since_seq, snapshot["seq"])
        )
        self.forget_gap(auction_id)
        if auction_id not in self.orders:
            SUBSCRIPTIONS.inc()
        order = self.orders[auction_id] = EventOrder(last_sent=start)
        # Events after the snapshot arrive live: the group was joined before it was read.
        await self.send_stored(auction_id, order, upto=snapshot["seq"])

    async def on_unsubscribe(self, message: AuctionMessage) -> None:
        auction_id = str(message.auction_id)
        self.forget_gap(auction_id)
        self.unview(auction_id)
        if self.orders.pop(auction_id, None) is not None:
            SUBSCRIPTIONS.dec()
            try:
                await self.channel_layer.group_discard(auction_group(auction_id), self.channel_name)
            except Exception:  # Redis is away; the event stream is ignored from now on anyway
                logger.warning("leaving the group of auction %s failed", auction_id, exc_info=True)
        await self.reply("unsubscribed", message.request_id, auction_id=auction_id)

    async def on_notifications(self, message: Notifications) -> None:
        """Replay the stored notifications after since_seq, then go on live (spec §8).

        There is no reply: the replayed `notification` messages are the answer. A since_seq
        ahead of the latest replays nothing and hides nothing still to come.
        """
        if NOTIFICATIONS not in self.orders:
            return  # the connection is closing: following notifications failed
        assert self.user is not None
        latest = await read_last_notification_seq(self.user.id)
        self.forget_gap(NOTIFICATIONS)
        order = self.orders[NOTIFICATIONS] = EventOrder(last_sent=min(message.since_seq, latest))
        await self.send_stored(NOTIFICATIONS, order, upto=latest)

    async def on_place_bid(self, message: PlaceBid) -> None:
        await self.offer(message, amount=message.amount, max_amount=message.max_amount)

    async def on_buy_now(self, message: AuctionMessage) -> None:
        await self.offer(message, buy=True)

    async def offer(
        self,
        message: AuctionMessage,
        *,
        amount: object = None,
        max_amount: object = None,
        buy: bool = False,
    ) -> None:
        """A bid or buy it now: decided by the bid engine (with others for the auction)."""
        auction_id = str(message.auction_id)
        assert self.user is not None  # receive() handles only signed-in connections
        try:
            accepted = await bid_place_async(
                auction_id=message.auction_id,
                bidder=self.user,
                amount=amount,
                max_amount=max_amount,
                buy=buy,
                request_id=message.request_id,
            )
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
            await self.reply(
                "bid_accepted", message.request_id, auction_id=auction_id, data=accepted.as_data()
            )
            if replica_configured():  # the bidder's lists now read the primary (spec §10)
                asyncio.get_running_loop().run_in_executor(None, wrote, self.user.id)

    # Server → subscribers

    async def live_message(self, message: dict[str, Any]) -> None:
        """An auction event or a notification, published to a group this connection is in."""
        if message["type"] == TOKEN_REVOKED_MESSAGE_TYPE:
            await self.token_revoked(message)
            return
        if message["type"] == LATEST_MESSAGE_TYPE:
            self.catch_up(message["auction_id"], message["seq"])
            return
        key = (
            NOTIFICATIONS if message["type"] == NOTIFICATION_MESSAGE_TYPE else message["auction_id"]
        )
        order = self.orders.get(key)
        if order is None:
            return  # not subscribed (any more)
        order.offer(message["seq"], message["text"])
        await self.deliver(key, order)
        if order.missing() is not None and key not in self.gap_fills:
            self.gap_fills[key] = asyncio.create_task(self.fill_gap_later(key, order))

    def catch_up(self, auction_id: str, latest: int) -> None:
        """The auction is at seq `latest` (realtime.latest): read what this connection
        missed, unless it is up to date or already filling a gap."""
        order = self.orders.get(auction_id)
        if order is None or order.last_sent >= latest or auction_id in self.gap_fills:
            return
        self.gap_fills[auction_id] = asyncio.create_task(
            self.fill_missed(auction_id, order, latest)
        )

    async def fill_missed(self, key: str, order: EventOrder, upto: int) -> None:
        try:
            await self.send_stored(key, order, upto=upto)
        except Exception:
            logger.warning("catching up on stream %s failed", key, exc_info=True)
        finally:
            if self.gap_fills.get(key) is asyncio.current_task():
                del self.gap_fills[key]

    async def token_revoked(self, message: dict[str, Any]) -> None:
        """The token this connection was opened with is revoked: it may not go on."""
        if self.scope.get("api_token_id") != message["token_id"]:
            return  # another token of the user's, or a session connection
        logger.info("closing a connection whose API token was revoked")
        await self.leave_all()
        await self.close(code=CLOSE_UNAUTHENTICATED)

    async def deliver(self, key: str, order: EventOrder) -> None:
        """Send every message that is next in order, while this is still the subscription."""
        while self.orders.get(key) is order and (text := order.take_next()) is not None:
            await self.send_counted(text)
        task = self.gap_fills.get(key)
        if order.missing() is None and task is not None and task is not asyncio.current_task():
            del self.gap_fills[key]
            task.cancel()

    async def fill_gap_later(self, key: str, order: EventOrder) -> None:
        """Read the events of a gap that stayed open for GAP_GRACE_SECONDS."""
        try:
            await asyncio.sleep(GAP_GRACE_SECONDS)
            while self.orders.get(key) is order and (gap := order.missing()) is not None:
                after, upto = gap
                await self.send_stored(key, order, upto=upto)
                if order.last_sent == after:
                    await asyncio.sleep(GAP_GRACE_SECONDS)  # not stored yet: look again
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("filling a gap of stream %s failed", key, exc_info=True)
        finally:
            if self.gap_fills.get(key) is asyncio.current_task():
                del self.gap_fills[key]

    def forget_gap(self, key: str) -> None:
        task = self.gap_fills.pop(key, None)
        if task is not None:
            task.cancel()

    async def send_stored(self, key: str, order: EventOrder, upto: int) -> None:
        """Send stored rows after the last one sent, up to seq `upto`.

        Used by replays and by gap fills; a message something else sent while a page was
        being read is dropped by the order, never sent twice.
        """
        while self.orders.get(key) is order and order.last_sent < upto:
            page = await self.read_stored(key, order.last_sent, upto)
            for seq, text in page:
                order.offer(seq, text)
            await self.deliver(key, order)
            if len(page) < self.reads.page_size:
                return

    async def read_stored(self, key: str, after: int, upto: int) -> Page:
        if key == NOTIFICATIONS:
            assert self.user is not None
            return await read_notification_page(self.user.id, after, upto, self.reads.page_size)
        return await self.reads.page(UUID(key), after, upto)

    # Viewers (spec §8): this connection counted in the live counts of what it follows

    async def view(self, auction_id: str) -> int:
        """Count this connection as a viewer of the auction; the count for its snapshot."""
        self.viewing.add(auction_id)
        return await Presence.current().join(auction_id, self)

    def unview(self, auction_id: str) -> None:
        if auction_id in self.viewing:
            self.viewing.discard(auction_id)
            Presence.current().leave(auction_id, self)

    def unview_all(self) -> None:
        for auction_id in list(self.viewing):
            self.unview(auction_id)

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
            if self.direct is None or not self.direct.write(text):
                await self.send(text_data=text)
        except Exception:
            # The client is gone but daphne has not told us yet: end like a disconnect.
            raise StopConsumer() from None
