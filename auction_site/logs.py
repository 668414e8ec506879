"""Logging for every process (spec §11): quiet housekeeping, and Celery under LOGGING.

Beat runs the periodic housekeeping tasks every second or few (`PERIODIC_TASKS`), and Celery
logs each run at INFO: beat's "Scheduler: Sending due task", the worker's "Task … received"
and "Task … succeeded". `QuietHousekeeping`, on those three loggers, turns these lines into
DEBUG ones (shown with LOG_LEVEL=DEBUG), except a success whose result is not zero: a run
that did something (ended auctions, republished events, sent mail) keeps its INFO line.
Everything else, a housekeeping task's failure or retry included, is left as it is.
"""

import logging
import logging.config
import re
from functools import cache

from celery.app import trace
from django.conf import settings

# The loggers of the three lines, and the messages they log them with.
CELERY_LOGGERS = ("celery.beat", "celery.worker.strategy", "celery.app.trace")
BEAT_SENDING = "Scheduler: Sending due task %s (%s)"
_NONZERO = re.compile(r"[1-9]|True")


@cache
def housekeeping_tasks() -> frozenset[str]:
    from auction_site.periodic_tasks import PERIODIC_TASKS

    return frozenset(periodic.task for periodic in PERIODIC_TASKS)


def _housekeeping_line(record: logging.LogRecord) -> bool:
    """True for the routine line of a run of a housekeeping task that found nothing to do."""
    args = record.args
    if record.msg == BEAT_SENDING and isinstance(args, tuple) and len(args) == 2:
        return args[1] in housekeeping_tasks()
    if record.msg not in (trace.LOG_RECEIVED, trace.LOG_SUCCESS) or not isinstance(args, dict):
        return False
    if args.get("name") not in housekeeping_tasks():
        return False
    # The tasks return what they did: a count, or counts by kind (reconcile_schedule).
    return record.msg != trace.LOG_SUCCESS or not _NONZERO.search(str(args.get("return_value")))


class QuietHousekeeping(logging.Filter):
    """Housekeeping that did nothing logs at DEBUG (spec §11), not at INFO."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not _housekeeping_line(record):
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def configure_celery_logging(loglevel: int | str | None) -> None:
    """Worker and beat log as the web process does: LOGGING (LOG_LEVEL, LOG_FORMAT, the
    filters above) rather than Celery's own handlers; a `--loglevel` more verbose than
    LOG_LEVEL is honoured."""
    logging.config.dictConfig(settings.LOGGING)
    root = logging.getLogger()
    level = logging.getLevelName(loglevel.upper()) if isinstance(loglevel, str) else loglevel
    if isinstance(level, int) and 0 < level < root.getEffectiveLevel():
        root.setLevel(level)
