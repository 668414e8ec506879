"""Client messages of the WebSocket API (spec §2): parsed and checked, or a ProtocolError."""

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from auctions.errors import Code
from auctions.formats import parse_json
from bidding.services import check_request_id

# Fields each message type must or may carry, besides `type` and `request_id`.
MESSAGE_TYPES = frozenset(
    {"subscribe", "unsubscribe", "place_bid", "buy_now", "ping", "notifications"}
)
_MISSING = object()


class ProtocolError(Exception):
    """A malformed message: answered with `{"type": "error", "code", "message"}`."""

    def __init__(self, code: Code, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientMessage:
    type: str
    request_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AuctionMessage(ClientMessage):
    """`unsubscribe`, and the base of every message about one auction."""

    auction_id: UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscribe(AuctionMessage):
    since_seq: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaceBid(AuctionMessage):
    # The amounts exactly as sent (a Decimal, int, str, …, or None when absent); the bid
    # service judges them, so a bad one is a rejected bid (`invalid_amount`), not bad input.
    amount: object = None
    max_amount: object = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Notifications(ClientMessage):
    """Replay the connection's user's notifications after `since_seq` (spec §8)."""

    since_seq: int


def parse_client_message(text: str) -> ClientMessage:
    try:
        body = parse_json(text)
    except ValueError as exc:
        raise ProtocolError(Code.INVALID_JSON, "The message is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise ProtocolError(Code.INVALID_MESSAGE, "A message must be a JSON object.")
    request_id = _request_id(body)
    kind = body.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(Code.INVALID_MESSAGE, "The message needs a string `type`.", request_id)
    if kind not in MESSAGE_TYPES:
        raise ProtocolError(
            Code.UNKNOWN_TYPE,
            f"Unknown message type; use one of {', '.join(sorted(MESSAGE_TYPES))}.",
            request_id,
        )
    if kind == "ping":
        return ClientMessage(type=kind, request_id=request_id)
    if kind == "notifications":
        since_seq = _since_seq(body, request_id)
        if since_seq is None:
            raise ProtocolError(
                Code.INVALID_MESSAGE, "`since_seq` must be a whole number, 0 or more.", request_id
            )
        return Notifications(type=kind, request_id=request_id, since_seq=since_seq)
    auction_id = _auction_id(body, request_id)
    if kind == "subscribe":
        return Subscribe(
            type=kind,
            request_id=request_id,
            auction_id=auction_id,
            since_seq=_since_seq(body, request_id),
        )
    if kind == "place_bid":
        return PlaceBid(
            type=kind,
            request_id=request_id,
            auction_id=auction_id,
            amount=body.get("amount"),
            max_amount=body.get("max_amount"),
        )
    return AuctionMessage(type=kind, request_id=request_id, auction_id=auction_id)


def _request_id(body: dict[str, Any]) -> str | None:
    try:
        return check_request_id(body.get("request_id"))
    except ValueError as exc:
        raise ProtocolError(
            Code.INVALID_MESSAGE, "`request_id` must be a string of at most 64 characters."
        ) from exc


def _auction_id(body: dict[str, Any], request_id: str | None) -> UUID:
    value = body.get("auction_id", _MISSING)
    if not isinstance(value, str):
        raise ProtocolError(
            Code.INVALID_MESSAGE, "`auction_id` must be an auction's UUID, as a string.", request_id
        )
    try:
        return UUID(value)
    except ValueError as exc:
        raise ProtocolError(
            Code.INVALID_MESSAGE, "`auction_id` is not a valid UUID.", request_id
        ) from exc


def _since_seq(body: dict[str, Any], request_id: str | None) -> int | None:
    value: object = body.get("since_seq")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise ProtocolError(
            Code.INVALID_MESSAGE, "`since_seq` must be a whole number, 0 or more.", request_id
        )
    return value
