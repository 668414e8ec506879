"""The latest seq of every auction a process follows, read every LATEST_SEQ_CHECK_SECONDS
and handed to its local subscribers (issue 14, spec §2: resume without loss).

A live event can miss a process for good: its Redis subscription was down during the
publish (a Redis restart) and during the sweep's one republish. Subscribers notice a gap
only when a later event arrives, and an auction's last event has none. So each process
reads, in one query, the latest seq of the auctions it has subscribers for, and sends
each subscriber an `auction.latest` message through the local fan-out (never Redis); a
connection behind it reads what it missed from the database, as a gap fill.
"""

import asyncio
import logging
from typing import Any
from uuid import UUID

from django.conf import settings

from auctions.models import Auction
from realtime.db import in_db_thread
from realtime.internals import group_channel_name, local_group_members, loop_layer
from realtime.publish import auction_group

logger = logging.getLogger(__name__)

LATEST_MESSAGE_TYPE = "auction.latest"
# What every auction group's channel name contains, before the auction's id.
_GROUP_MARK = group_channel_name("", auction_group(""))


def _latest_seqs(auction_ids: list[UUID]) -> dict[str, int]:
    rows = Auction.objects.filter(id__in=auction_ids).values_list("id", "last_seq")
    return {str(auction_id): last_seq for auction_id, last_seq in rows}


class LatestSeqCheck:
    """One per event loop (process): a task that runs while anything is followed."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.task: asyncio.Task[None] | None = None

    @classmethod
    def ensure_running(cls, layer: Any) -> None:
        if not hasattr(layer, "take_live"):
            return  # not our layer (the list-based one, for comparison only)
        loop = asyncio.get_running_loop()
        check: LatestSeqCheck | None = getattr(loop, "latest_seq_check", None)
        if check is None:
            check = LatestSeqCheck(layer)
            loop.latest_seq_check = check  # type: ignore[attr-defined]
        if check.task is None or check.task.done():
            check.task = loop.create_task(check.run())

    async def run(self) -> None:
        while True:
            await asyncio.sleep(settings.LATEST_SEQ_CHECK_SECONDS)
            try:
                await self.check_once()
            except Exception:
                logger.warning("checking the latest seqs failed", exc_info=True)

    async def check_once(self) -> int:
        """Hand each local subscriber its auction's latest seq; returns how many got one."""
        members = local_group_members(loop_layer(self.layer))
        followed = {
            channel.split(_GROUP_MARK, 1)[1]: channels
            for channel, channels in members.items()
            if _GROUP_MARK in channel and channels
        }
        if not followed:
            return 0
        latest = await in_db_thread(_latest_seqs)([UUID(key) for key in followed])
        handed = 0
        for auction_id, seq in latest.items():
            message = {"type": LATEST_MESSAGE_TYPE, "auction_id": auction_id, "seq": seq}
            handed += self.layer.local_send(followed[auction_id], message)
        return handed
