"""Database reads the connections of one process share: snapshots and pages of stored events.

The connections that follow an auction see the same gap at the same moment, and a
reconnect storm resumes from the same seq and subscribes all at once: each would read the
same rows. `SharedReads` makes them share one read per auction at a time instead.
"""

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from auctions.events import event_as_message
from auctions.selectors import auction_get, auction_snapshot, event_list
from notifications.services import last_seq, notification_as_message, notification_range
from realtime.db import in_db_thread

# Replays and gap fills read stored events in pages of this size.
REPLAY_PAGE = 500

# A page of stored events as (seq, message text), in seq order.
Page = list[tuple[int, str]]


def _dump(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


@in_db_thread
def read_snapshot(auction_id: UUID) -> dict[str, Any]:
    return auction_snapshot(auction_get(auction_id=auction_id, for_snapshot=True))


@in_db_thread
def read_page(auction_id: UUID, after: int, upto: int, page_size: int) -> Page:
    """Stored events with after < seq <= upto, at most `page_size` of them."""
    limit = min(page_size, upto - after)
    events = event_list(auction_id=auction_id, since_seq=after, limit=limit)
    return [(event.seq, _dump(event_as_message(event))) for event in events]


@in_db_thread
def read_notification_page(user_id: UUID, after: int, upto: int, page_size: int) -> Page:
    """A user's notifications with after < seq <= upto, at most `page_size` of them.

    One user's connections are few, so these reads are not shared.
    """
    notifications = notification_range(
        user_id=user_id, after=after, upto=min(upto, after + page_size)
    )
    return [(n.seq, _dump(notification_as_message(n))) for n in notifications]


@in_db_thread
def read_last_notification_seq(user_id: UUID) -> int:
    return last_seq(user_id=user_id)


class SharedReads:
    """One process's shared reads; `read_snapshot` and `read_page` do the actual reading."""

    def __init__(
        self,
        read_snapshot: Callable[[UUID], Awaitable[dict[str, Any]]] = read_snapshot,
        read_page: Callable[[UUID, int, int, int], Awaitable[Page]] = read_page,
        page_size: int = REPLAY_PAGE,
    ) -> None:
        self.read_snapshot = read_snapshot
        self.read_page = read_page
        self.page_size = page_size
        # Pages being read, by (auction, after, upto). Events up to `upto` are committed
        # before anyone asks for them, so a read begun earlier serves later askers too.
        self._pages: dict[tuple[UUID, int, int], asyncio.Future[Page]] = {}
        # Snapshot reads per auction: the one running, and the one that starts after it.
        self._snapshots_running: dict[UUID, asyncio.Future[dict[str, Any]]] = {}
        self._snapshots_next: dict[UUID, asyncio.Future[dict[str, Any]]] = {}

    async def page(self, auction_id: UUID, after: int, upto: int) -> Page:
        """Stored events after `after`, up to `upto`: a full page, or all there are."""
        key = (auction_id, after, upto)
        read = self._pages.get(key)
        if read is None:
            read = self._pages[key] = asyncio.ensure_future(
                self.read_page(auction_id, after, upto, self.page_size)
            )
            read.add_done_callback(lambda _: self._pages.pop(key, None))
        # Shielded: one asker going away must not cancel the read for the others.
        return await asyncio.shield(read)

    async def snapshot(self, auction_id: UUID) -> dict[str, Any]:
        """The auction's snapshot, read after this call began. Callers must not change it.

        A subscriber's snapshot must be read after it joined the group, or an event
        published in between would reach neither; so it never joins a read already
        running, only the next one, which everyone who subscribes meanwhile shares.
        """
        read = self._snapshots_next.get(auction_id)
        if read is None:
            read = self._snapshots_next[auction_id] = asyncio.ensure_future(
                self._snapshot_after_running(auction_id)
            )
        return await asyncio.shield(read)

    async def _snapshot_after_running(self, auction_id: UUID) -> dict[str, Any]:
        running = self._snapshots_running.get(auction_id)
        if running is not None:
            await asyncio.wait([running])
        # From here on, new subscribers wait for the read after this one.
        this = self._snapshots_running[auction_id] = self._snapshots_next.pop(auction_id)
        try:
            return await self.read_snapshot(auction_id)
        finally:
            if self._snapshots_running.get(auction_id) is this:
                del self._snapshots_running[auction_id]
