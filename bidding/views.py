"""Bid pages: placing a bid from the auction page's form (no JavaScript needed), and "my bids"."""

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from auctions.errors import Code, DomainError
from bidding.selectors import bid_standings
from bidding.services import bid_place, check_request_id

# Every bid rejection in plain words: the one place pages (and auction.js, which gets this
# table in the page) turn a code into a sentence. `{min_next_bid}` and `{current_price}`
# are filled in from the rejection's data.
BID_REJECTION_TEXT: dict[str, str] = {
    Code.BID_TOO_LOW: "Your bid is too low: the next bid must be at least {min_next_bid}.",
    Code.AUCTION_NOT_ACTIVE: "This auction is not open for bids.",
    Code.AUCTION_ENDED: "Sorry, this auction has already ended.",
    Code.OWN_AUCTION: "You cannot bid on your own auction.",
    Code.ALREADY_HIGHEST: "You are already the highest bidder.",
    Code.INVALID_AMOUNT: "Please enter an amount such as 150 or 150.10 (at most 2 decimals).",
    Code.NOT_FOUND: "This auction does not exist.",
    Code.RATE_LIMITED: "You are bidding too fast. Wait a moment and try again.",
}


def bid_rejection_text(code: str, data: dict[str, Any]) -> str:
    """The sentence a bidder sees for a rejected bid."""
    text = BID_REJECTION_TEXT.get(code, "Your bid was not accepted.")
    for key in ("min_next_bid", "current_price"):
        text = text.replace("{" + key + "}", str(data.get(key) or ""))
    return text


@login_required
@require_POST
def bid_create(request: HttpRequest, auction_id: UUID) -> HttpResponse:
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
        messages.error(request, bid_rejection_text(rejected.code, rejected.data))
    else:
        messages.success(
            request, f"Your bid of {accepted.as_data()['amount']} is the highest bid now."
        )
    return redirect("auctions:detail", auction_id=auction_id)


@login_required
def my_bids(request: HttpRequest) -> HttpResponse:
    return render(request, "bidding/my_bids.html", {"rows": bid_standings(user=request.user)})
