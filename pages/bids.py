"""Bid pages: placing a bid from the auction page's form (no JavaScript needed), and "my bids"."""

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
from bidding.services import bid_place, check_request_id


@login_required
@require_POST
def bid_create(request: SignedInRequest, auction_id: UUID) -> HttpResponse:
    """The auction page's bid form: place the bid and go back to the page with the outcome."""
    try:
        # The form carries a request id minted when the page was drawn: submitting it twice
        # (a double click, a resent POST) places one bid.
        request_id = check_request_id(request.POST.get("request_id") or None)
    except ValueError:
        request_id = None
    try:
        accepted = bid_place(
            auction_id=auction_id,
            bidder=request.user,
            amount=request.POST.get("amount", ""),
            request_id=request_id,
        )
    except DomainError as rejected:  # BidRejected, or NotFound for a deleted auction
        messages.error(request, rejection_text(rejected.code, rejected.data))
    else:
        messages.success(
            request, f"Your bid of {accepted.as_data()['amount']} is the highest bid now."
        )
    return redirect("auctions:detail", auction_id=auction_id)


@login_required
def my_bids(request: SignedInRequest) -> HttpResponse:
    return render(request, "bidding/my_bids.html", {"rows": bid_standings(user=request.user)})
