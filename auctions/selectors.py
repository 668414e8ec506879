"""Reads: auctions, their snapshot (spec §2), bid history and stored events."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import connection
from django.db.models import QuerySet

from auctions.errors import NotFound
from auctions.formats import iso, money
from auctions.models import Auction, AuctionEvent, AuctionStatus


def db_now() -> datetime:
    """The database's clock now (not at the transaction's start): the one clock that decides."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        now: datetime = cursor.fetchone()[0]
        return now


def auctions_with_people() -> QuerySet[Auction]:
    return Auction.objects.select_related("item", "creator", "highest_bidder", "winner")


# What `auction_snapshot` reads, and no more: a subscribe loads one of these per handshake.
_SNAPSHOT_FIELDS = (
    "id", "status", "starting_price", "current_price", "min_increment", "increments",
    "reserve_price", "buy_now_price", "bid_count", "start_time", "end_time", "last_seq",
    "item", "highest_bidder", "winner",
    "item__id", "item__name", "item__description",
    "highest_bidder__id", "highest_bidder__username",
    "winner__id", "winner__username",
)  # fmt: skip


def auction_get(*, auction_id: UUID, for_snapshot: bool = False) -> Auction:
    """One auction with its item and people; `for_snapshot` loads only what the snapshot shows."""
    auctions = (
        Auction.objects.select_related("item", "highest_bidder", "winner").only(*_SNAPSHOT_FIELDS)
        if for_snapshot
        else auctions_with_people()
    )
    try:
        return auctions.get(id=auction_id)
    except Auction.DoesNotExist as exc:
        raise NotFound() from exc


def auction_list(*, status: str | None = None) -> QuerySet[Auction]:
    """Auctions for lists: active ones ending soonest first, others newest first."""
    auctions = auctions_with_people()
    if status:
        auctions = auctions.filter(status=status)
    if status == AuctionStatus.ACTIVE:
        return auctions.order_by("end_time", "id")
    if status == AuctionStatus.PENDING:
        return auctions.order_by("start_time", "id")
    return auctions.order_by("-created_at", "id")


def auction_snapshot(auction: Auction) -> dict[str, Any]:
    """The auction as `subscribed.data` and the HTTP auction resource show it."""
    return {
        "id": str(auction.id),
        "item": {
            "id": str(auction.item.id),
            "name": auction.item.name,
            "description": auction.item.description,
        },
        "status": auction.status,
        "starting_price": money(auction.starting_price),
        "current_price": money(auction.current_price),
        "min_next_bid": money(auction.min_next_bid),
        "min_increment": money(auction.increment),
        "increments": auction.increment_rule.as_pairs(),
        "buy_now_price": money(auction.buy_now_offered),
        "reserve_met": auction.reserve_met,
        "bid_count": auction.bid_count,
        "highest_bidder": auction.highest_bidder.as_person() if auction.highest_bidder else None,
        "start_time": iso(auction.start_time),
        "end_time": iso(auction.end_time),
        "seq": auction.last_seq,
        "winner": auction.winner.as_person() if auction.winner else None,
    }


def event_list(
    *, auction_id: UUID, since_seq: int = 0, limit: int | None = None
) -> Sequence[AuctionEvent]:
    """Stored events of an auction with seq > since_seq, in seq order."""
    events = AuctionEvent.objects.filter(auction_id=auction_id, seq__gt=since_seq).order_by("seq")
    return list(events[:limit] if limit else events)
