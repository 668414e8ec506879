"""Why a bid was refused, in words: the one table every interface shows.

The WebSocket and HTTP APIs send these as a rejection's `message`; the pages (and
auction.js, which gets the table in the page) show them to the bidder. `{min_next_bid}`
and `{current_price}` are filled in from the rejection's data.
"""

from typing import Any

from auctions.errors import Code

# Keyed by code; a Code is also its own string, so either looks a sentence up.
REJECTION_TEXT: dict[str, str] = {
    Code.BID_TOO_LOW: "Your bid is too low: the next bid must be at least {min_next_bid}.",
    Code.AUCTION_NOT_ACTIVE: "This auction is not open for bids.",
    Code.AUCTION_ENDED: "Sorry, this auction has already ended.",
    Code.OWN_AUCTION: "You cannot bid on your own auction.",
    Code.ALREADY_HIGHEST: "You are already the highest bidder.",
    Code.INVALID_AMOUNT: "Please enter an amount such as 150 or 150.10 (at most 2 decimals).",
    Code.NOT_FOUND: "This auction does not exist.",
    Code.RATE_LIMITED: "You are bidding too fast. Wait a moment and try again.",
    Code.BUY_NOW_UNAVAILABLE: (
        "Buy it now is not available: an auction offers it only with a buy-it-now price, "
        "until its first bid."
    ),
}


def rejection_text(code: str, data: dict[str, Any]) -> str:
    """The sentence a bidder sees for a rejected bid."""
    text = REJECTION_TEXT.get(code, "Your bid was not accepted.")
    for key in ("min_next_bid", "current_price"):
        text = text.replace("{" + key + "}", str(data.get(key) or ""))
    return text
