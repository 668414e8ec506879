"""Live viewer counts (spec §8): how many connections follow an auction, on every instance.

Presence, not an event: no seq, nothing stored or replayed. Each event loop (a web process
has one) is an instance with a `Presence` of its own, which

- counts its connections' subscriptions per auction (`join` on a successful subscribe,
  `leave` on unsubscribe and on every ending of a connection);
- reports a join at once, before the subscriber's snapshot is sent: one Redis call that
  writes this instance's count and returns every other live instance's, shared by all the
  joins that arrive while one is in flight. So a snapshot counts everyone whose
  `subscribed` was sent before, on any instance;
- while it counts anything, runs one ticker: every `VIEWERS_INTERVAL_SECONDS` it reports
  all its counts and learns the others' in one Redis call for all the auctions it follows
  (infra.presence), so its work per tick is one entry per auction followed, never one per
  connection;
- hands each changed total to its own subscribers of that auction through their ordinary
  send path (`send_counted`, so the slow-reader window still applies), yielding to the
  loop every `HAND_OUT_SLICE` connections like the event fan-out (realtime.layers).

Hand-outs happen only in ticks, and ticks are at least an interval apart (the first one an
interval after the ticker starts), so a connection hears about an auction's count at most
once an interval; it is told only a total that differs from the one it knows.

When Redis is away the counts stay as last known (this instance's own still move), a
warning is logged now and then, and subscribing and bidding go on as ever.
"""

import asyncio
import json
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Protocol

from django.conf import settings

from infra.presence import PresenceStore
from realtime.layers import HAND_OUT_SLICE

logger = logging.getLogger(__name__)

VIEWERS_MESSAGE_TYPE = "viewers"
# A subscriber waits at most this long for its join to be reported (and the others'
# counts read); the next tick corrects a count given without them.
JOIN_REPORT_TIMEOUT_SECONDS = 0.5
# The count of a subscriber whose snapshot is not sent yet: no hand-out goes to it.
JOINING = -1
# While Redis stays away, a warning at most this often.
FAILURE_LOG_SECONDS = 60.0


class Viewer(Protocol):
    """A subscribed connection, as presence sees it (realtime.consumers.AuctionConsumer)."""

    async def send_counted(self, text: str) -> None: ...


@dataclass(eq=False)
class Followed:
    """An auction this instance counts."""

    # Each local subscriber, and the count it was last told (in its snapshot or a message;
    # JOINING until its snapshot is sent).
    viewers: dict[Viewer, int] = field(default_factory=dict)
    # Every other live instance's count together, as of report number `others_as_of`.
    others: int = 0
    others_as_of: int = 0
    # The total last handed out; and whether someone joined since (their count may differ).
    announced: int | None = None
    joined: bool = False

    def total(self) -> int:
        return self.others + len(self.viewers)


def _instance_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class Presence:
    """One instance's viewer counts; see the module's docstring."""

    def __init__(
        self,
        store: PresenceStore | None = None,
        *,
        interval: float | None = None,
        ttl: float | None = None,
        instance_id: str | None = None,
    ) -> None:
        self.store = store if store is not None else PresenceStore()
        self.interval = float(settings.VIEWERS_INTERVAL_SECONDS if interval is None else interval)
        # An instance whose heartbeat is this old is dead; it must outlast a tick or two.
        ttl = float(settings.VIEWERS_TTL_SECONDS if ttl is None else ttl)
        self.ttl = max(ttl, 2 * self.interval)
        self.instance_id = instance_id or _instance_id()
        self.auctions: dict[str, Followed] = {}
        self.ticks = 0  # ticks run (each: one report, then the hand-outs)
        self._reports_begun = 0  # numbers reports, so an older answer never wins
        # Joins: the report in flight, the one that starts after it, and its auctions.
        self._join_running: asyncio.Future[None] | None = None
        self._join_next: asyncio.Future[None] | None = None
        self._joined_auctions: set[str] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._failing = False
        self._failure_logged_at: float | None = None
        self._warned = False  # a failure was logged: say so when Redis answers again

    @classmethod
    def current(cls) -> "Presence":
        """The running event loop's instance (made when first asked for)."""
        loop = asyncio.get_running_loop()
        presence = getattr(loop, "auction_presence", None)
        if not isinstance(presence, cls):
            presence = cls()
            setattr(loop, "auction_presence", presence)  # noqa: B010 (a loop has no such field)
        return presence

    # Connections

    async def join(self, auction_id: str, viewer: Viewer) -> int:
        """Count `viewer` as a subscriber of the auction; the count to put in its snapshot."""
        followed = self.auctions.setdefault(auction_id, Followed())
        followed.viewers[viewer] = JOINING
        self._start()
        await self._report_join(auction_id)
        count = followed.total()
        if followed.viewers.get(viewer) == JOINING:  # (it may have left meanwhile)
            followed.viewers[viewer] = count
            followed.joined = True
        return count

    def leave(self, auction_id: str, viewer: Viewer) -> None:
        """Stop counting `viewer` for the auction (a no-op if it was not counted). Never raises."""
        followed = self.auctions.get(auction_id)
        if followed is not None:
            followed.viewers.pop(viewer, None)

    async def _report_join(self, auction_id: str) -> None:
        """Wait for a report of the auction that begins after this call (shared by joins)."""
        if self._failing:
            return  # Redis is away: do not make subscribers wait for it
        self._joined_auctions.add(auction_id)
        if self._join_next is None:
            self._join_next = asyncio.ensure_future(self._join_report_after_running())
        try:
            await asyncio.wait_for(asyncio.shield(self._join_next), JOIN_REPORT_TIMEOUT_SECONDS)
        except TimeoutError:
            # Redis is slow to answer: until a tick gets through, joins do not wait for it.
            self._failed("reporting a subscribe")

    async def _join_report_after_running(self) -> None:
        running = self._join_running
        if running is not None:
            await asyncio.wait([running])
        # From here on, new joins wait for the report after this one.
        this = self._join_running = self._join_next
        self._join_next = None
        auction_ids, self._joined_auctions = self._joined_auctions, set()
        try:
            await self._report(
                {
                    auction_id: len(self.auctions[auction_id].viewers)
                    for auction_id in auction_ids
                    if auction_id in self.auctions
                }
            )
        finally:
            if self._join_running is this:
                self._join_running = None

    async def _report(self, counts: dict[str, int]) -> bool:
        """Report these counts and take in the others' answer; False if Redis failed."""
        self._reports_begun += 1
        number = self._reports_begun
        try:
            others = await self.store.report(self.instance_id, counts, self.ttl)
        except Exception:
            self._failed("reporting viewer counts")
            return False
        self._recovered()
        for auction_id, count in others.items():
            followed = self.auctions.get(auction_id)
            if followed is not None and followed.others_as_of < number:
                followed.others, followed.others_as_of = count, number
        return True

    # The ticker

    def _start(self) -> None:
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        """Stop ticking at once, reporting nothing more (as a killed instance would)."""
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    async def _run(self) -> None:
        try:
            # Joins report themselves; the ticker's first report is an interval later.
            while self.auctions:
                await asyncio.sleep(self.interval)
                await self.tick()
        except Exception:  # tick() handles its own failures; this would be a bug
            logger.exception("the viewer count ticker failed")
        finally:
            if self._ticker is asyncio.current_task():
                self._ticker = None
        # Nothing to count: let go of the Redis connection until there is again.
        if self._ticker is None and self._join_running is None and self._join_next is None:
            await self.store.close()

    async def tick(self) -> None:
        """Report this instance's counts, learn the others', hand out the totals that changed."""
        counts = {auction_id: len(entry.viewers) for auction_id, entry in self.auctions.items()}
        reported = await self._report(counts)
        self.ticks += 1
        for auction_id, count in counts.items():
            followed = self.auctions.get(auction_id)
            if reported and count == 0 and followed is not None and not followed.viewers:
                # Its 0 is in Redis now (our field is gone): nothing more to report.
                del self.auctions[auction_id]
        for auction_id, followed in list(self.auctions.items()):
            total = followed.total()
            if total != followed.announced or followed.joined:
                await self._hand_out(auction_id, followed, total)

    async def _hand_out(self, auction_id: str, followed: Followed, total: int) -> None:
        """Tell each local subscriber whose count differs, a slice at a time."""
        followed.announced, followed.joined = total, False
        text = json.dumps(
            {
                "type": VIEWERS_MESSAGE_TYPE,
                "auction_id": auction_id,
                "count": total,
                "timestamp": round(time.time(), 3),
            },
            separators=(",", ":"),
        )
        sent = 0
        for viewer in list(followed.viewers):
            known = followed.viewers.get(viewer)
            if known is None or known in (total, JOINING):
                continue  # gone meanwhile, knows already, or its snapshot is still to come
            followed.viewers[viewer] = total
            try:
                await viewer.send_counted(text)
            except Exception:  # the connection is ending; it leaves by itself
                logger.debug("sending a viewer count failed", exc_info=True)
            sent += 1
            if sent % HAND_OUT_SLICE == 0:
                await asyncio.sleep(0)  # let bids and replies through between slices

    # Redis away

    def _failed(self, doing: str) -> None:
        self._failing = True
        now = time.monotonic()
        if self._failure_logged_at is None or now - self._failure_logged_at >= FAILURE_LOG_SECONDS:
            self._failure_logged_at, self._warned = now, True
            logger.warning(
                "%s failed; viewer counts stay as last known until Redis answers",
                doing,
                exc_info=True,
            )

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            if self._warned:
                self._warned = False
                logger.info("viewer counts are reported again")
