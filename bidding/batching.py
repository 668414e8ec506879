"""Natural batching: offers for one auction that arrive while its decision runs go next, together.

The first offer for an auction goes at once (no timer). While its transaction is in
flight, later offers for the same auction queue; when it is done, everything queued (up
to `max_batch`, in arrival order) is decided together in the next transaction. Under load
the row lock and the commit's WAL flush are paid once per batch, not once per bid, so
throughput rises with the number of bidders instead of falling. Every decision still reads
the latest committed row under its lock, whatever other processes do.

Waiting holds no thread: callers get a `concurrent.futures.Future` (the event loop wraps
it); each auction being decided occupies one of `threads` worker threads. What a batch
must do once its offers are answered (publishing its events) runs in one more thread, in
batch order, so it delays neither the answers nor the next batch.
"""

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar
from uuid import UUID

from django.db import close_old_connections

from infra.metrics import BID_DECISION_SECONDS

logger = logging.getLogger(__name__)

Request = TypeVar("Request")
Result = TypeVar("Result")


@dataclass(frozen=True, slots=True)
class Decided(Generic[Result]):
    """A batch's results, one per request in order, and what to do once they are given."""

    results: Sequence[Result]
    after: Callable[[], object] | None = None


class OfferBatcher(Generic[Request, Result]):
    """Per-auction queues, each drained by one thread at a time through `decide`."""

    def __init__(
        self,
        decide: Callable[[UUID, Sequence[Request]], Decided[Result]],
        *,
        max_batch: int,
        threads: int,
    ) -> None:
        self._decide = decide
        self._max_batch = max_batch
        self._lock = threading.Lock()
        # An auction has a queue exactly while a thread is draining it.
        # Per auction: the offers waiting, each with its future and when it was submitted.
        self._queues: dict[UUID, list[tuple[Request, Future[Result], float]]] = {}
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bids")
        self._after = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bids-after")
        # Sizes of the batches decided, for the benchmark.
        self.batch_sizes: list[int] = []

    def submit(self, auction_id: UUID, request: Request) -> Future[Result]:
        future: Future[Result] = Future()
        with self._lock:
            queue = self._queues.get(auction_id)
            start = queue is None
            if queue is None:
                queue = self._queues[auction_id] = []
            queue.append((request, future, time.perf_counter()))
        if start:
            self._executor.submit(self._drain, auction_id)
        return future

    def wait_for_after(self) -> None:
        """Return once the `after` work of every batch already decided has run.

        Its one thread takes work in order, so an empty task queued now runs last.
        """
        self._after.submit(lambda: None).result()

    def _drain(self, auction_id: UUID) -> None:
        while True:
            with self._lock:
                queue = self._queues[auction_id]
                batch, self._queues[auction_id] = queue[: self._max_batch], queue[self._max_batch :]
                if not batch:
                    del self._queues[auction_id]
                    return
            self.batch_sizes.append(len(batch))
            close_old_connections()  # as Django does around a request
            try:
                decided = self._decide(auction_id, [request for request, _, _ in batch])
            except BaseException as exc:  # every waiter learns of it; the next batch goes on
                for _, future, _ in batch:
                    future.set_exception(exc)
            else:
                now = time.perf_counter()
                for (_, future, submitted), result in zip(batch, decided.results, strict=True):
                    BID_DECISION_SECONDS.observe(now - submitted)
                    future.set_result(result)
                if decided.after is not None:
                    self._after.submit(_logged, decided.after)
            finally:
                close_old_connections()


def _logged(after: Callable[[], object]) -> None:
    close_old_connections()  # as around a request: a connection a restart broke goes
    try:
        after()
    except Exception:  # the sweep makes good a publish that failed
        logger.warning("finishing a bid batch failed", exc_info=True)
    finally:
        close_old_connections()
