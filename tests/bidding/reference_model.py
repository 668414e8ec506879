"""A small model of an auction under spec §1 and §7, written from the spec's text alone.

It knows nothing of seqs, events, ids or the database: bidders are names, time is whole
seconds, the bid history is a list of (bidder, amount, automatic). The property tests
drive it and bidding.rules with the same offers and compare.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass
class ModelAuction:
    creator: str
    starting: Decimal
    inc: Callable[[Decimal], Decimal]
    end: int
    reserve: Decimal | None = None
    buy_now: Decimal | None = None
    extension: int = 0
    cap: int = 0  # soft close never moves the end past this
    now: int = 0
    status: str = "active"
    bids: list[tuple[str, Decimal, bool]] = field(default_factory=list)
    leader: str | None = None
    leader_max: Decimal | None = None
    winner: str | None = None

    def price(self) -> Decimal:
        return self.bids[-1][1] if self.bids else self.starting

    def min_next(self) -> Decimal:
        return self.starting if not self.bids else self.price() + self.inc(self.price())

    def offer(
        self,
        who: str,
        amount: Decimal | None = None,
        top: Decimal | None = None,
        buy: bool = False,
    ) -> tuple[str, str | bool]:
        """("accepted", leading) or ("rejected", code)."""
        if who == self.creator:
            return ("rejected", "own_auction")
        if self.status != "active" or self.now >= self.end:
            return ("rejected", "auction_ended")
        if buy:
            if self.buy_now is None or self.bids:
                return ("rejected", "buy_now_unavailable")
            self.bids.append((who, self.buy_now, False))
            self.leader, self.leader_max = who, self.buy_now
            self.status, self.winner = "ended", who
            return ("accepted", True)
        if who == self.leader:  # rule 5
            if top is None:
                return ("rejected", "already_highest")
            if top <= self.leader_max:
                return ("rejected", "bid_too_low")
            self.leader_max = top
            if self.reserve is not None and top >= self.reserve > self.price():
                self._bid(who, self.reserve, True)
            return ("accepted", True)
        mine = top if top is not None else amount
        if mine < self.min_next() or (amount is not None and amount < self.min_next()):
            return ("rejected", "bid_too_low")  # rule 1
        asked = amount if amount is not None else self.min_next()
        if self.leader is None or mine > self.leader_max:  # rule 2
            new_price = asked
            if self.leader is not None:
                new_price = max(asked, min(mine, self.leader_max + self.inc(self.leader_max)))
            if self.reserve is not None and mine >= self.reserve > new_price:  # rule 4
                new_price = self.reserve
            if self.leader is not None and self.leader_max > self.price():
                self.bids.append((self.leader, self.leader_max, True))
            self.leader, self.leader_max = who, mine
            self._bid(who, new_price, False)
            return ("accepted", True)
        # Rule 3: the earlier, higher (or equal) max holds.
        answer = mine if mine == self.leader_max else min(self.leader_max, mine + self.inc(mine))
        if self.reserve is not None and self.leader_max >= self.reserve > answer:
            answer = self.reserve
        self.bids.append((who, mine, False))
        self._bid(self.leader, answer, True)
        return ("accepted", False)

    def _bid(self, who: str, amount: Decimal, auto: bool) -> None:
        """The last bid of a decision; then soft close (spec §1)."""
        self.bids.append((who, amount, auto))
        if self.extension and self.end - self.now < self.extension:
            self.end = max(self.end, min(self.now + self.extension, self.cap))

    def reserve_met(self) -> bool:
        return self.reserve is None or (bool(self.bids) and self.price() >= self.reserve)
