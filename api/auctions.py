"""HTTP API for auctions and their events (spec §3): parse, call a service, shape."""

import re
from typing import Annotated, Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError
from ninja.responses import Status
from pydantic import ConfigDict, StrictInt, field_validator

from accounts.requests import ApiRequest
from api.base import MAX_BIGINT, BadQuery, PageQuery, page, paginate
from api.schemas import (
    DESCRIPTION_SCHEMA,
    NAME_SCHEMA,
    WHOLE,
    Amount,
    ErrorOut,
    IncrementTable,
    IsoTime,
    Money,
    OptionalAmount,
    PersonOut,
    PriceFilter,
    Time,
    not_both_given,
    one_of_given,
    optional_not_null,
    seconds_schema,
)
from auctions.events import event_as_message
from auctions.formats import is_storable_text, parse_uuid
from auctions.models import AuctionStatus, Category
from auctions.selectors import auction_get, auction_list, auction_snapshot, event_list
from auctions.services import (
    MAX_DURATION,
    MAX_EXTENSION_SECONDS,
    auction_cancel,
    auction_create,
    auction_update,
    category_get,
)
from infra.presence import viewers_count
from infra.replica import reads_for

router = Router(tags=["auctions"])


class CategoryOut(Schema):
    slug: str
    name: str


class PhotoOut(Schema):
    url: str = Field(description="The display size (at most 1600 px on its longest side).")
    thumbnail_url: str = Field(description="A thumbnail (at most 400 px).")
    width: int
    height: int


class ItemOut(Schema):
    id: str
    name: str
    description: str
    category: CategoryOut | None
    images: list[PhotoOut]


class AuctionOut(Schema):
    id: str
    item: ItemOut
    status: str
    starting_price: Money
    current_price: Money
    min_next_bid: Money
    min_increment: Money = Field(description="The increment at the current price.")
    increments: list[Annotated[list[Money], Field(min_length=2, max_length=2)]] | None = Field(
        description="The increment table as [from_price, increment] pairs; null if fixed."
    )
    buy_now_price: Money | None = Field(
        description="The buy-it-now price while it is offered (an open auction without bids)."
    )
    reserve_met: bool
    bid_count: int
    highest_bidder: PersonOut | None
    start_time: Time
    end_time: Time
    seq: int = Field(description="The latest event's seq, 0 if none.")
    winner: PersonOut | None


class AuctionDetailOut(AuctionOut):
    viewers: int | None = Field(
        description=(
            "WebSocket connections subscribed to it now, on every instance (spec §8); "
            "null when they cannot be counted (Redis is away)."
        )
    )


class AuctionPage(Schema):
    count: int
    next: str | None
    results: list[AuctionOut]


DURATION_SECONDS = int(MAX_DURATION.total_seconds())
# Whole seconds, the range checked by the service (auctions.services) and stated here.
Extension = Annotated[StrictInt | None, WHOLE, seconds_schema(0, MAX_EXTENSION_SECONDS)]
Duration = Annotated[StrictInt | None, WHOLE, seconds_schema(1, DURATION_SECONDS)]


class ItemIn(Schema):
    name: str = Field(json_schema_extra=NAME_SCHEMA)
    description: str = Field("", json_schema_extra=DESCRIPTION_SCHEMA)
    category: str | None = Field(None, description="A category's slug (GET /api/categories/).")


class ItemPatch(Schema):
    # A field this edit does not know is refused (422), not silently left unsaved.
    model_config = ConfigDict(extra="forbid")

    name: str = optional_not_null(**NAME_SCHEMA)
    description: str = optional_not_null(**DESCRIPTION_SCHEMA)
    category: str | None = Field(None, description="A category's slug; null for none.")


class AuctionIn(Schema):
    """A new auction. Rules between fields that JSON Schema cannot state: the reserve is at
    least the starting price; the buy-it-now price at least both; end_time is in the future
    and after start_time, at most 365 days on; an increment table ascends from 0."""

    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                one_of_given("item", "item_id"),
                one_of_given("end_time", "duration_seconds"),
                not_both_given("min_increment", "increments"),
            ]
        }
    )

    item: ItemIn | None = Field(None, description="A new item to sell; or give item_id.")
    item_id: str | None = Field(None, description="An item of yours that is not on sale.")
    starting_price: Amount
    reserve_price: OptionalAmount = None
    min_increment: OptionalAmount = Field(None, description="A fixed increment; default 0.01.")
    increments: IncrementTable = None
    buy_now_price: OptionalAmount = Field(
        None, description="At least the starting price and the reserve, if any."
    )
    start_time: IsoTime | None = Field(None, description="Default now: active at once.")
    end_time: IsoTime | None = Field(None, description="Give end_time or duration_seconds.")
    duration_seconds: Duration = None
    extension_seconds: Extension = Field(None, description="Soft close; 0 = off.")


class EventOut(Schema):
    type: str
    auction_id: str
    seq: int
    timestamp: float = Field(description="When it happened, Unix seconds.")
    data: dict[str, Any]


class EventPage(Schema):
    count: int
    next: str | None
    results: list[EventOut]


class CancelIn(Schema):
    reason: str = Field(
        "", description="Kept to 200 characters; text that cannot be stored gives the default."
    )


class AuctionListQuery(Schema):
    status: AuctionStatus | None = None
    q: str | None = Field(
        None, max_length=200, description="Words in the item's name or description."
    )
    category: str | None = Field(None, max_length=100, description="A category's slug.")
    min_price: PriceFilter = None
    max_price: PriceFilter = None
    ordering: Literal["relevance", "ending", "newest", "price", "-price"] | None = Field(
        None,
        description="Best matches first when searching; else active ending soonest first.",
    )


class EventQuery(Schema):
    since_seq: int = Field(0, ge=0, le=MAX_BIGINT, description="Events with a greater seq.")


@router.get("/", response={200: AuctionPage, 400: ErrorOut, 401: ErrorOut, 422: ErrorOut})
def list_auctions(
    request: ApiRequest, filters: Query[AuctionListQuery], paging: Query[PageQuery]
) -> dict[str, Any]:
    """Auctions: search (`q`), filter (status, category, price range) and order them (spec §9)."""
    if filters.q is not None and not is_storable_text(filters.q):
        raise BadQuery("q: the search text contains characters that cannot be searched.")
    category = None
    if filters.category is not None:
        category = Category.objects.filter(slug=filters.category).first()
        if category is None:
            raise BadQuery(f"category: there is no category {filters.category!r}.")
    rows = auction_list(
        status=filters.status,
        q=(filters.q or "").strip() or None,
        category=category,
        min_price=filters.min_price,
        max_price=filters.max_price,
        ordering=filters.ordering,
    ).using(reads_for(request.auth.id))
    return paginate(request, rows, paging=paging, shape=auction_snapshot)


@router.post(
    "/",
    response={
        201: AuctionOut,
        400: ErrorOut,
        401: ErrorOut,
        403: ErrorOut,
        404: ErrorOut,
        409: ErrorOut,
        422: ErrorOut,
    },
)
def create_auction(request: ApiRequest, payload: AuctionIn) -> Status[dict[str, Any]]:
    """Put a new item, or one of yours (`item_id`), up for auction."""
    category = payload.item.category if payload.item else None
    auction = auction_create(
        creator=request.auth,
        category=None if category is None else category_get(slug=category),
        item_id=None if payload.item_id is None else parse_uuid(payload.item_id, "item"),
        item_name=payload.item.name if payload.item else None,
        item_description=payload.item.description if payload.item else "",
        starting_price=payload.starting_price,
        reserve_price=payload.reserve_price,
        min_increment=payload.min_increment,
        increments=payload.increments,
        buy_now_price=payload.buy_now_price,
        start_time=payload.start_time,
        end_time=payload.end_time,
        duration_seconds=payload.duration_seconds,
        extension_seconds=payload.extension_seconds,
    )
    return Status(201, auction_snapshot(auction))


@router.get("/{auction_id}/", response={200: AuctionDetailOut, 401: ErrorOut, 404: ErrorOut})
def get_auction(request: HttpRequest, auction_id: str, response: HttpResponse) -> dict[str, Any]:
    """The auction's snapshot, as `subscribed.data` on the WebSocket.

    `ETag` carries its version: send it back as `If-Match` to edit it (PATCH).
    """
    auction = auction_get(auction_id=parse_uuid(auction_id))
    response["ETag"] = _etag(auction.version)
    return {**auction_snapshot(auction), "viewers": viewers_count(str(auction.id))}


class AuctionPatch(Schema):
    """The terms a pending auction's seller (or staff) may change; give only those to change."""

    model_config = ConfigDict(extra="forbid")

    item: ItemPatch | None = None
    starting_price: Amount = None
    reserve_price: OptionalAmount = Field(None, description="null removes the reserve.")
    min_increment: OptionalAmount = None
    increments: IncrementTable = None
    buy_now_price: OptionalAmount = Field(None, description="null takes buy it now away.")
    start_time: IsoTime = optional_not_null("In the future.")
    end_time: IsoTime = optional_not_null()
    extension_seconds: Extension = None

    @field_validator("item", mode="before")
    @classmethod
    def _item_is_an_object(cls, value: object) -> object:
        # Ninja would read any other value's (missing) attributes as an empty change.
        if value is not None and not isinstance(value, dict):
            raise ValueError('must be an object, e.g. {"name": "Brass lamp"}')
        return value


@router.patch(
    "/{auction_id}/",
    response={
        200: AuctionOut,
        400: ErrorOut,
        401: ErrorOut,
        403: ErrorOut,
        404: ErrorOut,
        409: ErrorOut,
        412: ErrorOut,
        422: ErrorOut,
        428: ErrorOut,
    },
    openapi_extra={
        "parameters": [
            {
                "in": "header",
                "name": "If-Match",
                "required": True,
                "description": 'The ETag of your last GET of this auction (e.g. "3"), or *. '
                "Any other value names no version of it: 412.",
                "schema": {"type": "string"},
            }
        ]
    },
)
def edit_auction(
    request: ApiRequest, auction_id: str, payload: AuctionPatch, response: HttpResponse
) -> dict[str, Any]:
    """Edit a pending auction (seller or staff), if it is as you last read it (spec §9).

    Send the `ETag` of your last GET as `If-Match`: 412 `version_conflict` when the auction
    changed since (nothing is written), 428 without it, 409 `not_editable` once it is not
    pending. Subscribers get `auction_updated` with the fields that changed.
    """
    version = _if_match(request)
    changes = _changes(payload)
    auction = auction_update(
        auction_id=parse_uuid(auction_id), actor=request.auth, version=version, changes=changes
    )
    response["ETag"] = _etag(auction.version)
    return auction_snapshot(auction_get(auction_id=auction.id))


NO_VERSION = -1


def _etag(version: int) -> str:
    return f'"{version}"'


def _if_match(request: HttpRequest) -> int | None:
    """The version If-Match names; None for `*` (any version: RFC 9110 §13.1.1), and -1,
    which no auction has, for a value naming none (the service checks the body first)."""
    header = request.headers.get("If-Match")
    if header is None:
        raise HttpError(428, "Send the ETag of your last GET of this auction as If-Match.")
    if header.strip() == "*":
        return None
    match = re.fullmatch(r'\s*(?:W/)?"(\d{1,19})"\s*', header)
    return int(match.group(1)) if match else NO_VERSION


def _changes(payload: AuctionPatch) -> dict[str, object]:
    given = payload.model_dump(exclude_unset=True)
    item = given.pop("item", None) or {}
    changes: dict[str, object] = {
        f"item_{key}": value for key, value in item.items() if key != "category"
    }
    if "category" in item:
        changes["category"] = item["category"]
    changes.update(given)
    return changes


@router.get(
    "/{auction_id}/events/",
    response={200: EventPage, 400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 422: ErrorOut},
)
def list_events(
    request: HttpRequest, auction_id: str, filters: Query[EventQuery], paging: Query[PageQuery]
) -> dict[str, Any]:
    """Stored events with `seq > since_seq`, in seq order, as the WebSocket sends them."""
    auction_uuid = parse_uuid(auction_id)
    after = min(filters.since_seq + paging.offset, MAX_BIGINT)
    events = event_list(auction_id=auction_uuid, since_seq=after, limit=paging.limit)
    # Read after the events, so the count covers at least them. Seqs run 1..last_seq with
    # no gaps, so the events after since_seq number last_seq - since_seq.
    auction = auction_get(auction_id=auction_uuid)
    return page(
        request,
        paging=paging,
        count=max(auction.last_seq - filters.since_seq, 0),
        results=[event_as_message(event) for event in events],
    )


@router.post(
    "/{auction_id}/cancel/",
    response={
        200: AuctionOut,
        400: ErrorOut,
        401: ErrorOut,
        403: ErrorOut,
        404: ErrorOut,
        409: ErrorOut,
        422: ErrorOut,
    },
)
def cancel_auction(
    request: ApiRequest, auction_id: str, payload: CancelIn | None = None
) -> dict[str, Any]:
    """Cancel: by its creator or staff, while pending, or active without bids."""
    auction = auction_cancel(
        auction_id=parse_uuid(auction_id),
        actor=request.auth,
        reason=payload.reason if payload else "",
    )
    return auction_snapshot(auction)
