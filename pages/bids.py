"""Bid pages: the auction page's bid and buy-it-now forms (no JavaScript needed), and "my bids"."""

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.requests import SignedInRequest
from auctions.errors import DomainError
from bidding.rejections import rejection_text
from bidding.selectors import bid_standings
from bidding.services import bid_place, buy_now, check_request_id


@login_required
@require_POST
def bid_create(request: SignedInRequest, auction_id: UUID) -> HttpResponse:
    """The auction page's bid form: an amount, and optionally a maximum ("bid up to")."""
    amount = request.POST.get("amount", "").strip() or None
    max_amount = request.POST.get("max_amount", "").strip() or None
    try:
        accepted = bid_place(
            auction_id=auction_id,
            bidder=request.user,
            # With a maximum, an empty amount bids the minimum next bid.
            amount=amount if amount is not None or max_amount is not None else "",
            max_amount=max_amount,
            request_id=_form_request_id(request),
        )
    except DomainError as rejected:  # BidRejected, or NotFound for a deleted auction
        messages.error(request, rejection_text(rejected.code, rejected.data))
    else:
        messages.success(request, accepted_text(accepted.as_data()))
    return redirect("auctions:detail", auction_id=auction_id)


@login_required
@require_POST
def buy_now_create(request: SignedInRequest, auction_id: UUID) -> HttpResponse:
    """The auction page's buy-it-now button."""
    try:
        accepted = buy_now(
            auction_id=auction_id, buyer=request.user, request_id=_form_request_id(request)
        )
    except DomainError as rejected:
        messages.error(request, rejection_text(rejected.code, rejected.data))
    else:
        messages.success(request, f"You bought it for {accepted.as_data()['amount']}.")
    return redirect("auctions:detail", auction_id=auction_id)


def accepted_text(data: dict[str, Any]) -> str:
    """What a bidder is told of an accepted bid (auction.js says the same)."""
    if not data["leading"]:
        return (
            f"Your bid of {data['amount']} was placed, but another bidder's maximum is higher: "
            f"the price is now {data['current_price']}."
        )
    if data["max_amount"] != data["amount"]:
        return (
            f"You are the highest bidder at {data['current_price']}; "
            f"we will bid for you up to {data['max_amount']}."
        )
    return f"Your bid of {data['amount']} is the highest bid now."


def _form_request_id(request: SignedInRequest) -> str | None:
    # The form carries a request id minted when the page was drawn: submitting it twice
    # (a double click, a resent POST) places one bid.
    try:
        return check_request_id(request.POST.get("request_id") or None)
    except ValueError:
        return None


@login_required
def my_bids(request: SignedInRequest) -> HttpResponse:
    return render(request, "bidding/my_bids.html", {"rows": bid_standings(user=request.user)})
