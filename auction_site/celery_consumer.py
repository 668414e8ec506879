"""The worker's broker consumer, reconnecting quickly after the broker comes back.

kombu waits 2 s, then 4 s, 6 s … between attempts to reach a broker that went away, and
Celery passes no setting for it: after a Redis restart of 2 s the worker was back 4 s
later, and every auction due meanwhile ended that late (issue 14). Attempts every 0.25 s,
at most 1 s apart, cost a refused connection each while the broker is down.
"""

import functools
from typing import Any

from celery.worker.consumer import Consumer

RETRY = {"interval_start": 0.25, "interval_step": 0.25, "interval_max": 1.0}


class QuickReconnectConsumer(Consumer):
    def ensure_connected(self, conn: Any) -> Any:
        conn.ensure_connection = functools.partial(conn.ensure_connection, **RETRY)
        return super().ensure_connected(conn)
