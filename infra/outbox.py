"""Handing rows written in a transaction to whoever publishes them, once it commits.

The domain writes outbox rows (auction events, notifications) in the transaction of
the change; delivery registers a publisher (realtime does, when its app is ready) and
the domain never imports delivery. Without a publisher (a process that delivers
nothing) the rows wait for the sweep, which reads the same rows.
"""

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from django.db import transaction

Row = TypeVar("Row")


class Outbox(Generic[Row]):
    def __init__(self, name: str) -> None:
        self.name = name
        self._publisher: Callable[[Sequence[Row]], object] | None = None

    def publisher_set(
        self, publisher: Callable[[Sequence[Row]], object] | None
    ) -> Callable[[Sequence[Row]], object] | None:
        """Make `publisher` receive every batch of committed rows; returns the previous one."""
        previous, self._publisher = self._publisher, publisher
        return previous

    def on_commit(self, rows: Sequence[Row]) -> None:
        """Publish `rows` once the current transaction commits (at once in autocommit)."""
        publish = self.publication(rows)
        if publish is not None:
            transaction.on_commit(publish)

    def publication(self, rows: Sequence[Row]) -> Callable[[], object] | None:
        """What publishes `rows` (already committed) with the publisher registered now; for
        a caller that publishes them itself, later or in another thread."""
        publisher = self._publisher
        if not rows or publisher is None:
            return None
        batch = list(rows)
        return lambda: publisher(batch)
