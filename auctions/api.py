"""HTTP API for auctions, their bids and events (spec §3): parse, call a service, shape."""

from typing import Annotated, Any

from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema
from ninja.responses import Status
from pydantic import AwareDatetime, BeforeValidator, StrictInt, WithJsonSchema

from auction_site.api import MAX_BIGINT, PageQuery, page, paginate
from auctions.errors import ValidationFailed
from auctions.events import event_as_message
from auctions.formats import iso, money
from auctions.models import AuctionStatus
from auctions.selectors import auction_get, auction_list, auction_snapshot, event_list, parse_uuid
from auctions.services import auction_cancel, auction_create
from bidding.models import Bid
from bidding.selectors import bid_history
from bidding.services import bid_place, check_request_id

router = Router(tags=["auctions"])

# Amounts reach the services untouched (a Decimal from the JSON parser, or a string):
# `Any` keeps pydantic from coercing them through float; the services validate them.
Amount = Annotated[
    Any,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\d+(\.\d{1,2})?$"},
                {"type": "number"},
            ],
            "description": "Money: > 0, at most 2 decimals, at most 9999999999.99. "
            'A JSON number (parsed exactly) or a numeric string such as "150.10".',
            "examples": ["150.10"],
        }
    ),
]
Money = Annotated[str, Field(examples=["150.10"], pattern=r"^\d+\.\d{2}$")]
Time = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
RequestId = Annotated[
    Any,
    WithJsonSchema({"type": "string", "maxLength": 64, "description": "Idempotency key."}),
]


def _text_only(value: Any) -> Any:
    # Pydantic would also read numbers as Unix times; the contract says ISO 8601.
    if value is not None and not isinstance(value, str):
        raise ValueError("must be an ISO 8601 string, e.g. 2026-11-24T10:00:00Z")
    return value


IsoTime = Annotated[AwareDatetime, BeforeValidator(_text_only)]


class ErrorOut(Schema):
    code: str
    message: str
    data: dict[str, Any] | None = None


class PersonOut(Schema):
    id: str
    name: str


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
    min_increment: Money
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
    min_increment: Amount = Field(None, description="Default 0.01.")
    start_time: IsoTime | None = Field(None, description="Default now: active at once.")
    end_time: IsoTime | None = Field(None, description="Give end_time or duration_seconds.")
    duration_seconds: StrictInt | None = None
    extension_seconds: StrictInt | None = Field(None, description="Soft close; 0 = off.")


class BidIn(Schema):
    amount: Amount = None
    request_id: RequestId = None


class BidAcceptedOut(Schema):
    auction_id: str
    request_id: str | None
    bid_id: str
    amount: Money
    seq: int
    current_price: Money
    min_next_bid: Money
    end_time: Time


class BidOut(Schema):
    id: str
    amount: Money
    bidder: PersonOut
    created_at: Time
    seq: int


class BidPage(Schema):
    count: int
    next: str | None
    results: list[BidOut]


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


def _bid_out(bid: Bid) -> dict[str, Any]:
    return {
        "id": str(bid.id),
        "amount": money(bid.amount),
        "bidder": bid.bidder.as_person(),
        "created_at": iso(bid.created_at),
        "seq": bid.seq,
    }


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
def create_auction(request: HttpRequest, payload: AuctionIn) -> Status:
    """Put a new item, or one of yours (`item_id`), up for auction."""
    auction = auction_create(
        creator=request.auth,
        item_id=payload.item_id,
        item_name=payload.item.name if payload.item else None,
        item_description=payload.item.description if payload.item else "",
        starting_price=payload.starting_price,
        reserve_price=payload.reserve_price,
        min_increment=payload.min_increment,
        start_time=payload.start_time,
        end_time=payload.end_time,
        duration_seconds=payload.duration_seconds,
        extension_seconds=payload.extension_seconds,
    )
    return Status(201, auction_snapshot(auction))


@router.get("/{auction_id}/", response={200: AuctionOut, 401: ErrorOut, 404: ErrorOut})
def get_auction(request: HttpRequest, auction_id: str) -> dict[str, Any]:
    """The auction's snapshot, as `subscribed.data` on the WebSocket."""
    return auction_snapshot(auction_get(auction_id=auction_id))


@router.post(
    "/{auction_id}/bids/",
    response={
        201: BidAcceptedOut,
        400: ErrorOut,
        401: ErrorOut,
        403: ErrorOut,
        404: ErrorOut,
        409: ErrorOut,
        422: ErrorOut,
        429: ErrorOut,
    },
)
def place_bid(
    request: HttpRequest, auction_id: str, payload: BidIn, response: HttpResponse
) -> Status:
    """Bid. 201 with the `bid_accepted` data; a rejection is its `bid_rejected` code.

    Rejections: 422 `invalid_amount`, 404 `not_found`, 429 `rate_limited`, 409 for the
    rest (`bid_too_low`, `auction_not_active`, `auction_ended`, `own_auction`,
    `already_highest`), with `data` {`current_price`, `min_next_bid`}.

    Retrying with the same `request_id` creates no second bid and gets the first outcome
    again: the same 201 body (with `Idempotent-Replayed: true`) or the same rejection.
    """
    try:
        request_id = check_request_id(payload.request_id)
    except ValueError as exc:
        raise ValidationFailed(f"{exc}.", "request_id") from exc
    accepted = bid_place(
        auction_id=auction_id, bidder=request.auth, amount=payload.amount, request_id=request_id
    )
    if accepted.replayed:
        response["Idempotent-Replayed"] = "true"
    body = {"auction_id": str(accepted.auction_id), "request_id": accepted.request_id}
    return Status(201, body | accepted.as_data())


@router.get(
    "/{auction_id}/bids/", response={200: BidPage, 401: ErrorOut, 404: ErrorOut, 422: ErrorOut}
)
def list_bids(request: HttpRequest, auction_id: str, paging: Query[PageQuery]) -> dict[str, Any]:
    """The auction's accepted bids, newest first."""
    return paginate(request, bid_history(auction_id=auction_id), paging=paging, shape=_bid_out)


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
    request: HttpRequest, auction_id: str, payload: CancelIn | None = None
) -> dict[str, Any]:
    """Cancel: by its creator or staff, while pending, or active without bids."""
    auction = auction_cancel(
        auction_id=auction_id, actor=request.auth, reason=payload.reason if payload else ""
    )
    return auction_snapshot(auction)
