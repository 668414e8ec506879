"""Reads of bids: an auction's bid history."""

from uuid import UUID

from django.db.models import QuerySet

from auctions.errors import NotFound
from auctions.models import Auction
from auctions.selectors import parse_uuid
from bidding.models import Bid


def bid_history(*, auction_id: UUID | str) -> QuerySet[Bid]:
    """The accepted bids of an auction, newest first; NotFound if there is no such auction."""
    auction_uuid = parse_uuid(auction_id)
    if not Auction.objects.filter(id=auction_uuid).exists():
        raise NotFound()
    # Accepted amounts strictly increase, so highest first is newest first, and the
    # (auction, amount) unique index serves it without a sort.
    return Bid.objects.filter(auction_id=auction_uuid).select_related("bidder").order_by("-amount")
