"""Celery tasks of the auction lifecycle: thin wrappers around auctions.schedule_runs."""

import logging
from datetime import UTC, datetime

from celery import shared_task

from auctions.schedule_index import (
    KINDS,
    Kind,
    claim_release,
    due_claim,
    schedule_index_lost,
    schedule_index_unbuilt,
)
from auctions.schedule_runs import (
    ending_soon_notify,
    overdue_run,
    schedule_reconcile,
    scheduled_end_run,
    scheduled_start_run,
)

logger = logging.getLogger(__name__)

RUNS = {"start": scheduled_start_run, "end": scheduled_end_run}


@shared_task(ignore_result=True)
def dispatch_due() -> int:
    """Beat, every second: hand each auction due within a second to a worker, at its time."""
    if schedule_index_lost():
        # Redis came back empty: rebuild now, not at the next reconcile (up to 30 s late).
        try:
            counts = schedule_reconcile()
        except Exception:
            schedule_index_unbuilt()
            raise
        logger.warning("the schedule was not in Redis; rebuilt it from the database: %s", counts)
    overdue = overdue_run()
    if any(overdue.values()):
        logger.warning("ran auctions whose timed task was lost: %s", overdue)
    dispatched = 0
    for kind in KINDS:
        for auction_id, due in due_claim(kind):
            try:
                run_scheduled.apply_async(
                    args=(kind, auction_id, due), eta=datetime.fromtimestamp(due, UTC)
                )
            except Exception:
                claim_release(kind, auction_id, due)
                raise
            dispatched += 1
    return dispatched


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def run_scheduled(kind: Kind, auction_id: str, due: float) -> bool:
    """Start or end one auction; on failure its claim goes back into the schedule."""
    try:
        return RUNS[kind](auction_id)
    except Exception:
        claim_release(kind, auction_id, due)
        raise


@shared_task(ignore_result=True)
def reconcile_schedule() -> dict[str, int]:
    """Beat, every 30 s: the safety net (see auctions.schedule_runs.schedule_reconcile)."""
    counts = schedule_reconcile()
    if any(counts.values()):
        logger.info("schedule reconciled: %s", counts)
    return counts


@shared_task(ignore_result=True)
def notify_ending_soon() -> int:
    """Beat, every NOTIFY_ENDING_SOON_CHECK_SECONDS: watchers of auctions about to end."""
    return ending_soon_notify()
