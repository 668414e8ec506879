"""The server's clock, estimated from `ping` / `pong` round trips.

A `pong`'s `timestamp` is the server's time when it answered, in Unix seconds (millisecond
precision). Assuming the answer was made halfway through the round trip, the server's time
at the midpoint is that timestamp, so the estimate is off by at most half the round trip
(plus the rounding). Of the recent samples the one with the shortest round trip wins, as
in NTP: a sample delayed on the way (a busy server, a slow network) is the least certain.

The estimate is anchored on the monotonic clock, so a jump of the local wall clock after a
sample does not move `server_time()`.
"""

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClockSample:
    rtt: float  # seconds, the round trip
    offset: float  # server time minus local monotonic time, at the midpoint


class ClockSync:
    """Server time = local monotonic time + the offset of the best recent sample."""

    def __init__(
        self,
        keep: int = 8,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._samples: deque[ClockSample] = deque(maxlen=keep)
        self._monotonic = monotonic
        self._wall = wall

    def add(self, *, sent: float, received: float, server_timestamp: float) -> ClockSample:
        """A round trip: local monotonic times at send and receipt, and the pong's timestamp."""
        rtt = max(0.0, received - sent)
        sample = ClockSample(rtt=rtt, offset=server_timestamp - (sent + rtt / 2))
        self._samples.append(sample)
        return sample

    def _best(self) -> ClockSample | None:
        return min(self._samples, key=lambda sample: sample.rtt, default=None)

    @property
    def synced(self) -> bool:
        return bool(self._samples)

    @property
    def rtt(self) -> float | None:
        """The round trip of the sample in use (seconds), or None before the first."""
        best = self._best()
        return None if best is None else best.rtt

    def server_time(self) -> float:
        """The server's time now, in Unix seconds (the local clock before the first sample)."""
        best = self._best()
        if best is None:
            return self._wall()
        return self._monotonic() + best.offset

    @property
    def offset(self) -> float | None:
        """Server clock minus the local wall clock (seconds), or None before the first sample."""
        if not self._samples:
            return None
        return self.server_time() - self._wall()
