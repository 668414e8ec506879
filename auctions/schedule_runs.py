"""Schedule runs: start and end auctions when due, exactly once, across instances.

Every second beat runs `auctions.tasks.dispatch_due`, which claims what falls due within
the next second (auctions.schedule_index) and hands each auction to a worker task with
that time as its ETA. The task starts or ends the auction through the services and acknowledges the
claim. Ending takes a per-auction Redis lock, and `auction_close` re-checks the status and
end time under the database row lock, so an auction ends once whatever runs twice.
`schedule_reconcile` (beat, every 30 s) is the safety net for lost Redis data and downtime.
"""

import logging
import time
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from auctions.models import Auction, AuctionStatus
from auctions.notices import ending_soon_notice
from auctions.schedule_index import Kind, claim_ack, schedule_index_missing, schedule_key
from auctions.selectors import db_now
from auctions.services import auction_close, auction_start
from infra.locks import redis_lock
from infra.metrics import SCHEDULE_LATENESS_SECONDS
from infra.redis import redis_client
from notifications.models import Kind as NotificationKind
from notifications.models import Notification, Watch
from notifications.services import notices_record

logger = logging.getLogger(__name__)

# Long enough for one close (milliseconds); short, since a worker killed holding it delays
# the auction's end this long. Correctness does not rest on it: auction_close re-checks
# under the row lock.
END_LOCK_SECONDS = 5
# An auction still open this long after its time lost its timed task (a worker killed
# holding it, a broker that lost its queue): the per-second dispatch runs it from the
# database, so no fault leaves one later than this (plus a second) for long.
OVERDUE_SECONDS = 2.0
# A worker whose clock runs a little ahead of the database's waits this long at most.
MAX_EARLY_WAIT_SECONDS = 1.0


def scheduled_start_run(auction_id: str) -> bool:
    """Start a pending auction whose start time has come. True if this call started it.

    `auction_id` is the schedule's member, as Redis holds it.
    """
    auction = Auction.objects.filter(id=auction_id).values("status", "start_time").first()
    started = False
    if auction and auction["status"] == AuctionStatus.PENDING:
        _wait_until(auction["start_time"])
        started = auction_start(auction_id=UUID(auction_id))
        if started:
            _observe_lateness("start", auction["start_time"])
        if not started:
            _reindex("start", auction_id, auction["start_time"])
    claim_ack("start", auction_id)
    return started


def scheduled_end_run(auction_id: str) -> bool:
    """End an active auction whose end time has come. True if this call ended it.

    Under the per-auction lock only one worker tries at a time; `auction_close` re-checks
    the status and the end time under the row lock, so a second run does nothing. An
    auction soft close extended meanwhile goes back into the schedule at its new end.
    """
    due = Auction.objects.filter(id=auction_id).values_list("end_time", flat=True).first()
    if due is not None:
        _wait_until(due)  # before the lock: a worker killed while waiting holds none
    with redis_lock(f"auction:end:{auction_id}", ttl_seconds=END_LOCK_SECONDS) as held:
        if not held:
            return False  # another worker is ending it right now, and acknowledges it
        auction = Auction.objects.filter(id=auction_id).values("status", "end_time").first()
        ended = False
        if auction and auction["status"] == AuctionStatus.ACTIVE:
            _wait_until(auction["end_time"])  # soft close may have moved it meanwhile
            ended = auction_close(auction_id=UUID(auction_id))
            if ended:
                _observe_lateness("end", auction["end_time"])
            if not ended:
                end_time = Auction.objects.values_list("end_time", flat=True).get(id=auction_id)
                _reindex("end", auction_id, end_time)
        claim_ack("end", auction_id)
        return ended


def _observe_lateness(transition: str, due: datetime) -> None:
    late = (timezone.now() - due).total_seconds()
    SCHEDULE_LATENESS_SECONDS.labels(transition).observe(max(late, 0.0))


def _wait_until(moment: datetime) -> None:
    """Tasks run at their ETA by the worker's clock; wait out a small lead on the database's."""
    remaining = (moment - db_now()).total_seconds()
    if 0 < remaining <= MAX_EARLY_WAIT_SECONDS:
        time.sleep(remaining)


def _reindex(kind: Kind, auction_id: str, moment: datetime) -> None:
    redis_client().zadd(schedule_key(kind), {auction_id: moment.timestamp()})


def schedule_reconcile(*, batch: int = 1000) -> dict[str, int]:
    """Safety net: re-index every open auction from the database and run the overdue ones.

    Returns counts of what it did: re-indexed starts and ends, started, ended.
    """
    now = db_now()
    counts = {"indexed_start": 0, "indexed_end": 0, "started": 0, "ended": 0}
    pending = Auction.objects.filter(status=AuctionStatus.PENDING).values_list("id", "start_time")
    active = Auction.objects.filter(status=AuctionStatus.ACTIVE).values_list("id", "end_time")
    counts["indexed_start"] = schedule_index_missing(
        "start", pending.iterator(chunk_size=batch), batch
    )
    counts["indexed_end"] = schedule_index_missing("end", active.iterator(chunk_size=batch), batch)
    for auction_id in pending.filter(start_time__lte=now).values_list("id", flat=True)[:batch]:
        counts["started"] += scheduled_start_run(str(auction_id))
    for auction_id in active.filter(end_time__lte=now).values_list("id", flat=True)[:batch]:
        counts["ended"] += scheduled_end_run(str(auction_id))
    return counts


def overdue_run(*, limit: int = 100) -> dict[str, int]:
    """Start and end what is overdue by OVERDUE_SECONDS, from PostgreSQL (two indexed
    reads that find nothing while the schedule works). Returns what it started and ended."""
    cutoff = db_now() - timedelta(seconds=OVERDUE_SECONDS)
    starts = Auction.objects.filter(status=AuctionStatus.PENDING, start_time__lte=cutoff)
    ends = Auction.objects.filter(status=AuctionStatus.ACTIVE, end_time__lte=cutoff)
    return {
        "started": sum(
            scheduled_start_run(str(auction_id))
            for auction_id in starts.values_list("id", flat=True)[:limit]
        ),
        "ended": sum(
            scheduled_end_run(str(auction_id))
            for auction_id in ends.values_list("id", flat=True)[:limit]
        ),
    }


# Postgres advisory lock key of the ending-soon run: one at a time, across instances.
_ENDING_SOON_LOCK = 0x656E6473  # "ends"


@transaction.atomic
def ending_soon_notify(*, limit: int = 2000) -> int:
    """Notify each watcher of an active auction ending within NOTIFY_ENDING_SOON_SECONDS,
    once per auction and user (soft close moving the end changes nothing). Returns how
    many were notified; the rest, over `limit`, wait for the next run."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ENDING_SOON_LOCK])
    now = db_now()
    already = Notification.objects.filter(
        user_id=OuterRef("user_id"),
        auction_id=OuterRef("auction_id"),
        kind=NotificationKind.ENDING_SOON,
    )
    due = (
        Watch.objects.filter(
            auction__status=AuctionStatus.ACTIVE,
            auction__end_time__gt=now,
            auction__end_time__lte=now + timedelta(seconds=settings.NOTIFY_ENDING_SOON_SECONDS),
        )
        .exclude(Exists(already))
        .order_by("auction__end_time", "auction_id", "user_id")
        .values_list(
            "user_id",
            "auction_id",
            "auction__item__name",
            "auction__current_price",
            "auction__end_time",
        )[:limit]
    )
    notices = [
        ending_soon_notice(
            user_id=user_id, auction_id=auction_id, item_name=name, price=price, end_time=end
        )
        for user_id, auction_id, name, price, end in due
    ]
    for auction_id in dict.fromkeys(notice.auction_id for notice in notices):
        notices_record(
            [notice for notice in notices if notice.auction_id == auction_id],
            at=now,
            auction_id=auction_id,
        )
    return len(notices)
