"""HTTP API for auctions and their events (spec §3): parse, call a service, shape."""

from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.responses import Status
from pydantic import StrictInt

from accounts.requests import ApiRequest
from api.base import MAX_BIGINT, PageQuery, page, paginate
from api.schemas import Amount, ErrorOut, IncrementTable, IsoTime, Money, PersonOut, Time
from auctions.events import event_as_message
from auctions.formats import parse_uuid
from auctions.models import AuctionStatus
from auctions.selectors import auction_get, auction_list, auction_snapshot, event_list
from auctions.services import auction_cancel, auction_create

router = Router(tags=["auctions"])


class ItemOut(Schema):
    id: str
    name: str
    description: str


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


class AuctionPage(Schema):
    count: int
    next: str | None
    results: list[AuctionOut]


class ItemIn(Schema):
    name: str
    description: str = ""


class AuctionIn(Schema):
    item: ItemIn | None = Field(None, description="A new item to sell; or give item_id.")
    item_id: str | None = Field(None, description="An item of yours that is not on sale.")
    starting_price: Amount
    reserve_price: Amount = None
    min_increment: Amount = Field(None, description="A fixed increment; default 0.01.")
    increments: IncrementTable = None
    buy_now_price: Amount = Field(
        None, description="At least the starting price and the reserve, if any."
    )
    start_time: IsoTime | None = Field(None, description="Default now: active at once.")
    end_time: IsoTime | None = Field(None, description="Give end_time or duration_seconds.")
    duration_seconds: StrictInt | None = None
    extension_seconds: StrictInt | None = Field(None, description="Soft close; 0 = off.")


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
    reason: str = ""


class AuctionListQuery(Schema):
    status: AuctionStatus | None = None


class EventQuery(Schema):
    since_seq: int = Field(0, ge=0, le=MAX_BIGINT, description="Events with a greater seq.")


@router.get("/", response={200: AuctionPage, 401: ErrorOut, 422: ErrorOut})
def list_auctions(
    request: HttpRequest, filters: Query[AuctionListQuery], paging: Query[PageQuery]
) -> dict[str, Any]:
    """Auctions, optionally of one status: active ones ending soonest first."""
    rows = auction_list(status=filters.status)
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
    auction = auction_create(
        creator=request.auth,
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


@router.get("/{auction_id}/", response={200: AuctionOut, 401: ErrorOut, 404: ErrorOut})
def get_auction(request: HttpRequest, auction_id: str) -> dict[str, Any]:
    """The auction's snapshot, as `subscribed.data` on the WebSocket."""
    return auction_snapshot(auction_get(auction_id=parse_uuid(auction_id)))


@router.get(
    "/{auction_id}/events/", response={200: EventPage, 401: ErrorOut, 404: ErrorOut, 422: ErrorOut}
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
