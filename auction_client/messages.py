"""What the application receives: events, notifications, viewer counts, bid results."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    """An auction event (bid_placed, auction_extended, auction_started, auction_ended,
    auction_cancelled, auction_updated, …): each seq of each followed auction once, in order.

    `timestamp` is when it happened (server time, Unix seconds), also for a replayed one.
    """

    type: str
    auction_id: str
    seq: int
    timestamp: float
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Notification:
    """One of the user's notifications (outbid, ending_soon, won, lost, sold, not_sold):
    each seq of the user once, in order. `data` has item_name, price, url and more."""

    seq: int
    kind: str
    auction_id: str
    created_at: str
    timestamp: float
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Viewers:
    """How many connections follow the auction now (presence: no seq, never replayed)."""

    auction_id: str
    count: int
    timestamp: float


ServerMessage = Event | Notification | Viewers


def _decimal(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


@dataclass(frozen=True, slots=True)
class BidResult:
    """`bid_accepted`: the auction's state right after the whole decision (automatic bids
    included). `amount` and `bid_id` are the bidder's own highest recorded bid; `leading`
    says whether they lead now (false when someone's maximum bid beat it at once)."""

    auction_id: str
    request_id: str
    bid_id: str
    amount: Decimal
    seq: int
    current_price: Decimal
    min_next_bid: Decimal
    end_time: datetime
    leading: bool
    max_amount: Decimal | None
    bought: bool
    data: dict[str, Any]  # as the server sent it

    @classmethod
    def from_reply(cls, reply: dict[str, Any]) -> "BidResult":
        data: dict[str, Any] = reply["data"]
        return cls(
            auction_id=str(reply["auction_id"]),
            request_id=str(reply["request_id"]),
            bid_id=str(data["bid_id"]),
            amount=Decimal(str(data["amount"])),
            seq=int(data["seq"]),
            current_price=Decimal(str(data["current_price"])),
            min_next_bid=Decimal(str(data["min_next_bid"])),
            end_time=datetime.fromisoformat(str(data["end_time"])),
            leading=bool(data.get("leading", True)),
            max_amount=_decimal(data.get("max_amount")),
            bought=bool(data.get("bought", False)),
            data=data,
        )
