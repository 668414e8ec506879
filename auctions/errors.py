"""Error codes shared by the services, the HTTP API and the WebSocket API (spec §2, §3)."""

from enum import StrEnum
from typing import Any


class Code(StrEnum):
    # Bid rejections (spec §2, `bid_rejected.code`).
    BID_TOO_LOW = "bid_too_low"
    AUCTION_NOT_ACTIVE = "auction_not_active"
    AUCTION_ENDED = "auction_ended"
    OWN_AUCTION = "own_auction"
    ALREADY_HIGHEST = "already_highest"
    INVALID_AMOUNT = "invalid_amount"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    BUY_NOW_UNAVAILABLE = "buy_now_unavailable"
    # Malformed WebSocket messages (spec §2 "Bad input").
    INVALID_JSON = "invalid_json"
    INVALID_MESSAGE = "invalid_message"
    UNKNOWN_TYPE = "unknown_type"
    TOO_MANY_SUBSCRIPTIONS = "too_many_subscriptions"
    # Everything else the services and the HTTP API answer.
    VALIDATION_ERROR = "validation_error"
    ITEM_UNAVAILABLE = "item_unavailable"
    NOT_CANCELLABLE = "not_cancellable"
    # Editing (spec §9): the auction is no longer pending, or changed since it was read.
    NOT_EDITABLE = "not_editable"
    VERSION_CONFLICT = "version_conflict"
    NOT_AUTHENTICATED = "not_authenticated"
    PERMISSION_DENIED = "permission_denied"
    # The database cannot be reached (a restart, a failover): nothing was decided that the
    # client can rely on; the same request again (a bid with its request_id) is safe.
    UNAVAILABLE = "unavailable"
    # A fault of ours, not the client's; as with `unavailable`, the same request is safe.
    INTERNAL_ERROR = "internal_error"


BID_REJECTION_CODES = frozenset(
    {
        Code.BID_TOO_LOW,
        Code.AUCTION_NOT_ACTIVE,
        Code.AUCTION_ENDED,
        Code.OWN_AUCTION,
        Code.ALREADY_HIGHEST,
        Code.INVALID_AMOUNT,
        Code.NOT_FOUND,
        Code.RATE_LIMITED,
        Code.BUY_NOW_UNAVAILABLE,
    }
)


class DomainError(Exception):
    """A rule said no. `code` is one of `Code`; `data` carries what the client may show."""

    def __init__(self, code: Code, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data or {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!s}, {self.message!r})"


class BidRejected(DomainError):
    """A bid was not accepted; `data` holds `current_price` and `min_next_bid` where known."""


class InvalidAmount(BidRejected):
    def __init__(self, message: str) -> None:
        super().__init__(Code.INVALID_AMOUNT, message)


class NotFound(DomainError):
    def __init__(self, what: str = "auction") -> None:
        super().__init__(Code.NOT_FOUND, f"No such {what}.")


class PermissionDenied(DomainError):
    def __init__(self, message: str) -> None:
        super().__init__(Code.PERMISSION_DENIED, message)


class ValidationFailed(DomainError):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(Code.VALIDATION_ERROR, message, {"field": field} if field else None)
