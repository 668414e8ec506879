"""How long to wait before the next connection attempt: exponential, capped, with jitter."""

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Attempt n waits between half and all of min(cap, base * factor**n) seconds.

    The random half ("equal jitter") spreads the reconnects of many clients that lost the
    same server, while never retrying at once in a tight loop.
    """

    base: float = 0.5
    cap: float = 30.0
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random)

    def ceiling(self, attempt: int) -> float:
        return min(self.cap, self.base * self.factor ** min(attempt, 64))

    def delay(self, attempt: int) -> float:
        ceiling = self.ceiling(attempt)
        return self.rng.uniform(ceiling / 2, ceiling)
