"""The order one subscription delivers an auction's events in: every seq once, ascending.

Events reach a subscription live (at least once, in any order: two commits' publishes
cross, a publish is lost or repeated) and from the database (a replay up to the
snapshot, or a gap fill). `EventOrder` takes them all and hands out the next seq to
send, and only that: a repeat is dropped, an event ahead of a gap is held until the gap
is filled, and `missing()` says which stored events would fill it. No I/O here; the
consumer reads, waits and sends.
"""

from dataclasses import dataclass, field


@dataclass
class EventOrder:
    """One subscription's delivery state: the last seq handed out and the events held."""

    last_sent: int
    _held: dict[int, str] = field(default_factory=dict)

    def offer(self, seq: int, text: str) -> None:
        """An event arrived, live or stored. One already sent is dropped; the rest wait."""
        if seq > self.last_sent:
            self._held.setdefault(seq, text)

    def take_next(self) -> str | None:
        """The next event to send, counted as sent; None while its seq has not arrived.

        Callers send each one before taking the next, so whoever takes a seq sends it and
        nothing else can send it (or a later one) first.
        """
        text = self._held.pop(self.last_sent + 1, None)
        if text is not None:
            self.last_sent += 1
        return text

    def missing(self) -> tuple[int, int] | None:
        """(after, upto): the seqs that must be read to deliver what is held, or None."""
        if not self._held:
            return None
        return self.last_sent, min(self._held) - 1
