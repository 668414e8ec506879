"""Recording auction events (in the change's transaction) and shaping them as messages."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import transaction

from auctions.formats import unix_seconds
from auctions.models import Auction, AuctionEvent


def event_record(
    *, auction: Auction, type: str, data: dict[str, Any], at: datetime
) -> AuctionEvent:
    """Store the next event of `auction`, happened `at` (the database's clock).

    The caller holds the auction's row lock. Bumps `auction.last_seq` and
    `auction.version` in memory; the caller saves the row in the same transaction, so
    the event exists exactly when the change does. It is published once that
    transaction commits (and by the sweep, should that fail).
    """
    from realtime.publish import events_publish  # delivery depends on the domain, not back

    auction.last_seq += 1
    auction.version += 1
    event = AuctionEvent.objects.create(
        auction=auction, seq=auction.last_seq, type=type, payload=data, created_at=at
    )
    transaction.on_commit(lambda: events_publish([event]))
    return event


def stored_events(auction_id: UUID, rows: Iterable[dict[str, Any]]) -> list[AuctionEvent]:
    """Events a raw statement inserted and returned (id, seq, type, payload, created_at)."""
    return [
        AuctionEvent(
            id=UUID(row["id"]),
            auction_id=auction_id,
            seq=row["seq"],
            type=row["type"],
            payload=row["payload"],
            created_at=datetime.fromisoformat(row["created_at"]),
        )
        for row in rows
    ]


def event_message(
    *, auction_id: str, seq: int, type: str, data: dict[str, Any], created_at: datetime
) -> dict[str, Any]:
    """The WebSocket message for a stored event (spec §2, "Server → subscribers").

    `timestamp` is when the event happened, so a replayed event reads the same as live.
    """
    return {
        "type": type,
        "auction_id": auction_id,
        "seq": seq,
        "timestamp": unix_seconds(created_at),
        "data": data,
    }


def event_as_message(event: AuctionEvent) -> dict[str, Any]:
    return event_message(
        auction_id=str(event.auction_id),
        seq=event.seq,
        type=event.type,
        data=event.payload,
        created_at=event.created_at,
    )
