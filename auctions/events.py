"""The outbox: auction events, shaped in one place and stored in the change's own transaction.

Every event's `data` is built by one of the `*_data` functions here, and every event row
is written by `events_insert`, whichever service causes it. Once the transaction commits
the events are handed to the publisher that delivery registered (`events_publisher_set`,
an `infra.outbox.Outbox`). A publish that fails or never happens is made good by the
sweep, which reads the same rows.
"""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from auctions.formats import iso, money, unix_seconds
from auctions.models import Auction, AuctionEvent
from infra.outbox import Outbox

# Delivery registers what publishes committed events (realtime, when it is ready).
event_outbox: Outbox[AuctionEvent] = Outbox("auction events")
events_publisher_set = event_outbox.publisher_set
events_on_commit = event_outbox.on_commit
events_publication = event_outbox.publication


def events_insert(
    *, auction_id: UUID, first_seq: int, at: datetime, events: Sequence[tuple[str, dict[str, Any]]]
) -> list[AuctionEvent]:
    """Store `events` (type, data) with seqs from `first_seq` on, happened `at`, and publish
    them after commit. The caller holds the auction's row lock and moves its `last_seq`."""
    rows = AuctionEvent.objects.bulk_create(
        AuctionEvent(auction_id=auction_id, seq=seq, type=type, payload=data, created_at=at)
        for seq, (type, data) in enumerate(events, start=first_seq)
    )
    events_on_commit(rows)
    return rows


def event_record(
    *, auction: Auction, type: str, data: dict[str, Any], at: datetime
) -> AuctionEvent:
    """Store the next event of `auction`, happened `at` (the database's clock).

    The caller holds the auction's row lock. Bumps `auction.last_seq` and
    `auction.version` in memory; the caller saves the row in the same transaction, so
    the event exists exactly when the change does.
    """
    auction.last_seq += 1
    auction.version += 1
    (event,) = events_insert(
        auction_id=auction.id, first_seq=auction.last_seq, at=at, events=[(type, data)]
    )
    return event


# What each event carries (spec §2 "Server → subscribers", §7). People are {id, name}.

Person = dict[str, str]


def bid_placed_data(
    *,
    bid_id: UUID,
    amount: Decimal,
    bidder: Person,
    auto: bool,
    highest_bidder: Person,
    current_price: Decimal,
    min_next_bid: Decimal,
    bid_count: int,
    end_time: datetime,
) -> dict[str, Any]:
    return {
        "bid_id": str(bid_id),
        "amount": money(amount),
        "bidder": bidder,
        "auto": auto,
        "highest_bidder": highest_bidder,
        "current_price": money(current_price),
        "min_next_bid": money(min_next_bid),
        "bid_count": bid_count,
        "end_time": iso(end_time),
    }


def auction_extended_data(*, end_time: datetime, previous_end_time: datetime) -> dict[str, Any]:
    return {"end_time": iso(end_time), "previous_end_time": iso(previous_end_time)}


def auction_started_data(auction: Auction) -> dict[str, Any]:
    return {
        "status": auction.status,
        "start_time": iso(auction.start_time),
        "end_time": iso(auction.end_time),
        "current_price": money(auction.current_price),
        "min_next_bid": money(auction.min_next_bid),
    }


def auction_ended_data(
    *,
    final_price: Decimal | None,
    winner: Person | None,
    winning_bid_id: UUID | None,
    reserve_met: bool,
    reason: str,
) -> dict[str, Any]:
    """`reason`: "ended" at the end time (or staff's close), "bought" by buy it now."""
    return {
        "status": "ended",
        "final_price": money(final_price),
        "winner": winner,
        "winning_bid_id": str(winning_bid_id) if winning_bid_id else None,
        "reserve_met": reserve_met,
        "reason": reason,
    }


def auction_cancelled_data(auction: Auction) -> dict[str, Any]:
    return {"status": auction.status, "reason": auction.cancel_reason}


# Events as WebSocket messages.


def event_as_message(event: AuctionEvent) -> dict[str, Any]:
    """The WebSocket message for a stored event (spec §2, "Server → subscribers").

    `timestamp` is when the event happened, so a replayed event reads the same as live.
    """
    return {
        "type": event.type,
        "auction_id": str(event.auction_id),
        "seq": event.seq,
        "timestamp": unix_seconds(event.created_at),
        "data": event.payload,
    }
