"""The bid rules (spec §1 and §7), decided with no I/O.

`decide` takes the locked state of an auction, the database's clock and the offers that
arrived for it, in order: straight bids, maximum bids, max raises and buy it now. It
returns each offer's outcome (accepted, with whether the bidder leads, or rejected with
its code) and what to write: the new bids (the engine's automatic ones included), the
events in seq order, and the auction's state afterwards. bidding.services locks, reads,
calls this and writes; nothing else decides a bid.

The price arithmetic (increments, the minimum next bid, the reserve) is auctions.pricing.
"""

import dataclasses
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from auctions.errors import Code, InvalidAmount
from auctions.events import auction_ended_data, auction_extended_data, bid_placed_data
from auctions.formats import iso, money, parse_amount
from auctions.models import AuctionStatus
from auctions.pricing import Increments, min_next_bid, reserve_met


@dataclass(frozen=True, slots=True)
class Person:
    id: UUID
    name: str

    def as_person(self) -> dict[str, str]:
        return {"id": str(self.id), "name": self.name}


@dataclass(frozen=True, slots=True)
class AuctionState:
    """The auction as the rules see it: its terms and running state."""

    status: str
    creator_id: UUID
    end_time: datetime
    max_end_time: datetime
    extension_seconds: int
    starting_price: Decimal
    increments: Increments
    reserve_price: Decimal | None
    buy_now_price: Decimal | None
    current_price: Decimal
    bid_count: int
    leader: Person | None
    leader_max: Decimal | None
    leader_max_at: datetime | None
    highest_bid_id: UUID | None
    last_seq: int
    winner: Person | None = None
    final_price: Decimal | None = None
    ended_at: datetime | None = None

    @property
    def min_next_bid(self) -> Decimal:
        return min_next_bid(
            starting_price=self.starting_price,
            current_price=self.current_price,
            bid_count=self.bid_count,
            increments=self.increments,
        )

    @property
    def reserve_met(self) -> bool:
        return reserve_met(
            reserve_price=self.reserve_price,
            current_price=self.current_price,
            bid_count=self.bid_count,
        )


@dataclass(frozen=True, slots=True)
class Offer:
    """One request of a bidder: a bid (straight, or with a maximum), or buy it now.

    A straight bid has no `max_amount` (its max is its amount); a maximum bid may leave
    `amount` out, and then bids the minimum next bid at the moment it is decided.
    """

    bidder: Person
    amount: Decimal | None = None
    max_amount: Decimal | None = None
    buy_now: bool = False
    request_id: str | None = None


def offer_parse(
    *,
    bidder: Person,
    amount: object = None,
    max_amount: object = None,
    buy_now: bool = False,
    request_id: str | None = None,
) -> Offer:
    """An offer from what a client sent, or InvalidAmount (decided before the database)."""
    if buy_now:
        return Offer(bidder=bidder, buy_now=True, request_id=request_id)
    if max_amount is None:
        return Offer(bidder=bidder, amount=parse_amount(amount), request_id=request_id)
    top = parse_amount(max_amount)
    bid = None if amount is None else parse_amount(amount)
    if bid is not None and bid > top:
        raise InvalidAmount("max_amount must be at least the amount.")
    return Offer(bidder=bidder, amount=bid, max_amount=top, request_id=request_id)


@dataclass(frozen=True, slots=True)
class Accepted:
    """`bid_accepted.data`: the bidder's own highest bid and the state after the decision."""

    bid_id: UUID
    amount: Decimal
    seq: int
    current_price: Decimal
    min_next_bid: Decimal
    end_time: datetime
    leading: bool
    max_amount: Decimal
    bought: bool = False

    def as_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "bid_id": str(self.bid_id),
            "amount": money(self.amount),
            "seq": self.seq,
            "current_price": money(self.current_price),
            "min_next_bid": money(self.min_next_bid),
            "end_time": iso(self.end_time),
            "leading": self.leading,
            "max_amount": money(self.max_amount),
            "bought": self.bought,
        }
        return data


@dataclass(frozen=True, slots=True)
class Rejected:
    """`bid_rejected`'s code, and the prices where known (not for not_found, rate_limited)."""

    code: Code
    current_price: Decimal | None = None
    min_next_bid: Decimal | None = None

    def as_data(self) -> dict[str, Any]:
        if self.current_price is None or self.min_next_bid is None:
            return {}
        return {
            "current_price": money(self.current_price),
            "min_next_bid": money(self.min_next_bid),
        }


Outcome = Accepted | Rejected


@dataclass(frozen=True, slots=True)
class NewBid:
    id: UUID
    bidder: Person
    amount: Decimal
    auto: bool
    seq: int
    request_id: str | None


@dataclass(frozen=True, slots=True)
class NewEvent:
    id: UUID
    seq: int
    type: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Decision:
    outcomes: tuple[Outcome, ...]
    bids: tuple[NewBid, ...]
    events: tuple[NewEvent, ...]
    state: AuctionState
    # Anything to write to the auction row (a bid, a raised max, a sale).
    changed: bool
    extended: bool
    bought: bool
    # Who led before an offer's decision and not after it, once per such offer, in order
    # (spec §8 "outbid"). A bidder whose own offer is beaten at once was never leading.
    outbid: tuple[Person, ...] = ()


def decide(
    state: AuctionState,
    offers: Sequence[Offer],
    *,
    now: datetime,
    new_id: Callable[[], UUID] = uuid.uuid4,
) -> Decision:
    """Decide `offers` in order against `state` at the database's time `now`."""
    deciding = _Deciding(state, now, new_id)
    outcomes = tuple(deciding.take(offer) for offer in offers)
    return Decision(
        outcomes=outcomes,
        bids=tuple(deciding.bids),
        events=tuple(deciding.events),
        state=deciding.state,
        changed=deciding.changed,
        extended=deciding.extended,
        bought=deciding.bought,
        outbid=tuple(deciding.outbid),
    )


@dataclass
class _Deciding:
    state: AuctionState
    now: datetime
    new_id: Callable[[], UUID]
    bids: list[NewBid] = field(default_factory=list)
    events: list[NewEvent] = field(default_factory=list)
    changed: bool = False
    extended: bool = False
    bought: bool = False
    outbid: list[Person] = field(default_factory=list)

    def take(self, offer: Offer) -> Outcome:
        code = self._rejection(offer)
        if code is not None:
            return Rejected(code, self.state.current_price, self.state.min_next_bid)
        self.changed = True
        leader = self.state.leader
        outcome = self._accept(offer)
        if leader is not None and (self.state.leader is None or self.state.leader.id != leader.id):
            self.outbid.append(leader)
        return outcome

    def _accept(self, offer: Offer) -> Outcome:
        if offer.buy_now:
            return self._buy(offer)
        if self.state.leader is not None and self.state.leader.id == offer.bidder.id:
            return self._raise(offer)
        return self._outbid(offer)

    def _rejection(self, offer: Offer) -> Code | None:
        """The first rule the offer breaks, in the order: who, the auction, the amount."""
        state = self.state
        if offer.bidder.id == state.creator_id:
            return Code.OWN_AUCTION
        if state.status in (AuctionStatus.PENDING, AuctionStatus.CANCELLED):
            return Code.AUCTION_NOT_ACTIVE
        if state.status == AuctionStatus.ENDED or self.now >= state.end_time:
            return Code.AUCTION_ENDED
        if offer.buy_now:
            if state.buy_now_price is None or state.bid_count > 0:
                return Code.BUY_NOW_UNAVAILABLE
            return None
        if state.leader is not None and state.leader.id == offer.bidder.id:
            if offer.max_amount is None:
                return Code.ALREADY_HIGHEST
            if state.leader_max is not None and offer.max_amount <= state.leader_max:
                return Code.BID_TOO_LOW  # rule 5: a raise must go above the current max
            return None
        top = offer.max_amount if offer.max_amount is not None else offer.amount
        assert top is not None  # offer_parse gives every bid an amount or a max
        if top < state.min_next_bid:
            return Code.BID_TOO_LOW  # rule 1
        if offer.amount is not None and offer.amount < state.min_next_bid:
            return Code.BID_TOO_LOW
        return None

    # The three ways a bid can go (spec §7 rules 2, 3 and 5), and buy it now.

    def _outbid(self, offer: Offer) -> Outcome:
        state = self.state
        bidder = offer.bidder
        top = offer.max_amount if offer.max_amount is not None else offer.amount
        assert top is not None
        amount = offer.amount if offer.amount is not None else state.min_next_bid
        leader, leader_max = state.leader, state.leader_max
        if leader is None or leader_max is None or top > leader_max:
            # Rule 2: the bidder leads, at what it takes to beat the old leader's max; the
            # old leader's max is bid for them first if it stood above the price.
            bids: list[tuple[Person, Decimal, bool]] = []
            price = amount
            if leader is not None and leader_max is not None:
                price = max(amount, min(top, leader_max + state.increments.at(leader_max)))
                if leader_max > state.current_price:
                    bids.append((leader, leader_max, True))
            bids.append((bidder, self._reserve_floor(price, top), False))
            self._lead(bidder, top)
            recorded = self._record(bids, offer)
            return self._accepted(recorded[-1], leading=True, max_amount=top)
        # Rule 3: the leader's max holds (the earlier one wins a tie). The bidder's bid is
        # recorded at their max, then the leader's at one increment more, up to their max.
        answer = (
            leader_max if top == leader_max else min(leader_max, top + state.increments.at(top))
        )
        answer = self._reserve_floor(answer, leader_max)
        recorded = self._record([(bidder, top, False), (leader, answer, True)], offer)
        return self._accepted(recorded[0], leading=False, max_amount=top)

    def _raise(self, offer: Offer) -> Outcome:
        """Rule 5: the leader raises their max; the price moves only for the reserve."""
        assert offer.max_amount is not None
        self.state = dataclasses.replace(
            self.state, leader_max=offer.max_amount, leader_max_at=self.now
        )
        floor = self._reserve_floor(self.state.current_price, offer.max_amount)
        mine = None
        if floor != self.state.current_price:
            (mine,) = self._record([(offer.bidder, floor, True)], offer)
        return self._accepted(mine, leading=True, max_amount=offer.max_amount)

    def _buy(self, offer: Offer) -> Outcome:
        price = self.state.buy_now_price
        assert price is not None
        self._lead(offer.bidder, price)
        (bid,) = self._record([(offer.bidder, price, False)], offer, extend=False)
        self.state = dataclasses.replace(
            self.state,
            status=AuctionStatus.ENDED,
            winner=offer.bidder,
            final_price=price,
            ended_at=self.now,
        )
        self.bought = True
        data = auction_ended_data(
            final_price=price,
            winner=offer.bidder.as_person(),
            winning_bid_id=bid.id,
            reserve_met=True,
            reason="bought",
        )
        self._event("auction_ended", data)
        return self._accepted(bid, leading=True, max_amount=price, bought=True)

    # Helpers.

    def _reserve_floor(self, price: Decimal, leader_max: Decimal) -> Decimal:
        """Rule 4: a leader whose max reaches the reserve bids at least the reserve."""
        reserve = self.state.reserve_price
        if reserve is not None and leader_max >= reserve > price:
            return reserve
        return price

    def _lead(self, bidder: Person, top: Decimal) -> None:
        self.state = dataclasses.replace(
            self.state, leader=bidder, leader_max=top, leader_max_at=self.now
        )

    def _record(
        self, bids: Sequence[tuple[Person, Decimal, bool]], offer: Offer, *, extend: bool = True
    ) -> list[NewBid]:
        """Record (bidder, amount, automatic) bids in order, each with its own `bid_placed`
        (rule 6), then apply soft close (§1). Every event names the leader after the whole
        decision; the offer's request id goes on the bid the bidder placed themselves."""
        previous_end = self.state.end_time
        if extend:
            self._extend()
        leader = self.state.leader
        assert leader is not None
        recorded = []
        for bidder, amount, auto in bids:
            state = self.state
            bid = NewBid(
                id=self.new_id(),
                bidder=bidder,
                amount=amount,
                auto=auto,
                seq=state.last_seq + 1,
                request_id=None if auto else offer.request_id,
            )
            self.state = dataclasses.replace(
                state,
                current_price=amount,
                bid_count=state.bid_count + 1,
                highest_bid_id=bid.id,
                last_seq=bid.seq,
            )
            data = bid_placed_data(
                bid_id=bid.id,
                amount=amount,
                bidder=bidder.as_person(),
                auto=auto,
                highest_bidder=leader.as_person(),
                current_price=amount,
                min_next_bid=self.state.min_next_bid,
                bid_count=self.state.bid_count,
                end_time=self.state.end_time,
            )
            self.bids.append(bid)
            self.events.append(
                NewEvent(id=self.new_id(), seq=bid.seq, type="bid_placed", data=data)
            )
            recorded.append(bid)
        if self.state.end_time != previous_end:
            data = auction_extended_data(
                end_time=self.state.end_time, previous_end_time=previous_end
            )
            self._event("auction_extended", data)
        return recorded

    def _extend(self) -> None:
        """Soft close: a bid inside the window moves the end, never past the cap."""
        state = self.state
        window = timedelta(seconds=state.extension_seconds)
        if state.extension_seconds <= 0 or state.end_time - self.now >= window:
            return
        end = min(self.now + window, state.max_end_time)
        if end > state.end_time:
            self.state = dataclasses.replace(state, end_time=end)
            self.extended = True

    def _event(self, type: str, data: dict[str, Any]) -> None:
        seq = self.state.last_seq + 1
        self.state = dataclasses.replace(self.state, last_seq=seq)
        self.events.append(NewEvent(id=self.new_id(), seq=seq, type=type, data=data))

    def _accepted(
        self, mine: NewBid | None, *, leading: bool, max_amount: Decimal, bought: bool = False
    ) -> Accepted:
        """The reply: the bidder's own highest bid (for a raise that records nothing, the
        leader's existing one) and the auction as it now stands."""
        state = self.state
        bid_id = mine.id if mine is not None else state.highest_bid_id
        assert bid_id is not None  # a leader has a bid
        return Accepted(
            bid_id=bid_id,
            amount=mine.amount if mine is not None else state.current_price,
            seq=state.last_seq,
            current_price=state.current_price,
            min_next_bid=state.min_next_bid,
            end_time=state.end_time,
            leading=leading,
            max_amount=max_amount,
            bought=bought,
        )
