"""Reads: auctions, the catalogue's search (spec §9), their snapshot (spec §2), stored events."""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.core.files.storage import default_storage
from django.db import connection
from django.db.models import Case, F, IntegerField, Prefetch, QuerySet, Value, When
from django.db.models.functions import Coalesce

from accounts.models import User
from auctions.errors import NotFound
from auctions.formats import iso, money
from auctions.models import (
    OPEN_STATUSES,
    SEARCH_CONFIG,
    Auction,
    AuctionEvent,
    AuctionStatus,
    Category,
    ItemImage,
)
from notifications.models import Watch


def db_now() -> datetime:
    """The database's clock now (not at the transaction's start): the one clock that decides."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        now: datetime = cursor.fetchone()[0]
        return now


def auctions_with_people() -> QuerySet[Auction]:
    """Auctions with what a card or the snapshot shows: item, category, photos, people."""
    return Auction.objects.select_related(
        "item", "item__category", "creator", "highest_bidder", "winner"
    ).prefetch_related(_PHOTOS)


_PHOTOS = Prefetch("item__images", queryset=ItemImage.objects.order_by("position"))


# What `auction_snapshot` reads, and no more: a subscribe loads one of these per handshake.
_SNAPSHOT_FIELDS = (
    "id", "status", "starting_price", "current_price", "min_increment", "increments",
    "reserve_price", "buy_now_price", "bid_count", "start_time", "end_time", "last_seq",
    "item", "highest_bidder", "winner",
    "item__id", "item__name", "item__description", "item__category",
    "item__category__slug", "item__category__name",
    "highest_bidder__id", "highest_bidder__username",
    "winner__id", "winner__username",
)  # fmt: skip


def auction_get(*, auction_id: UUID, for_snapshot: bool = False) -> Auction:
    """One auction with its item and people; `for_snapshot` loads only what the snapshot shows."""
    auctions = (
        Auction.objects.select_related("item", "item__category", "highest_bidder", "winner")
        .only(*_SNAPSHOT_FIELDS)
        .prefetch_related(_PHOTOS)
        if for_snapshot
        else auctions_with_people()
    )
    try:
        return auctions.get(id=auction_id)
    except Auction.DoesNotExist as exc:
        raise NotFound() from exc


Ordering = Literal["relevance", "ending", "newest", "price", "-price"]
ORDERINGS: dict[str, tuple[str, ...]] = {
    "ending": ("end_time", "id"),
    "newest": ("-created_at", "id"),
    "price": ("current_price", "id"),
    "-price": ("-current_price", "id"),
}


def auction_list(
    *,
    status: str | None = None,
    q: str | None = None,
    category: Category | None = None,
    min_price: Decimal | None = None,
    max_price: Decimal | None = None,
    ordering: Ordering | None = None,
) -> QuerySet[Auction]:
    """Auctions for lists and search (spec §9): words in the item's name and description
    (PostgreSQL full-text search, best matches first), a category, a status, a price range.

    Without an ordering: best matches first when searching, else active auctions ending
    soonest first, pending ones starting soonest, the rest newest first.
    """
    auctions = auctions_with_people()
    if status:
        auctions = auctions.filter(status=status)
    if category is not None:
        auctions = auctions.filter(item__category=category)
    if min_price is not None:
        auctions = auctions.filter(current_price__gte=min_price)
    if max_price is not None:
        auctions = auctions.filter(current_price__lte=max_price)
    if q:
        query = SearchQuery(q, config=SEARCH_CONFIG, search_type="websearch")
        auctions = auctions.filter(item__search=query).annotate(
            rank=SearchRank(F("item__search"), query)
        )
    if ordering in ORDERINGS:
        return auctions.order_by(*ORDERINGS[ordering])
    if q:
        return auctions.order_by("-rank", "end_time", "id")
    if status == AuctionStatus.ACTIVE:
        return auctions.order_by("end_time", "id")
    if status == AuctionStatus.PENDING:
        return auctions.order_by("start_time", "id")
    return auctions.order_by("-created_at", "id")


def item_photos(auction: Auction) -> list[dict[str, Any]]:
    """`item.images` of the snapshot: each photo's display size and thumbnail (spec §9)."""
    return [_photo(photo) for photo in auction.item.images.all()]


def item_photos_of(*, item_id: UUID) -> list[dict[str, Any]]:
    return [_photo(photo) for photo in ItemImage.objects.filter(item_id=item_id)]


def _photo(photo: ItemImage) -> dict[str, Any]:
    return {
        "url": default_storage.url(photo.image.name),
        "thumbnail_url": default_storage.url(photo.thumbnail.name),
        "width": photo.width,
        "height": photo.height,
    }


def auction_snapshot(auction: Auction) -> dict[str, Any]:
    """The auction as `subscribed.data` and the HTTP auction resource show it."""
    return {
        "id": str(auction.id),
        "item": {
            "id": str(auction.item.id),
            "name": auction.item.name,
            "description": auction.item.description,
            "category": (
                {"slug": auction.item.category.slug, "name": auction.item.category.name}
                if auction.item.category
                else None
            ),
            "images": item_photos(auction),
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


def auction_must_exist(*, auction_id: UUID) -> None:
    """Nothing if the auction exists; NotFound if it does not."""
    if not Auction.objects.filter(id=auction_id).exists():
        raise NotFound()


def watchlist(*, user: User) -> QuerySet[Auction]:
    """The auctions `user` watches (spec §8): open ones first, ending soonest first; then
    the closed ones, the most recently ended first."""
    closed = Case(
        When(status__in=OPEN_STATUSES, then=Value(0)), default=Value(1), output_field=IntegerField()
    )
    open_end = Case(When(status__in=OPEN_STATUSES, then=F("end_time")), default=None)
    return (
        auctions_with_people()
        .filter(id__in=Watch.objects.filter(user=user).values("auction_id"))
        .order_by(
            closed,
            open_end.asc(nulls_last=True),
            Coalesce("ended_at", "end_time").desc(),
            "id",
        )
    )
