"""Reads of bids: an auction's bid history, and where a user stands in the auctions they bid on."""

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal
from uuid import UUID

from django.db.models import Count, Max, QuerySet

from accounts.models import User
from auctions.errors import NotFound
from auctions.formats import money
from auctions.models import Auction, AuctionStatus
from auctions.selectors import auctions_with_people
from bidding.models import Bid


def bid_history(*, auction_id: UUID) -> QuerySet[Bid]:
    """The accepted bids of an auction, newest first; NotFound if there is no such auction."""
    if not Auction.objects.filter(id=auction_id).exists():
        raise NotFound()
    # The (auction, seq) unique index serves it without a sort.
    return Bid.objects.filter(auction_id=auction_id).select_related("bidder").order_by("-seq")


@dataclass(frozen=True, slots=True)
class OwnBid:
    """What a bidder may know of their own bidding on an auction (spec §7, rule 7)."""

    max_amount: Decimal
    leading: bool
    amount: Decimal
    bid_id: UUID

    def as_data(self) -> dict[str, object]:
        return {
            "max_amount": money(self.max_amount),
            "leading": self.leading,
            "amount": money(self.amount),
        }


def own_bid(*, auction_id: UUID, bidder: User) -> OwnBid:
    """The bidder's max, whether they lead, and their highest recorded bid; NotFound if none.

    The leader's max is kept on the auction; anyone else's was used up by their own highest
    bid (rules 2 and 3 bid a max in full before it is beaten).
    """
    auction = Auction.objects.filter(id=auction_id).values("highest_bidder_id", "leader_max")
    state = auction.first()
    if state is None:
        raise NotFound()
    # Amounts rise with seq: the bidder's latest bid is their highest.
    top = Bid.objects.filter(auction_id=auction_id, bidder=bidder).order_by("-seq").first()
    if top is None:
        raise NotFound("bid")
    leading = state["highest_bidder_id"] == bidder.id
    top_max = state["leader_max"] if leading and state["leader_max"] is not None else top.amount
    return OwnBid(max_amount=top_max, leading=leading, amount=top.amount, bid_id=top.id)


BidStanding = Literal["winning", "outbid", "won", "lost", "cancelled"]


@dataclass(frozen=True, slots=True)
class MyBid:
    """One auction a user bid on: their highest bid and where they stand."""

    auction: Auction
    my_highest: Decimal
    my_bid_count: int
    standing: BidStanding


def bid_standings(*, user: User) -> list[MyBid]:
    """The auctions `user` bid on, open ones (ending soonest) first, then the newest ended.

    Standing: `winning` / `outbid` while the auction is open, `won` / `lost` once it ended
    (a bidder whose bid did not meet the reserve lost too).
    """
    auctions = (
        auctions_with_people()
        .filter(bids__bidder=user)
        # The filter's join restricts these aggregates to the user's own bids.
        .annotate(my_highest=Max("bids__amount"), my_bid_count=Count("bids"))
        # NULLs sort first descending: open auctions (not ended) come first.
        .order_by("-ended_at", "end_time", "id")
    )
    return [
        MyBid(
            auction=auction,
            my_highest=auction.my_highest,
            my_bid_count=auction.my_bid_count,
            standing=_standing(auction, user),
        )
        for auction in auctions
    ]


def _standing(auction: Auction, user: User) -> BidStanding:
    if auction.status == AuctionStatus.ENDED:
        return "won" if auction.winner_id == user.id else "lost"
    if auction.status == AuctionStatus.CANCELLED:
        return "cancelled"
    return "winning" if auction.highest_bidder_id == user.id else "outbid"
