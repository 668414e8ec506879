"""HTTP API for bids (spec §3): place one, and an auction's bid history."""

from typing import Any

from django.http import HttpResponse
from ninja import Field, Query, Router, Schema
from ninja.responses import Status
from pydantic import ConfigDict

from accounts.requests import ApiRequest
from api.base import PageQuery, paginate
from api.schemas import ErrorOut, Money, OptionalAmount, PersonOut, RequestId, Time, any_of_given
from auctions.errors import ValidationFailed
from auctions.formats import iso, money, parse_uuid
from bidding.models import Bid
from bidding.selectors import bid_history, own_bid
from bidding.services import BidAccepted, bid_place, buy_now, check_request_id
from infra.replica import reads_for

router = Router(tags=["auctions"])


class BidIn(Schema):
    """A bid: `amount`, `max_amount` or both (then max_amount is at least amount)."""

    model_config = ConfigDict(json_schema_extra=any_of_given("amount", "max_amount"))

    amount: OptionalAmount = Field(
        None, description="Optional with max_amount: the minimum next bid."
    )
    max_amount: OptionalAmount = Field(
        None, description="Bid for me up to this (spec §7); at least amount. Private to you."
    )
    request_id: RequestId = None


class BuyIn(Schema):
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
    leading: bool = Field(description="Whether you lead after the decision.")
    max_amount: Money = Field(description="Your max (for a straight bid, its amount).")
    bought: bool = Field(description="True when you bought it now (spec §7, buy it now).")


class OwnBidOut(Schema):
    max_amount: Money
    leading: bool
    amount: Money = Field(description="Your highest recorded bid.")


class BidOut(Schema):
    id: str
    amount: Money
    bidder: PersonOut
    auto: bool = Field(description="Placed by the site for the bidder's maximum.")
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
        "auto": bid.auto,
        "created_at": iso(bid.created_at),
        "seq": bid.seq,
    }


_OFFER_RESPONSES: dict[int, Any] = {
    201: BidAcceptedOut,
    400: ErrorOut,
    401: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    409: ErrorOut,
    422: ErrorOut,
    429: ErrorOut,
}


@router.post("/{auction_id}/bids/", response=_OFFER_RESPONSES)
def place_bid(
    request: ApiRequest, auction_id: str, payload: BidIn, response: HttpResponse
) -> Status[dict[str, Any]]:
    """Bid `amount`, or up to `max_amount` (the site bids for you only as much as it takes
    to lead). 201 with the `bid_accepted` data; a rejection is its `bid_rejected` code.

    Rejections: 422 `invalid_amount`, 404 `not_found`, 429 `rate_limited`, 409 for the
    rest (`bid_too_low`, `auction_not_active`, `auction_ended`, `own_auction`,
    `already_highest`), with `data` {`current_price`, `min_next_bid`}.

    Retrying with the same `request_id` creates no second bid and gets the first outcome
    again: the same 201 body (with `Idempotent-Replayed: true`) or the same rejection.
    """
    request_id = _request_id(payload.request_id)
    accepted = bid_place(
        auction_id=parse_uuid(auction_id),
        bidder=request.auth,
        amount=payload.amount,
        max_amount=payload.max_amount,
        request_id=request_id,
    )
    return _accepted(accepted, response)


@router.post("/{auction_id}/buy/", response=_OFFER_RESPONSES)
def buy_auction(
    request: ApiRequest, auction_id: str, response: HttpResponse, payload: BuyIn | None = None
) -> Status[dict[str, Any]]:
    """Buy it now, at its buy-it-now price: 201 like a bid (`bought: true`), and the
    auction ends. 409 `buy_now_unavailable` once it has a bid or without such a price."""
    request_id = _request_id(payload.request_id if payload else None)
    accepted = buy_now(auction_id=parse_uuid(auction_id), buyer=request.auth, request_id=request_id)
    return _accepted(accepted, response)


@router.get("/{auction_id}/my-bid/", response={200: OwnBidOut, 401: ErrorOut, 404: ErrorOut})
def my_bid(request: ApiRequest, auction_id: str) -> dict[str, Any]:
    """Your own max, whether you lead, and your highest bid; 404 if you have not bid."""
    return own_bid(auction_id=parse_uuid(auction_id), bidder=request.auth).as_data()


def _request_id(value: object) -> str | None:
    try:
        return check_request_id(value)
    except ValueError as exc:
        raise ValidationFailed(f"{exc}.", "request_id") from exc


def _accepted(accepted: BidAccepted, response: HttpResponse) -> Status[dict[str, Any]]:
    if accepted.replayed:
        response["Idempotent-Replayed"] = "true"
    body = {"auction_id": str(accepted.auction_id), "request_id": accepted.request_id}
    return Status(201, body | accepted.as_data())


@router.get(
    "/{auction_id}/bids/",
    response={200: BidPage, 400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 422: ErrorOut},
)
def list_bids(request: ApiRequest, auction_id: str, paging: Query[PageQuery]) -> dict[str, Any]:
    """The auction's accepted bids, newest first."""
    bids = bid_history(auction_id=parse_uuid(auction_id)).using(reads_for(request.auth.id))
    return paginate(request, bids, paging=paging, shape=_bid_out)
