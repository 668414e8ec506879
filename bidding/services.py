"""Placing a bid: every bid rule of spec §1 decided in one statement under the row lock.

One transaction: a single SQL statement that

1. locks the auction row (`FOR UPDATE`, so it reads the latest committed state after
   any concurrent bid) and decides the rejection code, if any, from that state and the
   database's clock;
2. if there is none, moves the auction forward (price, highest bidder, count, soft-close
   end, seq, version) and inserts the bid;

then, for an accepted bid, its `bid_placed` event (and `auction_extended` when soft close
moved the end), shaped and written by the outbox (auctions.events) like every other event.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
from django.db import connection, transaction

from accounts.models import User
from auctions.errors import BidRejected, Code, NotFound
from auctions.events import auction_extended_data, bid_placed_data, events_insert
from auctions.formats import is_storable_text, iso, money, parse_amount
from auctions.schedule_index import schedule_end_moved
from bidding.models import BidRequest
from bidding.ratelimit import bid_rate_allows
from bidding.rejections import rejection_text

MAX_REQUEST_ID_LENGTH = 64


# Parameters are cast where used: the statement is prepared server-side, and
# PostgreSQL must deduce one type per parameter.
_LOCK_AND_DECIDE = """
WITH locked AS (
    SELECT id, status, end_time, max_end_time, creator_id, highest_bidder_id, bid_count,
           starting_price, current_price, min_increment, extension_seconds, last_seq,
           CASE WHEN bid_count = 0 THEN starting_price
                ELSE current_price + min_increment END AS min_next_bid
    FROM auctions_auction
    WHERE id = %(auction_id)s::uuid
    FOR UPDATE
),
-- The database's clock read once, after the lock is held: a bid is in time if it is
-- decided before end_time, and accepted bids' times rise with their seq.
decided AS (
    SELECT locked.*, clock_timestamp() AS decided_at FROM locked
),
-- Rule order: who you are, the auction's state, the amount.
decision AS (
    SELECT decided.*,
           CASE
               WHEN creator_id = %(bidder_id)s::uuid THEN 'own_auction'
               WHEN status IN ('pending', 'cancelled') THEN 'auction_not_active'
               WHEN status = 'ended' OR decided_at >= end_time THEN 'auction_ended'
               WHEN highest_bidder_id = %(bidder_id)s::uuid THEN 'already_highest'
               WHEN %(amount)s::numeric < min_next_bid THEN 'bid_too_low'
           END AS rejection,
           -- Soft close: a bid inside the window moves the end, up to the cap.
           CASE WHEN extension_seconds > 0
                 AND end_time - decided_at < make_interval(secs => extension_seconds)
                 AND LEAST(decided_at + make_interval(secs => extension_seconds), max_end_time)
                     > end_time
                THEN LEAST(decided_at + make_interval(secs => extension_seconds), max_end_time)
           END AS extended_end_time
    FROM decided
),
"""

# Idempotency: claim (bidder, request_id) with this outcome. A duplicate conflicts on
# the unique key (waiting for a concurrent one to commit) and changes nothing.
_CLAIM = """
claim AS (
    INSERT INTO bidding_bidrequest
        (id, bidder_id, request_id, auction_id, amount, outcome, bid_id, seq,
         current_price, min_next_bid, end_time, created_at)
    SELECT gen_random_uuid(), %(bidder_id)s::uuid, %(request_id)s::text, id,
           %(amount)s::numeric,
           COALESCE(rejection, 'accepted'),
           CASE WHEN rejection IS NULL THEN %(bid_id)s::uuid END,
           CASE WHEN rejection IS NULL THEN last_seq + 1 END,
           CASE WHEN rejection IS NULL THEN %(amount)s::numeric ELSE current_price END,
           CASE WHEN rejection IS NULL THEN %(amount)s::numeric + min_increment
                ELSE min_next_bid END,
           COALESCE(extended_end_time, end_time),
           decided_at
    FROM decision
    ON CONFLICT (bidder_id, request_id) DO NOTHING
    RETURNING 1
),
"""

_MOVE_AND_RECORD = """
moved AS (
    UPDATE auctions_auction AS a
    SET current_price = %(amount)s::numeric,
        highest_bidder_id = %(bidder_id)s::uuid,
        highest_bid_id = %(bid_id)s::uuid,
        bid_count = d.bid_count + 1,
        end_time = COALESCE(d.extended_end_time, d.end_time),
        last_seq = d.last_seq + CASE WHEN d.extended_end_time IS NULL THEN 1 ELSE 2 END,
        version = a.version + 1,
        updated_at = d.decided_at
    FROM decision AS d
    WHERE a.id = d.id AND d.rejection IS NULL {claimed}
    RETURNING d.last_seq + 1 AS seq, a.current_price, a.min_increment, a.bid_count,
              a.end_time, d.end_time AS previous_end_time,
              d.extended_end_time IS NOT NULL AS extended, d.decided_at
),
new_bid AS (
    INSERT INTO bidding_bid (id, auction_id, bidder_id, amount, request_id, seq, created_at)
    SELECT %(bid_id)s::uuid, %(auction_id)s::uuid, %(bidder_id)s::uuid, %(amount)s::numeric,
           {request_id}, seq, decided_at
    FROM moved
)
SELECT d.rejection, d.current_price, d.min_next_bid,
       m.seq, m.current_price + m.min_increment, m.end_time, m.extended,
       {duplicate} AS duplicate, m.bid_count, m.previous_end_time, m.decided_at
FROM decision AS d LEFT JOIN moved AS m ON true
"""

# Two variants, so a bid without a request id pays nothing for idempotency.
_PLACE_BID_SQL = _LOCK_AND_DECIDE + _MOVE_AND_RECORD.format(
    claimed="", request_id="NULL::text", duplicate="false"
)
_PLACE_BID_WITH_REQUEST_ID_SQL = (
    _LOCK_AND_DECIDE
    + _CLAIM
    + _MOVE_AND_RECORD.format(
        claimed="AND EXISTS (SELECT 1 FROM claim)",
        request_id="%(request_id)s::text",
        duplicate="NOT EXISTS (SELECT 1 FROM claim)",
    )
)


@dataclass(frozen=True, slots=True)
class BidAccepted:
    """The auction's state right after an accepted bid (`bid_accepted.data`)."""

    auction_id: UUID
    bid_id: UUID
    amount: Decimal
    seq: int
    current_price: Decimal
    min_next_bid: Decimal
    end_time: datetime
    request_id: str | None
    extended: bool = False
    replayed: bool = False

    def as_data(self) -> dict[str, Any]:
        return {
            "bid_id": str(self.bid_id),
            "amount": money(self.amount),
            "seq": self.seq,
            "current_price": money(self.current_price),
            "min_next_bid": money(self.min_next_bid),
            "end_time": iso(self.end_time),
        }


def check_request_id(request_id: object) -> str | None:
    """A request id is an optional string of at most 64 characters (spec §2), storable text."""
    if request_id is None:
        return None
    if (
        not isinstance(request_id, str)
        or len(request_id) > MAX_REQUEST_ID_LENGTH
        or not is_storable_text(request_id)
    ):
        raise ValueError("request_id must be a string of at most 64 characters")
    return request_id


def bid_place(
    *, auction_id: UUID, bidder: User, amount: object, request_id: str | None = None
) -> BidAccepted:
    """Place a bid, or raise BidRejected with its spec code.

    Bids are rate-limited per bidder across instances (`rate_limited`) before anything
    else is looked at.

    A bid that repeats the request_id of an earlier bid by the same bidder gets the
    earlier outcome again (accepted or rejected) and creates nothing. Callers validate
    `request_id` with `check_request_id` (a malformed one is a malformed message, not a
    rejected bid).
    """
    if not bid_rate_allows(user_id=bidder.id):
        raise BidRejected(Code.RATE_LIMITED, rejection_text(Code.RATE_LIMITED, {}))
    parsed_amount = parse_amount(amount)
    bid_id = uuid.uuid4()
    with transaction.atomic():
        row = _fetch_prepared(
            _PLACE_BID_SQL if request_id is None else _PLACE_BID_WITH_REQUEST_ID_SQL,
            {
                "auction_id": auction_id,
                "bidder_id": bidder.id,
                "amount": parsed_amount,
                "request_id": request_id,
                "bid_id": bid_id,
            },
        )
        if row is None:
            raise NotFound()
        (
            rejection,
            current_price,
            min_next_bid,
            seq,
            next_bid,
            end_time,
            extended,
            duplicate,
            bid_count,
            previous_end_time,
            decided_at,
        ) = row
        if rejection is None and not duplicate:
            events = [
                (
                    "bid_placed",
                    bid_placed_data(
                        bid_id=bid_id,
                        amount=parsed_amount,
                        bidder=bidder,
                        current_price=parsed_amount,
                        min_next_bid=next_bid,
                        bid_count=bid_count,
                        end_time=end_time,
                    ),
                )
            ]
            if extended:
                events.append(
                    (
                        "auction_extended",
                        auction_extended_data(
                            end_time=end_time, previous_end_time=previous_end_time
                        ),
                    )
                )
            events_insert(auction_id=auction_id, first_seq=seq, at=decided_at, events=events)
    if duplicate:
        return _replay(BidRequest.objects.get(bidder=bidder, request_id=request_id))
    if rejection is not None:
        raise _rejected(Code(rejection), current_price, min_next_bid)
    if extended:
        schedule_end_moved(auction_id, end_time)
    return BidAccepted(
        auction_id=auction_id,
        bid_id=bid_id,
        amount=parsed_amount,
        seq=seq,
        current_price=parsed_amount,
        min_next_bid=next_bid,
        end_time=end_time,
        request_id=request_id,
        extended=extended,
    )


def _fetch_prepared(sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
    """Run one statement, prepared server-side on first use per connection: planning this
    statement costs as much as running it, and Django binds parameters client-side."""
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchone()


def _rejected(code: Code, current_price: Decimal, min_next_bid: Decimal) -> BidRejected:
    data = {"current_price": money(current_price), "min_next_bid": money(min_next_bid)}
    return BidRejected(code, rejection_text(code, data), data)


def _replay(earlier: BidRequest) -> BidAccepted:
    """The outcome an earlier bid with the same (bidder, request_id) got, again."""
    if earlier.outcome != BidRequest.ACCEPTED:
        raise _rejected(Code(earlier.outcome), earlier.current_price, earlier.min_next_bid)
    # An accepted outcome always names its bid and seq (the statement writes both).
    assert earlier.bid_id is not None and earlier.seq is not None
    return BidAccepted(
        auction_id=earlier.auction_id,
        bid_id=earlier.bid_id,
        amount=earlier.amount,
        seq=earlier.seq,
        current_price=earlier.current_price,
        min_next_bid=earlier.min_next_bid,
        end_time=earlier.end_time,
        request_id=earlier.request_id,
        replayed=True,
    )
