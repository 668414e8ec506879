"""Writes for items and auctions: create, start, close, cancel (spec §1).

Every change that subscribers see records its event in the same transaction, under the
auction's row lock. Bids live in bidding.services.
"""

from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, transaction

from accounts.models import User
from auctions.errors import (
    Code,
    DomainError,
    InvalidAmount,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from auctions.events import (
    auction_cancelled_data,
    auction_ended_data,
    auction_started_data,
    event_record,
)
from auctions.formats import is_storable_text, parse_amount
from auctions.models import Auction, AuctionStatus, Item
from auctions.pricing import increment_tables, increments_table_parse
from auctions.schedule_index import schedule_auction, schedule_remove
from auctions.selectors import db_now

MAX_DURATION = timedelta(days=365)
MAX_EXTENSION_SECONDS = 24 * 3600
MAX_NAME_LENGTH = Item._meta.get_field("name").max_length or 200
MAX_DESCRIPTION_LENGTH = Item._meta.get_field("description").max_length or 10_000


def item_create(*, owner: User, name: str, description: str = "") -> Item:
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name:
        raise ValidationFailed("The item needs a name.", "item.name")
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationFailed(
            f"The item name is longer than {MAX_NAME_LENGTH} characters.", "item.name"
        )
    if not is_storable_text(name):
        raise ValidationFailed(
            "The item name contains characters that cannot be stored.", "item.name"
        )
    if not isinstance(description, str) or not is_storable_text(description):
        raise ValidationFailed("The item description must be plain text.", "item.description")
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise ValidationFailed(
            f"The item description is longer than {MAX_DESCRIPTION_LENGTH} characters.",
            "item.description",
        )
    return Item.objects.create(owner=owner, name=name, description=description)


@transaction.atomic
def auction_create(
    *,
    creator: User,
    starting_price: object,
    item_id: UUID | None = None,
    item_name: str | None = None,
    item_description: str = "",
    reserve_price: object = None,
    min_increment: object = None,
    increments: object = None,
    buy_now_price: object = None,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    duration_seconds: int | None = None,
    extension_seconds: int | None = None,
) -> Auction:
    """Put an item up for auction: an existing item of the creator's, or a new one.

    Without a start_time, or with one not in the future, the auction is active at once.
    The increment is fixed (`min_increment`, default 0.01) or a table (`increments`: the
    name of one of the site's tables, or the pairs themselves), not both.
    """
    now = db_now()
    starting = _money_field(starting_price, "starting_price")
    reserve = None if reserve_price is None else _money_field(reserve_price, "reserve_price")
    increment = Auction._meta.get_field("min_increment").default
    if min_increment is not None:
        increment = _money_field(min_increment, "min_increment")
    table = None
    if increments is not None:
        if min_increment is not None:
            raise ValidationFailed("Give min_increment or increments, not both.", "increments")
        table = increments_table_parse(increments, increment_tables())
    if reserve is not None and reserve < starting:
        raise ValidationFailed(
            "The reserve price cannot be below the starting price.", "reserve_price"
        )
    buy_now = None if buy_now_price is None else _money_field(buy_now_price, "buy_now_price")
    if buy_now is not None and (buy_now < starting or (reserve is not None and buy_now < reserve)):
        raise ValidationFailed(
            "The buy-it-now price must be at least the starting price and the reserve.",
            "buy_now_price",
        )
    extension = _extension_field(extension_seconds)

    start = now if start_time is None or start_time <= now else start_time
    end = _end_time(start=start, end_time=end_time, duration_seconds=duration_seconds, now=now)
    max_end = end + timedelta(seconds=settings.AUCTION_MAX_EXTENSION_SECONDS) if extension else end

    item = _item_for_auction(creator, item_id, item_name, item_description)
    try:
        with transaction.atomic():
            auction = Auction.objects.create(
                item=item,
                creator=creator,
                status=AuctionStatus.PENDING if start > now else AuctionStatus.ACTIVE,
                start_time=start,
                end_time=end,
                max_end_time=max_end,
                starting_price=starting,
                current_price=starting,
                reserve_price=reserve,
                min_increment=increment,
                increments=table,
                buy_now_price=buy_now,
                extension_seconds=extension,
            )
    except IntegrityError as exc:
        if "auction_one_open_per_item" in str(exc):
            raise DomainError(
                Code.ITEM_UNAVAILABLE, "This item already has a pending or active auction."
            ) from exc
        raise
    schedule_auction(auction)
    return auction


def _money_field(value: object, field: str) -> Decimal:
    try:
        return parse_amount(value)
    except InvalidAmount as exc:
        raise ValidationFailed(f"{field}: {exc.message}", field) from exc


def _extension_field(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(
            "extension_seconds must be a whole number of seconds.", "extension_seconds"
        )
    if not 0 <= value <= MAX_EXTENSION_SECONDS:
        raise ValidationFailed(
            f"extension_seconds must be between 0 and {MAX_EXTENSION_SECONDS}.", "extension_seconds"
        )
    return value


def _end_time(
    *, start: datetime, end_time: datetime | None, duration_seconds: object, now: datetime
) -> datetime:
    if (end_time is None) == (duration_seconds is None):
        raise ValidationFailed("Give exactly one of end_time and duration_seconds.", "end_time")
    if end_time is None:
        if isinstance(duration_seconds, bool) or not isinstance(duration_seconds, int):
            raise ValidationFailed("duration_seconds must be a whole number.", "duration_seconds")
        if duration_seconds <= 0:
            raise ValidationFailed("duration_seconds must be positive.", "duration_seconds")
        if duration_seconds > MAX_DURATION.total_seconds():
            raise ValidationFailed("An auction can last at most 365 days.", "duration_seconds")
        return start + timedelta(seconds=duration_seconds)
    if end_time.tzinfo is None:
        raise ValidationFailed("end_time needs a time zone (for example a trailing Z).", "end_time")
    if end_time <= now:
        raise ValidationFailed("end_time must be in the future.", "end_time")
    if end_time <= start:
        raise ValidationFailed("end_time must be after start_time.", "end_time")
    if end_time - start > MAX_DURATION:
        raise ValidationFailed("An auction can last at most 365 days.", "end_time")
    return end_time


def _item_for_auction(
    creator: User, item_id: UUID | None, item_name: str | None, item_description: str
) -> Item:
    if (item_id is None) == (item_name is None):
        raise ValidationFailed("Give either item_id or a new item's name.", "item")
    if item_id is None:
        return item_create(owner=creator, name=item_name or "", description=item_description)
    try:
        item = Item.objects.get(id=item_id)
    except Item.DoesNotExist as exc:
        raise NotFound("item") from exc
    if item.owner_id != creator.id:
        raise PermissionDenied("Only the item's owner can auction it.")
    return item


def _auction_for_update(auction_id: UUID) -> Auction:
    """The auction with its row locked until the transaction ends."""
    try:
        return (
            Auction.objects.select_for_update(of=("self",))
            .select_related("item", "highest_bidder")
            .get(id=auction_id)
        )
    except Auction.DoesNotExist as exc:
        raise NotFound() from exc


@transaction.atomic
def auction_start(*, auction_id: UUID) -> bool:
    """Make a pending auction active once its start time has come. True if this call did."""
    auction = _auction_for_update(auction_id)
    now = db_now()
    if auction.status != AuctionStatus.PENDING or auction.start_time > now:
        return False
    auction.status = AuctionStatus.ACTIVE
    event_record(
        auction=auction, type="auction_started", at=now, data=auction_started_data(auction)
    )
    auction.save(update_fields=["status", "last_seq", "version", "updated_at"])
    return True


@transaction.atomic
def auction_close(*, auction_id: UUID, early: bool = False) -> bool:
    """End an active auction and decide its winner. True if this call ended it.

    Idempotent: an auction that is not active is left alone. Without `early`, an
    auction whose end time has not come yet is left alone too; with it (staff's
    "close now"), it ends at once. The winner is the highest bidder when the reserve
    is met; bids waiting on the row lock see the new status and are rejected.
    """
    auction = _auction_for_update(auction_id)
    now = db_now()
    if auction.status == AuctionStatus.PENDING and early:
        raise DomainError(
            Code.AUCTION_NOT_ACTIVE, "A pending auction can be cancelled, not closed."
        )
    if auction.status != AuctionStatus.ACTIVE or (auction.end_time > now and not early):
        return False
    has_winner = auction.bid_count > 0 and auction.reserve_met
    auction.status = AuctionStatus.ENDED
    auction.ended_at = now
    auction.winner = auction.highest_bidder if has_winner else None
    auction.final_price = auction.current_price if has_winner else None
    data = auction_ended_data(
        final_price=auction.final_price,
        winner=auction.winner.as_person() if auction.winner else None,
        winning_bid_id=auction.highest_bid_id if has_winner else None,
        reserve_met=auction.reserve_met,
        reason="ended",
    )
    event_record(auction=auction, type="auction_ended", at=now, data=data)
    schedule_remove(auction.id)
    auction.save(
        update_fields=[
            "status",
            "ended_at",
            "winner",
            "final_price",
            "last_seq",
            "version",
            "updated_at",
        ]
    )
    return True


@transaction.atomic
def auction_cancel(*, auction_id: UUID, actor: User, reason: str = "") -> Auction:
    """Cancel a pending auction, or an active one without bids; by its creator or staff."""
    auction = _auction_for_update(auction_id)
    if auction.creator_id != actor.id and not actor.is_staff:
        raise PermissionDenied("Only the auction's creator or staff can cancel it.")
    cancellable = auction.status == AuctionStatus.PENDING or (
        auction.status == AuctionStatus.ACTIVE and auction.bid_count == 0
    )
    if not cancellable:
        raise DomainError(
            Code.NOT_CANCELLABLE,
            "Only a pending auction, or an active one without bids, can be cancelled.",
        )
    reason = (reason or "").strip()[:200] if is_storable_text(reason or "") else ""
    reason = reason or ("cancelled by staff" if actor.is_staff else "cancelled by the seller")
    auction.status = AuctionStatus.CANCELLED
    auction.cancel_reason = reason
    auction.ended_at = db_now()
    event_record(
        auction=auction,
        type="auction_cancelled",
        at=auction.ended_at,
        data=auction_cancelled_data(auction),
    )
    auction.save(
        update_fields=["status", "cancel_reason", "ended_at", "last_seq", "version", "updated_at"]
    )
    schedule_remove(auction.id)
    return auction
