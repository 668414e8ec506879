"""The WebSocket side's database calls: a pool of threads, each with its own connection.

Channels' default runs every database call of a process in one thread, so one slow bid
held up every connection's handshake, subscribe and bid.
"""

from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from channels.db import database_sync_to_async
from django.conf import settings

P = ParamSpec("P")
T = TypeVar("T")

_DB_THREADS = ThreadPoolExecutor(max_workers=settings.WS_DB_THREADS, thread_name_prefix="ws-db")


def in_db_thread(func: Callable[P, T]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Run `func` in the pool; stale connections are closed before and after, there."""
    return database_sync_to_async(func, thread_sensitive=False, executor=_DB_THREADS)
