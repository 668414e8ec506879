"""HTTP API for bids (spec §3): place one, and an auction's bid history."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema
from ninja.responses import Status

from accounts.requests import ApiRequest
from api.base import PageQuery, paginate
from api.schemas import Amount, ErrorOut, Money, PersonOut, RequestId, Time
from auctions.errors import ValidationFailed
from auctions.formats import iso, money, parse_uuid
from bidding.models import Bid
from bidding.selectors import bid_history
from bidding.services import bid_place, check_request_id

router = Router(tags=["auctions"])


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


def _bid_out(bid: Bid) -> dict[str, Any]:
    return {
        "id": str(bid.id),
        "amount": money(bid.amount),
        "bidder": bid.bidder.as_person(),
        "created_at": iso(bid.created_at),
        "seq": bid.seq,
    }


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
    request: ApiRequest, auction_id: str, payload: BidIn, response: HttpResponse
) -> Status[dict[str, Any]]:
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
        auction_id=parse_uuid(auction_id),
        bidder=request.auth,
        amount=payload.amount,
        request_id=request_id,
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
    bids = bid_history(auction_id=parse_uuid(auction_id))
    return paginate(request, bids, paging=paging, shape=_bid_out)
