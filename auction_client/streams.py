"""Each seq'd stream once and in order: a pure buffer, no I/O.

The server numbers every event of an auction, and every notification of a user, 1, 2, 3, …
A stream remembers the last seq handed to the application, drops anything at or below it
(a repeat after a resume), and holds anything that arrives ahead of a gap until the gap is
filled, so what comes out is each seq exactly once, in order.
"""

from typing import Generic, TypeVar

T = TypeVar("T")


class SeqStream(Generic[T]):
    """Items keyed by seq, released in order, each once."""

    def __init__(self, last: int | None = None) -> None:
        # The last seq released; None until the stream knows where it starts.
        self.last: int | None = last
        self._ahead: dict[int, T] = {}

    def start(self, last: int) -> list[T]:
        """Start at `last` if the stream has no start yet; what can now be released."""
        if self.last is None:
            self.last = last
        return self._release()

    def offer(self, seq: int, item: T) -> list[T]:
        """An item as it arrived; returns what can now be released, in order."""
        if (self.last is not None and seq <= self.last) or seq in self._ahead:
            return []  # seen before
        self._ahead[seq] = item
        return self._release()

    def gap(self) -> tuple[int, int] | None:
        """(last released, first held) while something waits for missing seqs, else None."""
        if self.last is None or not self._ahead:
            return None
        return self.last, min(self._ahead)

    def _release(self) -> list[T]:
        released: list[T] = []
        if self.last is None:
            return released
        for seq in [s for s in self._ahead if s <= self.last]:
            del self._ahead[seq]
        while self.last + 1 in self._ahead:
            self.last += 1
            released.append(self._ahead.pop(self.last))
        return released
