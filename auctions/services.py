"""Writes for items and auctions: create, start, close, cancel (spec §1); edit a pending
auction and its item's photos (spec §9).

Every change that subscribers see records its event in the same transaction, under the
auction's row lock. Bids live in bidding.services. Rows are locked auction first, then
item, whatever the change, so two changes never wait for each other in a circle.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import IO, Any, cast
from uuid import UUID

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Max

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
from auctions.images import MAX_IMAGES_PER_ITEM, PreparedPhoto, photo_prepare
from auctions.models import OPEN_STATUSES, Auction, AuctionStatus, Category, Item, ItemImage
from auctions.notices import closing_notices
from auctions.pricing import increment_tables, increments_table_parse
from auctions.schedule_index import schedule_auction, schedule_remove
from auctions.selectors import db_now
from notifications.services import notices_record

MAX_DURATION = timedelta(days=365)
MAX_EXTENSION_SECONDS = 24 * 3600
MAX_NAME_LENGTH = Item._meta.get_field("name").max_length or 200
MAX_DESCRIPTION_LENGTH = Item._meta.get_field("description").max_length or 10_000


@dataclass(frozen=True, slots=True)
class Upload:
    """An uploaded file: its bytes and their length."""

    file: IO[bytes] | File[bytes]
    size: int


def item_create(
    *, owner: User, name: str, description: str = "", category: Category | None = None
) -> Item:
    name, description = _item_text(name, description)
    return Item.objects.create(owner=owner, name=name, description=description, category=category)


def _item_text(name: object, description: object) -> tuple[str, str]:
    """An item's name and description, checked (ValidationFailed names the field)."""
    name = name.strip() if isinstance(name, str) else ""
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
    return name, description


def category_get(*, slug: object) -> Category:
    """The category with this slug, or ValidationFailed (a client's mistake, not a 404)."""
    category = Category.objects.filter(slug=slug).first() if isinstance(slug, str) else None
    if category is None:
        raise ValidationFailed("There is no such category.", "category")
    return category


@transaction.atomic
def auction_create(
    *,
    creator: User,
    starting_price: object,
    item_id: UUID | None = None,
    item_name: str | None = None,
    item_description: str = "",
    category: Category | None = None,
    reserve_price: object = None,
    min_increment: object = None,
    increments: object = None,
    buy_now_price: object = None,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    duration_seconds: int | None = None,
    extension_seconds: int | None = None,
    photos: Sequence[Upload] = (),
) -> Auction:
    """Put an item up for auction: an existing item of the creator's, or a new one, with
    `photos` added to it first (all or, on any bad file, nothing at all).

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

    prepared = [photo_prepare(upload.file, size=upload.size) for upload in photos]
    stored: list[str] = []
    try:
        item = _item_for_auction(creator, item_id, item_name, item_description, category)
        if prepared:
            _photos_store(Item.objects.select_for_update().get(id=item.id), prepared, stored)
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
        _files_delete(stored)
        if "auction_one_open_per_item" in str(exc):
            raise DomainError(
                Code.ITEM_UNAVAILABLE, "This item already has a pending or active auction."
            ) from exc
        raise
    except BaseException:
        _files_delete(stored)
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
    creator: User,
    item_id: UUID | None,
    item_name: str | None,
    item_description: str,
    category: Category | None,
) -> Item:
    if (item_id is None) == (item_name is None):
        raise ValidationFailed("Give either item_id or a new item's name.", "item")
    if item_id is None:
        return item_create(
            owner=creator, name=item_name or "", description=item_description, category=category
        )
    try:
        item = Item.objects.get(id=item_id)
    except Item.DoesNotExist as exc:
        raise NotFound("item") from exc
    if item.owner_id != creator.id:
        raise PermissionDenied("Only the item's owner can auction it.")
    if category is not None and item.category_id != category.id:
        item.category = category
        item.save(update_fields=["category"])
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
    notices_record(
        closing_notices(
            auction_id=auction.id,
            item_name=auction.item.name,
            seller_id=auction.creator_id,
            winner_id=auction.winner_id,
            final_price=auction.final_price,
            bidder_ids=auction.bids.values_list("bidder_id", flat=True).distinct(),
        ),
        at=now,
        auction_id=auction.id,
    )
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


# --- editing a pending auction (spec §9) --------------------------------------------------

# What an edit may change: the terms, the times and the item's text.
EDITABLE = frozenset(
    {
        "item_name",
        "item_description",
        "category",
        "starting_price",
        "reserve_price",
        "min_increment",
        "increments",
        "buy_now_price",
        "start_time",
        "end_time",
        "extension_seconds",
    }
)


@transaction.atomic
def auction_update(
    *, auction_id: UUID, actor: User, version: int | None, changes: dict[str, object]
) -> Auction:
    """Change a pending auction's terms, times or item text, if it is still as it was at
    `version` (the version the editor was shown). By its creator or staff.

    Refused with `version_conflict` when anything changed the auction meanwhile (a start,
    another editor) and with `not_editable` once it is not pending: nothing is written.
    `version` None edits whatever the version (HTTP's `If-Match: *`). An accepted edit
    bumps the version and emits `auction_updated` with the snapshot fields that changed;
    one that changes nothing writes nothing.
    """
    now = db_now()
    # Each field alone first: a malformed edit is refused whatever the version.
    changes = _parsed_changes(changes, now)
    auction = _auction_for_update(auction_id)
    _check_editable(auction, actor, version)
    before = _snapshot_terms(auction)
    item = Item.objects.select_for_update().get(id=auction.item_id)
    stored_before = (_stored(auction), _stored(item))
    if {"item_name", "item_description"} & set(changes):
        item.name, item.description = _item_text(
            changes.get("item_name", item.name), changes.get("item_description", item.description)
        )
    if "category" in changes:
        item.category = cast(Category | None, changes["category"])
    _apply_terms(auction, changes)
    if (_stored(auction), _stored(item)) == stored_before:
        return auction  # the same terms again: nothing to write, no event, same version
    item.save(update_fields=["name", "description", "category"])
    auction.item = item
    after = _snapshot_terms(auction)
    changed = {key: value for key, value in after.items() if before.get(key) != value}
    event_record(auction=auction, type="auction_updated", at=now, data=changed)
    auction.save()
    schedule_auction(auction)
    return auction


def _stored(row: Auction | Item) -> tuple[object, ...]:
    """Every stored column of a row, to tell whether an edit changed anything."""
    return tuple(getattr(row, field.attname) for field in row._meta.concrete_fields)


def _check_editable(auction: Auction, actor: User, version: int | None) -> None:
    if auction.creator_id != actor.id and not actor.is_staff:
        raise PermissionDenied("Only the auction's seller or staff can edit it.")
    if auction.status != AuctionStatus.PENDING:
        raise DomainError(
            Code.NOT_EDITABLE, "Only a pending auction can be edited; this one has started."
        )
    if version is not None and auction.version != version:
        raise DomainError(
            Code.VERSION_CONFLICT,
            "The auction changed since you opened it (someone else edited it, or it started). "
            "Nothing was saved: reload it and make your changes again.",
            {"version": auction.version},
        )


def _parsed_changes(changes: dict[str, object], now: datetime) -> dict[str, object]:
    """An edit's fields, each checked and parsed on its own (ValidationFailed names it)."""
    unknown = set(changes) - EDITABLE
    if unknown:
        raise ValidationFailed(f"These cannot be edited: {', '.join(sorted(unknown))}.")
    parsed = dict(changes)
    for field in ("starting_price", "reserve_price", "buy_now_price", "min_increment"):
        if field in changes and (changes[field] is not None or field == "starting_price"):
            parsed[field] = _money_field(changes[field], field)
    if changes.get("increments") is not None:
        parsed["increments"] = increments_table_parse(changes["increments"], increment_tables())
    if "extension_seconds" in changes:
        parsed["extension_seconds"] = _extension_field(changes["extension_seconds"])
    if "start_time" in changes:
        start = changes["start_time"]
        if not isinstance(start, datetime) or start.tzinfo is None or start <= now:
            raise ValidationFailed(
                "A pending auction's start_time must be a time in the future.", "start_time"
            )
    if "end_time" in changes:
        end = changes["end_time"]
        if not isinstance(end, datetime) or end.tzinfo is None:
            raise ValidationFailed("end_time needs a time zone (a trailing Z).", "end_time")
    if {"item_name", "item_description"} & set(changes):
        _item_text(changes.get("item_name", "name"), changes.get("item_description", ""))
    if changes.get("category") is not None:
        parsed["category"] = category_get(slug=changes["category"])
    return parsed


def _apply_terms(auction: Auction, changes: dict[str, Any]) -> None:
    """Apply an edit's parsed terms, then check them together, as auction_create does."""
    for field in ("starting_price", "reserve_price", "buy_now_price", "extension_seconds"):
        if field in changes:
            setattr(auction, field, changes[field])
    if "starting_price" in changes:
        auction.current_price = auction.starting_price
    if changes.get("min_increment") is not None:
        auction.min_increment = changes["min_increment"]
        auction.increments = None
    if "increments" in changes:
        auction.increments = changes["increments"]
    if "start_time" in changes:
        auction.start_time = changes["start_time"]
    if "end_time" in changes:
        auction.end_time = changes["end_time"]
    _check_terms(auction)


def _check_terms(auction: Auction) -> None:
    if auction.reserve_price is not None and auction.reserve_price < auction.starting_price:
        raise ValidationFailed(
            "The reserve price cannot be below the starting price.", "reserve_price"
        )
    buy_now = auction.buy_now_price
    if buy_now is not None and (
        buy_now < auction.starting_price
        or (auction.reserve_price is not None and buy_now < auction.reserve_price)
    ):
        raise ValidationFailed(
            "The buy-it-now price must be at least the starting price and the reserve.",
            "buy_now_price",
        )
    if auction.end_time <= auction.start_time:
        raise ValidationFailed("end_time must be after start_time.", "end_time")
    if auction.end_time - auction.start_time > MAX_DURATION:
        raise ValidationFailed("An auction can last at most 365 days.", "end_time")
    cap = timedelta(seconds=settings.AUCTION_MAX_EXTENSION_SECONDS)
    auction.max_end_time = auction.end_time + cap if auction.extension_seconds else auction.end_time


def _snapshot_terms(auction: Auction) -> dict[str, Any]:
    """The snapshot fields an edit can change, as the snapshot shows them."""
    from auctions.selectors import auction_snapshot

    shown = auction_snapshot(auction)
    return {key: value for key, value in shown.items() if key not in ("seq", "highest_bidder")}


# --- photos (spec §9) ---------------------------------------------------------------------


def item_images_add(
    *, item_id: UUID, actor: User, uploads: Sequence[Upload], version: int | None = None
) -> list[ItemImage]:
    """Add photos to an item: all of them, or (on any bad file) none.

    By the item's owner or staff, while the item is in no auction or a pending one (an
    item on sale is read-only); a pending auction's version is checked like an edit's
    when given, bumped, and its subscribers get `auction_updated` with the new `item`.
    """
    if not uploads:
        raise ValidationFailed("Choose at least one photo.", "images")
    prepared = [photo_prepare(upload.file, size=upload.size) for upload in uploads]
    stored: list[str] = []
    try:
        with transaction.atomic():
            item, auction = _item_for_change(item_id, actor, version)
            images = _photos_store(item, prepared, stored)
            _item_photos_changed(auction)
    except BaseException:
        _files_delete(stored)  # nothing stays behind of an upload that was refused
        raise
    return images


def _photos_store(
    item: Item, prepared: Sequence[PreparedPhoto], stored: list[str]
) -> list[ItemImage]:
    """Store the photos' files (their names go into `stored` as they are written, so the
    caller can delete them if the transaction fails) and their rows; the item is locked."""
    count = item.images.count()
    if count + len(prepared) > MAX_IMAGES_PER_ITEM:
        raise ValidationFailed(
            f"An item can have at most {MAX_IMAGES_PER_ITEM} photos; it has {count}.", "images"
        )
    last = item.images.aggregate(last=Max("position"))["last"] or 0
    images = []
    for position, photo in enumerate(prepared, start=last + 1):
        image_id = uuid.uuid4()
        base = f"items/{item.id}/{image_id}"
        display = default_storage.save(f"{base}.{photo.extension}", ContentFile(photo.display))
        stored.append(display)
        thumbnail = default_storage.save(
            f"{base}-thumb.{photo.extension}", ContentFile(photo.thumbnail)
        )
        stored.append(thumbnail)
        images.append(
            ItemImage.objects.create(
                id=image_id,
                item=item,
                position=position,
                image=display,
                thumbnail=thumbnail,
                width=photo.width,
                height=photo.height,
            )
        )
    return images


@transaction.atomic
def item_image_remove(
    *, item_id: UUID, image_id: UUID, actor: User, version: int | None = None
) -> None:
    """Remove one photo (same rules as adding); its files are deleted after commit."""
    item, auction = _item_for_change(item_id, actor, version)
    image = item.images.filter(id=image_id).first()
    if image is None:
        raise NotFound("photo")
    names = [image.image.name, image.thumbnail.name]
    image.delete()
    _item_photos_changed(auction)
    transaction.on_commit(lambda: _files_delete(names))


def _files_delete(names: Sequence[str]) -> None:
    for name in names:
        default_storage.delete(name)


def _item_for_change(
    item_id: UUID, actor: User, version: int | None
) -> tuple[Item, Auction | None]:
    """The item (and its pending auction, if any) locked for a change of its photos."""
    pending = Auction.objects.filter(item_id=item_id, status__in=OPEN_STATUSES).values_list(
        "id", flat=True
    )
    auction_id = pending.first()
    auction = _auction_for_update(auction_id) if auction_id else None
    try:
        item = Item.objects.select_for_update().get(id=item_id)
    except Item.DoesNotExist as exc:
        raise NotFound("item") from exc
    if item.owner_id != actor.id and not actor.is_staff:
        raise PermissionDenied("Only the item's owner can change its photos.")
    if auction is not None:
        if auction.status != AuctionStatus.PENDING:
            raise DomainError(
                Code.NOT_EDITABLE, "The item is on sale: its photos can no longer change."
            )
        if version is not None and auction.version != version:
            raise DomainError(
                Code.VERSION_CONFLICT,
                "The auction changed since you opened it; nothing was saved.",
                {"version": auction.version},
            )
    return item, auction


def _item_photos_changed(auction: Auction | None) -> None:
    if auction is None:
        return
    from auctions.selectors import auction_snapshot

    item = auction_snapshot(Auction.objects.select_related("item").get(id=auction.id))["item"]
    event_record(auction=auction, type="auction_updated", at=db_now(), data={"item": item})
    auction.save(update_fields=["last_seq", "version", "updated_at"])


@transaction.atomic
def auction_edit_apply(
    *,
    auction_id: UUID,
    actor: User,
    version: int,
    changes: dict[str, object],
    photos_added: Sequence[Upload] = (),
    photos_removed: Sequence[UUID] = (),
) -> Auction:
    """An edit form's whole submission (the pages, the admin): the terms and the photos,
    all or nothing, checked against the `version` the form was drawn with."""
    auction = auction_update(auction_id=auction_id, actor=actor, version=version, changes=changes)
    for image_id in photos_removed:
        item_image_remove(item_id=auction.item_id, image_id=image_id, actor=actor)
    if photos_added:
        item_images_add(item_id=auction.item_id, actor=actor, uploads=photos_added)
    return Auction.objects.get(id=auction.id)
