"""What the client raises."""

from decimal import Decimal
from typing import Any


class AuctionClientError(Exception):
    """The base of every error this library raises."""


class ServerError(AuctionClientError):
    """The server answered `{"type": "error", "code", "message"}` (malformed input, not_found,
    too_many_subscriptions, ...)."""

    def __init__(self, code: str, message: str, request_id: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.request_id = request_id


class BidRejected(AuctionClientError):
    """`bid_rejected`: the bid (or buy it now) was not accepted.

    `code` is one of bid_too_low, auction_not_active, auction_ended, own_auction,
    already_highest, invalid_amount, not_found, rate_limited, buy_now_unavailable; `data`
    holds `current_price` and `min_next_bid` where the server knows them.
    """

    def __init__(
        self,
        code: str,
        message: str,
        data: dict[str, Any],
        *,
        auction_id: str,
        request_id: str,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data
        self.auction_id = auction_id
        self.request_id = request_id

    @property
    def current_price(self) -> Decimal | None:
        value = self.data.get("current_price")
        return None if value is None else Decimal(value)

    @property
    def min_next_bid(self) -> Decimal | None:
        value = self.data.get("min_next_bid")
        return None if value is None else Decimal(value)


class AuthenticationFailed(AuctionClientError):
    """The server closed the connection with 4401: no valid identity (a bad or revoked token).

    Not retried: reconnecting with the same token would be refused again.
    """


class RequestTimeout(AuctionClientError, TimeoutError):
    """No answer in time, across reconnects. For a bid the outcome is unknown: send it again
    with the same `request_id` (the server then answers from the stored outcome, or decides
    it if it never got it), never with a new one."""

    def __init__(self, request_id: str, what: str) -> None:
        super().__init__(f"no answer to {what} (request_id {request_id}) in time")
        self.request_id = request_id


class ClientClosed(AuctionClientError):
    """The client was closed (or never connected) while this was waiting."""


class ConnectionLost(AuctionClientError):
    """The connection dropped before the answer came; the client reconnects by itself.

    Raised only for requests that are not worth repeating on the next connection (a `ping`,
    an `unsubscribe`); bids and subscriptions are carried over.
    """
