"""Bid placement designs under contention: which accepts the most bids per second, correctly.

Run against a migrated database (load stays on 127.0.0.1):

    DJANGO_SETTINGS_MODULE=auction_site.settings.local \\
    DATABASE_URL=postgres://postgres@127.0.0.1:55432/auction_bench \\
    .venv/bin/python -m bench.bid_designs --clients 1,4,8,16 --seconds 6

Every design has the product's effects (auction row moved forward, a `bidding_bid` row, a
`bid_placed` event with the same payload) in one transaction per bid. The designs other
than the product's live here only: they are measurement candidates, not product code.
"""

import argparse
import json
import multiprocessing
import os
import platform
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple, Protocol, cast
from uuid import UUID

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auction_site.settings.local")
django.setup()

import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402
from django.db.models.functions import Now  # noqa: E402

from accounts.models import User  # noqa: E402
from auctions.errors import BidRejected, Code  # noqa: E402
from auctions.events import event_record  # noqa: E402
from auctions.formats import iso, money  # noqa: E402
from auctions.models import Auction, AuctionEvent, AuctionStatus  # noqa: E402
from auctions.services import auction_create  # noqa: E402
from bench.original_bid_statement import PLACE_BID_SQL, SQL_ISO_FORMAT  # noqa: E402
from bidding import services as bidding_services  # noqa: E402
from bidding.models import Bid  # noqa: E402

CENT = Decimal("0.01")
STARTING_PRICE = Decimal("10.00")
MAX_CAS_TRIES = 10
DEFAULT_OUTPUT = Path(settings.BASE_DIR) / "bench-results" / "bid_designs.json"
BID_PLACED_KEYS = {
    "bid_id", "amount", "bidder", "current_price", "min_next_bid", "bid_count", "end_time",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Bidder:
    """What a design needs of a user: plain values, cheap to pass to threads and processes."""

    id: UUID
    username: str

    def as_person(self) -> dict[str, str]:
        return {"id": str(self.id), "name": self.username}


@dataclass(frozen=True, slots=True)
class Reply:
    """One attempt's outcome: None or a rejection code, and the min next bid it reported."""

    code: str | None
    min_next_bid: Decimal
    retries: int = 0


class AuctionState(Protocol):
    """What the rules read of an auction: a model instance or a fetched row."""

    @property
    def status(self) -> str: ...
    @property
    def end_time(self) -> datetime: ...
    @property
    def max_end_time(self) -> datetime: ...
    @property
    def creator_id(self) -> UUID: ...
    @property
    def highest_bidder_id(self) -> UUID | None: ...
    @property
    def bid_count(self) -> int: ...
    @property
    def starting_price(self) -> Decimal: ...
    @property
    def current_price(self) -> Decimal: ...
    @property
    def min_increment(self) -> Decimal: ...
    @property
    def extension_seconds(self) -> int: ...
    @property
    def last_seq(self) -> int: ...
    @property
    def version(self) -> int: ...


class Row(NamedTuple):
    """The auction columns the Python-side designs decide on, plus the database's now()."""

    status: str
    end_time: datetime
    max_end_time: datetime
    creator_id: UUID
    highest_bidder_id: UUID | None
    bid_count: int
    starting_price: Decimal
    current_price: Decimal
    min_increment: Decimal
    extension_seconds: int
    last_seq: int
    version: int
    db_now: datetime


def min_next_bid(state: AuctionState) -> Decimal:
    if state.bid_count == 0:
        return state.starting_price
    return state.current_price + state.min_increment


def rejection(state: AuctionState, bidder_id: UUID, amount: Decimal, now: datetime) -> str | None:
    """The product's rule order: who you are, the auction's state, the amount."""
    if state.creator_id == bidder_id:
        return Code.OWN_AUCTION
    if state.status in (AuctionStatus.PENDING, AuctionStatus.CANCELLED):
        return Code.AUCTION_NOT_ACTIVE
    if state.status == AuctionStatus.ENDED or now >= state.end_time:
        return Code.AUCTION_ENDED
    if state.highest_bidder_id == bidder_id:
        return Code.ALREADY_HIGHEST
    if amount < min_next_bid(state):
        return Code.BID_TOO_LOW
    return None


def extended_end(state: AuctionState, now: datetime) -> datetime | None:
    """Soft close, as the product's SQL decides it: the new end, or None."""
    if state.extension_seconds <= 0:
        return None
    window = timedelta(seconds=state.extension_seconds)
    if state.end_time - now >= window:
        return None
    end = min(now + window, state.max_end_time)
    return end if end > state.end_time else None


def bid_placed_data(
    *, bid_id: UUID, bidder: Bidder, amount: Decimal, increment: Decimal, count: int, end: datetime
) -> dict[str, Any]:
    return {
        "bid_id": str(bid_id),
        "amount": money(amount),
        "bidder": bidder.as_person(),
        "current_price": money(amount),
        "min_next_bid": money(amount + increment),
        "bid_count": count,
        "end_time": iso(end),
    }


# --- A. select_for_update, then decide in Python and write ---------------------------------


def place_lock_orm(auction_id: UUID, bidder: Bidder, amount: Decimal) -> Reply:
    """A (ORM): lock with select_for_update, insert bid and event(s), save the auction."""
    with transaction.atomic():
        auction = Auction.objects.select_for_update().annotate(db_now=Now()).get(id=auction_id)
        now = auction.db_now
        code = rejection(auction, bidder.id, amount, now)
        if code:
            return Reply(code, auction.min_next_bid)
        new_end = extended_end(auction, now)
        previous_end = auction.end_time
        bid = Bid.objects.create(
            auction_id=auction_id,
            bidder_id=bidder.id,
            amount=amount,
            seq=auction.last_seq + 1,
            created_at=now,
        )
        auction.current_price = amount
        auction.highest_bidder_id = bidder.id
        auction.highest_bid_id = bid.id
        auction.bid_count += 1
        auction.end_time = new_end or previous_end
        data = bid_placed_data(
            bid_id=bid.id,
            bidder=bidder,
            amount=amount,
            increment=auction.min_increment,
            count=auction.bid_count,
            end=auction.end_time,
        )
        event_record(auction=auction, type="bid_placed", data=data, at=now)
        if new_end:
            extended = {"end_time": iso(new_end), "previous_end_time": iso(previous_end)}
            event_record(auction=auction, type="auction_extended", data=extended, at=now)
            auction.version -= 1  # as the product: one row change, however many events
        auction.save(
            update_fields=[
                "current_price", "highest_bidder", "highest_bid", "bid_count", "end_time",
                "last_seq", "version", "updated_at",
            ]
        )  # fmt: skip
    return Reply(None, amount + auction.min_increment)


_STATE_SQL = """
SELECT status, end_time, max_end_time, creator_id, highest_bidder_id, bid_count,
       starting_price, current_price, min_increment, extension_seconds, last_seq, version, now()
FROM auctions_auction WHERE id = %s
"""
_LOCK_SQL = _STATE_SQL + " FOR UPDATE"
_UPDATE_SQL = """
UPDATE auctions_auction
SET current_price = %s, highest_bidder_id = %s, highest_bid_id = %s, bid_count = %s,
    end_time = %s, last_seq = %s, version = version + 1, updated_at = now()
WHERE id = %s
"""
_BID_SQL = """
INSERT INTO bidding_bid (id, auction_id, bidder_id, amount, request_id, seq, created_at)
VALUES (%s, %s, %s, %s, NULL, %s, %s)
"""
_EVENT_SQL = """
INSERT INTO auctions_auctionevent (id, auction_id, seq, type, payload, created_at)
VALUES (gen_random_uuid(), %s, %s, %s, %s::jsonb, %s)
"""


def place_lock_sql(auction_id: UUID, bidder: Bidder, amount: Decimal) -> Reply:
    """A (raw SQL): SELECT … FOR UPDATE, then UPDATE, INSERT bid, INSERT event; one transaction."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_LOCK_SQL, [auction_id])
        state = Row(*cursor.fetchone())
        code = rejection(state, bidder.id, amount, state.db_now)
        if code:
            return Reply(code, min_next_bid(state))
        now = state.db_now
        new_end = extended_end(state, now)
        end = new_end or state.end_time
        seq = state.last_seq + 1
        steps = 2 if new_end else 1
        bid_id = uuid.uuid4()
        cursor.execute(
            _UPDATE_SQL,
            [amount, bidder.id, bid_id, state.bid_count + 1, end, state.last_seq + steps,
             auction_id],
        )  # fmt: skip
        cursor.execute(_BID_SQL, [bid_id, auction_id, bidder.id, amount, seq, now])
        data = bid_placed_data(
            bid_id=bid_id,
            bidder=bidder,
            amount=amount,
            increment=state.min_increment,
            count=state.bid_count + 1,
            end=end,
        )
        cursor.execute(_EVENT_SQL, [auction_id, seq, "bid_placed", json.dumps(data), now])
        if new_end:
            extended = {"end_time": iso(new_end), "previous_end_time": iso(state.end_time)}
            cursor.execute(
                _EVENT_SQL, [auction_id, seq + 1, "auction_extended", json.dumps(extended), now]
            )
    return Reply(None, amount + state.min_increment)


# --- B. compare-and-set on version -----------------------------------------------------------


def place_cas_orm(auction_id: UUID, bidder: Bidder, amount: Decimal) -> Reply:
    """B (ORM): read without a lock, decide, UPDATE … WHERE version = read version; retry on 0."""
    for attempt in range(MAX_CAS_TRIES):
        auction = Auction.objects.annotate(db_now=Now()).get(id=auction_id)
        now = auction.db_now
        code = rejection(auction, bidder.id, amount, now)
        if code:
            return Reply(code, auction.min_next_bid, attempt)
        new_end = extended_end(auction, now)
        end = new_end or auction.end_time
        steps = 2 if new_end else 1
        bid_id = uuid.uuid4()
        with transaction.atomic():
            moved = Auction.objects.filter(
                id=auction_id, version=auction.version, end_time__gt=Now()
            ).update(
                current_price=amount,
                highest_bidder_id=bidder.id,
                highest_bid_id=bid_id,
                bid_count=auction.bid_count + 1,
                end_time=end,
                last_seq=auction.last_seq + steps,
                version=auction.version + 1,
                updated_at=Now(),
            )
            if not moved:
                continue
            seq = auction.last_seq + 1
            Bid.objects.create(
                id=bid_id,
                auction_id=auction_id,
                bidder_id=bidder.id,
                amount=amount,
                seq=seq,
                created_at=now,
            )
            data = bid_placed_data(
                bid_id=bid_id,
                bidder=bidder,
                amount=amount,
                increment=auction.min_increment,
                count=auction.bid_count + 1,
                end=end,
            )
            AuctionEvent.objects.create(
                auction_id=auction_id, seq=seq, type="bid_placed", payload=data, created_at=now
            )
            if new_end:
                AuctionEvent.objects.create(
                    auction_id=auction_id,
                    seq=seq + 1,
                    type="auction_extended",
                    payload={"end_time": iso(new_end), "previous_end_time": iso(auction.end_time)},
                    created_at=now,
                )
        return Reply(None, amount + auction.min_increment, attempt)
    return Reply("cas_exhausted", auction.min_next_bid, MAX_CAS_TRIES)


# The CAS write as one statement: the row lock is held for that statement only.
_CAS_SQL = """
WITH moved AS (
    UPDATE auctions_auction
    SET current_price = %(amount)s, highest_bidder_id = %(bidder_id)s,
        highest_bid_id = %(bid_id)s, bid_count = bid_count + 1, end_time = %(end_time)s,
        last_seq = last_seq + %(steps)s, version = version + 1, updated_at = now()
    WHERE id = %(auction_id)s AND version = %(version)s AND now() < end_time
    RETURNING id
),
new_bid AS (
    INSERT INTO bidding_bid (id, auction_id, bidder_id, amount, request_id, seq, created_at)
    SELECT %(bid_id)s, id, %(bidder_id)s, %(amount)s, NULL, %(seq)s, now() FROM moved
),
new_events AS (
    INSERT INTO auctions_auctionevent (id, auction_id, seq, type, payload, created_at)
    SELECT gen_random_uuid(), id, %(seq)s, 'bid_placed', %(data)s::jsonb, now() FROM moved
    UNION ALL
    SELECT gen_random_uuid(), id, %(seq)s + 1, 'auction_extended', %(extended)s::jsonb, now()
    FROM moved WHERE %(extended)s::jsonb IS NOT NULL
)
SELECT count(*) FROM moved
"""


def place_cas_sql(auction_id: UUID, bidder: Bidder, amount: Decimal) -> Reply:
    """B (raw SQL): unlocked SELECT, then one conditional-on-version statement with the inserts."""
    with connection.cursor() as cursor:
        for attempt in range(MAX_CAS_TRIES):
            cursor.execute(_STATE_SQL, [auction_id])
            state = Row(*cursor.fetchone())
            code = rejection(state, bidder.id, amount, state.db_now)
            if code:
                return Reply(code, min_next_bid(state), attempt)
            new_end = extended_end(state, state.db_now)
            end = new_end or state.end_time
            bid_id = uuid.uuid4()
            data = bid_placed_data(
                bid_id=bid_id,
                bidder=bidder,
                amount=amount,
                increment=state.min_increment,
                count=state.bid_count + 1,
                end=end,
            )
            extended = None
            if new_end:
                extended = {"end_time": iso(new_end), "previous_end_time": iso(state.end_time)}
            cursor.execute(
                _CAS_SQL,
                {
                    "auction_id": auction_id,
                    "bidder_id": bidder.id,
                    "bid_id": bid_id,
                    "amount": amount,
                    "end_time": end,
                    "steps": 2 if new_end else 1,
                    "version": state.version,
                    "seq": state.last_seq + 1,
                    "data": json.dumps(data),
                    "extended": json.dumps(extended) if extended else None,
                },
            )
            if cursor.fetchone()[0]:
                return Reply(None, amount + state.min_increment, attempt)
    return Reply("cas_exhausted", min_next_bid(state), MAX_CAS_TRIES)


# --- C. one conditional UPDATE: the bid rule is the WHERE clause -----------------------------

# After a concurrent bid commits, PostgreSQL re-checks the WHERE clause against the new row
# (READ COMMITTED), so a bid that is still high enough goes through without a retry. Soft
# close is left out: its `auction_extended` event needs the previous end_time, which an
# UPDATE cannot return on PostgreSQL 15 (RETURNING OLD is PostgreSQL 18).
_CONDITIONAL_SQL = f"""
WITH moved AS (
    UPDATE auctions_auction
    SET current_price = %(amount)s, highest_bidder_id = %(bidder_id)s,
        highest_bid_id = %(bid_id)s, bid_count = bid_count + 1, last_seq = last_seq + 1,
        version = version + 1, updated_at = now()
    WHERE id = %(auction_id)s AND status = 'active' AND now() < end_time
      AND extension_seconds = 0
      AND creator_id <> %(bidder_id)s
      AND highest_bidder_id IS DISTINCT FROM %(bidder_id)s
      AND %(amount)s >= CASE WHEN bid_count = 0 THEN starting_price
                             ELSE current_price + min_increment END
    RETURNING last_seq AS seq, current_price, min_increment, bid_count, end_time
),
new_bid AS (
    INSERT INTO bidding_bid (id, auction_id, bidder_id, amount, request_id, seq, created_at)
    SELECT %(bid_id)s, %(auction_id)s, %(bidder_id)s, %(amount)s, NULL, seq, now() FROM moved
),
new_event AS (
    INSERT INTO auctions_auctionevent (id, auction_id, seq, type, payload, created_at)
    SELECT gen_random_uuid(), %(auction_id)s, seq, 'bid_placed',
           jsonb_build_object(
               'bid_id', %(bid_id)s::text,
               'amount', current_price::text,
               'bidder', jsonb_build_object('id', %(bidder_id)s::text,
                                            'name', %(bidder_name)s::text),
               'current_price', current_price::text,
               'min_next_bid', (current_price + min_increment)::text,
               'bid_count', bid_count,
               'end_time', to_char(end_time AT TIME ZONE 'UTC', '{SQL_ISO_FORMAT}')),
           now()
    FROM moved
)
SELECT current_price + min_increment FROM moved
"""


def _conditional(prepared: bool) -> Callable[[UUID, Bidder, Decimal], Reply]:
    def place_conditional(auction_id: UUID, bidder: Bidder, amount: Decimal) -> Reply:
        """C: the conditional UPDATE; on no row, one unlocked SELECT says why."""
        params = {
            "auction_id": auction_id,
            "bidder_id": bidder.id,
            "bidder_name": bidder.username,
            "amount": amount,
            "bid_id": uuid.uuid4(),
        }
        row = execute(_CONDITIONAL_SQL, params, prepared=prepared)
        if row is not None:
            return Reply(None, row[0])
        state = Row(*(execute(_STATE_SQL, [auction_id], prepared=prepared) or ()))
        code = rejection(state, bidder.id, amount, state.db_now)
        if code is None:
            # Only a soft-close auction (excluded above) or a clock edge can land here.
            code = "unexplained"
        return Reply(code, min_next_bid(state))

    return place_conditional


# --- D. the product, and faster ways to run the same statement -------------------------------


def _product(*, request_ids: bool) -> Callable[[UUID, Bidder, Decimal], Reply]:
    def place_product(auction_id: UUID, bidder: Bidder, amount: Decimal) -> Reply:
        """D: bidding.services.bid_place itself, with a fresh request_id or none."""
        request_id = uuid.uuid4().hex if request_ids else None
        try:
            accepted = bidding_services.bid_place(
                auction_id=auction_id,
                bidder=cast(User, bidder),  # what bid_place reads of a user: id, username
                amount=amount,
                request_id=request_id,
            )
        except BidRejected as rejected:
            return Reply(rejected.code, Decimal(rejected.data["min_next_bid"]))
        return Reply(None, accepted.min_next_bid)

    return place_product


# The product statement without the idempotency claim (chosen in Python when there is no
# request_id) and with the lock and the decision in one CTE. Same rules, same effects.
_LEAN_SQL = f"""
WITH decision AS (
    SELECT id, end_time, last_seq, min_increment,
           CASE WHEN bid_count = 0 THEN starting_price
                ELSE current_price + min_increment END AS min_next_bid,
           current_price, bid_count,
           CASE
               WHEN creator_id = %(bidder_id)s THEN 'own_auction'
               WHEN status IN ('pending', 'cancelled') THEN 'auction_not_active'
               WHEN status = 'ended' OR now() >= end_time THEN 'auction_ended'
               WHEN highest_bidder_id = %(bidder_id)s THEN 'already_highest'
               WHEN %(amount)s < CASE WHEN bid_count = 0 THEN starting_price
                                      ELSE current_price + min_increment END
                   THEN 'bid_too_low'
           END AS rejection,
           CASE WHEN extension_seconds > 0
                 AND end_time - now() < make_interval(secs => extension_seconds)
                 AND LEAST(now() + make_interval(secs => extension_seconds), max_end_time)
                     > end_time
                THEN LEAST(now() + make_interval(secs => extension_seconds), max_end_time)
           END AS extended_end_time
    FROM auctions_auction
    WHERE id = %(auction_id)s
    FOR UPDATE
),
moved AS (
    UPDATE auctions_auction AS a
    SET current_price = %(amount)s,
        highest_bidder_id = %(bidder_id)s,
        highest_bid_id = %(bid_id)s,
        bid_count = d.bid_count + 1,
        end_time = COALESCE(d.extended_end_time, d.end_time),
        last_seq = d.last_seq + CASE WHEN d.extended_end_time IS NULL THEN 1 ELSE 2 END,
        version = a.version + 1,
        updated_at = now()
    FROM decision AS d
    WHERE a.id = d.id AND d.rejection IS NULL
    RETURNING d.last_seq + 1 AS seq, a.current_price, a.min_increment, a.bid_count,
              a.end_time, d.end_time AS previous_end_time,
              d.extended_end_time IS NOT NULL AS extended
),
new_bid AS (
    INSERT INTO bidding_bid (id, auction_id, bidder_id, amount, request_id, seq, created_at)
    SELECT %(bid_id)s, %(auction_id)s, %(bidder_id)s, %(amount)s, NULL, seq, now()
    FROM moved
),
new_events AS (
    INSERT INTO auctions_auctionevent (id, auction_id, seq, type, payload, created_at)
    SELECT gen_random_uuid(), %(auction_id)s, seq, 'bid_placed',
           jsonb_build_object(
               'bid_id', %(bid_id)s::text,
               'amount', current_price::text,
               'bidder', jsonb_build_object('id', %(bidder_id)s::text,
                                            'name', %(bidder_name)s::text),
               'current_price', current_price::text,
               'min_next_bid', (current_price + min_increment)::text,
               'bid_count', bid_count,
               'end_time', to_char(end_time AT TIME ZONE 'UTC', '{SQL_ISO_FORMAT}')),
           now()
    FROM moved
    UNION ALL
    SELECT gen_random_uuid(), %(auction_id)s, seq + 1, 'auction_extended',
           jsonb_build_object(
               'end_time', to_char(end_time AT TIME ZONE 'UTC', '{SQL_ISO_FORMAT}'),
               'previous_end_time',
               to_char(previous_end_time AT TIME ZONE 'UTC', '{SQL_ISO_FORMAT}')),
           now()
    FROM moved
    WHERE extended
)
SELECT d.rejection, d.min_next_bid, m.current_price + m.min_increment
FROM decision AS d LEFT JOIN moved AS m ON true
"""


# Bound on the server, an untyped NULL request_id is both text (the `::text` tests) and
# varchar (the inserts), which PostgreSQL refuses; typing every use once fixes that.
_PRODUCT_SQL_TYPED = PLACE_BID_SQL.replace("%(request_id)s", "%(request_id)s::text")


def _product_statement(
    sql: str, *, with_request_id: bool, prepared: bool = True, unique_request_ids: bool = False
) -> Callable[..., Reply]:
    def place_statement(auction_id: UUID, bidder: Bidder, amount: Decimal) -> Reply:
        """D variants: the product's statement, or a leaner one, prepared or not."""
        params = {
            "auction_id": auction_id,
            "bidder_id": bidder.id,
            "bidder_name": bidder.username,
            "amount": amount,
            "bid_id": uuid.uuid4(),
        }
        if with_request_id:
            params["request_id"] = uuid.uuid4().hex if unique_request_ids else None
        row = execute(sql, params, prepared=prepared)
        assert row is not None
        # The product's row: rejection, current_price, min_next_bid, seq, next min, …
        rejected, current_min_next_bid, next_bid = (
            (row[0], row[2], row[4]) if with_request_id else row
        )
        if rejected is not None:
            return Reply(rejected, current_min_next_bid)
        return Reply(None, next_bid)

    return place_statement


def place_hot_row(auction_id: UUID, bidder: Bidder, amount: Decimal) -> Reply:
    """Reference: the cheapest write of one row, autocommit; the ceiling for a hot row."""
    execute("UPDATE auctions_auction SET version = version + 1 WHERE id = %s", [auction_id],
            prepared=True, fetch=False)  # fmt: skip
    return Reply(None, amount)


_local = threading.local()


def execute(sql: str, params: Any, *, prepared: bool, fetch: bool = True) -> tuple[Any, ...] | None:
    """Run one autocommit statement; `prepared` binds on the server and prepares it once.

    Django's psycopg cursors bind on the client, which rules out prepared statements, so
    the prepared path uses a plain psycopg cursor on Django's own connection.
    """
    if not prepared:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone() if fetch else None
    connection.ensure_connection()
    raw = connection.connection
    if getattr(_local, "raw", None) is not raw:
        raw.prepare_threshold = 0
        _local.raw, _local.cursor = raw, psycopg.Cursor(raw)
    cursor = _local.cursor
    cursor.execute(sql, params, prepare=True)
    return cursor.fetchone() if fetch else None


DESIGNS: dict[str, Callable[[UUID, Bidder, Decimal], Reply]] = {
    "A-lock-orm": place_lock_orm,
    "A-lock-sql": place_lock_sql,
    "B-cas-orm": place_cas_orm,
    "B-cas-sql": place_cas_sql,
    "C-cond-update": _conditional(prepared=False),
    "C-cond-update-prep": _conditional(prepared=True),
    "D-product": _product(request_ids=False),
    "D-product-prep": _product_statement(_PRODUCT_SQL_TYPED, with_request_id=True),
    # Every bid with a request_id, as WebSocket clients send them: one more insert.
    "D-product-rid": _product(request_ids=True),
    "D-product-rid-prep": _product_statement(
        _PRODUCT_SQL_TYPED, with_request_id=True, unique_request_ids=True
    ),
    "D-lean": _product_statement(_LEAN_SQL, with_request_id=False, prepared=False),
    "D-lean-prep": _product_statement(_LEAN_SQL, with_request_id=False),
    "ref-hot-row": place_hot_row,
}


# --- Driving the designs ---------------------------------------------------------------------


@dataclass
class ClientResult:
    outcomes: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    retries: int = 0
    started: float = 0.0
    finished: float = 0.0
    error: str | None = None


def client_loop(
    design: str,
    auction_id: UUID,
    identities: tuple[Bidder, Bidder],
    seconds: float,
    max_attempts: int,
    seed: int,
    barrier: Any,
) -> ClientResult:
    """Bid a little above the last min next bid heard, as soon as each reply comes back.

    A client has two identities and bids as the one it does not believe to be the highest
    bidder, so one client alone can keep bidding; a stale belief shows as already_highest.
    """
    place = DESIGNS[design]
    rng = random.Random(seed)
    result = ClientResult()
    try:
        next_bid = Auction.objects.get(id=auction_id).min_next_bid
        execute("SELECT 1", None, prepared=False)
        me = 0
        barrier.wait()
        result.started = time.monotonic()
        deadline = result.started + seconds
        while len(result.latencies_ms) < max_attempts and time.monotonic() < deadline:
            amount = next_bid + CENT * rng.randint(0, 5)
            began = time.perf_counter()
            reply = place(auction_id, identities[me], amount)
            result.latencies_ms.append((time.perf_counter() - began) * 1000)
            result.outcomes[reply.code or "accepted"] += 1
            result.retries += reply.retries
            next_bid = reply.min_next_bid
            if reply.code in (None, Code.ALREADY_HIGHEST):
                me = 1 - me
    except Exception as exc:  # a crash must show in the report, not vanish in a thread
        result.error = f"{type(exc).__name__}: {exc}"
        barrier.abort()
    finally:
        result.finished = time.monotonic()
        connections.close_all()
    return result


def _thread_main(results: list[Any], index: int, args: tuple[Any, ...]) -> None:
    results[index] = client_loop(*args)


def _process_main(queue: Any, args: tuple[Any, ...]) -> None:
    queue.put(client_loop(*args))


def drive(
    design: str, auction_id: UUID, bidders: list[Bidder], clients: int, seconds: float,
    max_attempts: int, mode: str,
) -> list[ClientResult]:  # fmt: skip
    """K concurrent clients, each with its own database connection, started together."""
    connections.close_all()  # nothing shared with the clients, and nothing open across fork
    work = [
        (design, auction_id, (bidders[2 * i], bidders[2 * i + 1]), seconds, max_attempts, i)
        for i in range(clients)
    ]
    if mode == "threads":
        barrier = threading.Barrier(clients)
        results: list[Any] = [None] * clients
        threads = [
            threading.Thread(target=_thread_main, args=(results, i, (*w, barrier)))
            for i, w in enumerate(work)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(clients)
    queue = context.Queue()
    processes = [context.Process(target=_process_main, args=(queue, (*w, barrier))) for w in work]
    for process in processes:
        process.start()
    results = [queue.get() for _ in processes]
    for process in processes:
        process.join()
    return results


def check_invariants(auction_id: UUID, accepted: int, design: str) -> list[str]:
    """Everything that must hold after any interleaving; an empty list means all is well."""
    problems: list[str] = []
    auction = Auction.objects.get(id=auction_id)
    if design == "ref-hot-row":
        if auction.version != accepted:
            problems.append(f"version {auction.version} != {accepted} updates")
        return problems
    bids = list(Bid.objects.filter(auction_id=auction_id).order_by("seq"))
    events = list(AuctionEvent.objects.filter(auction_id=auction_id).order_by("seq"))
    n = len(bids)
    if n != accepted:
        problems.append(f"{n} bid rows but clients saw {accepted} accepted")
    if len(events) != n:
        problems.append(f"{len(events)} events for {n} bids")
    if [e.seq for e in events] != list(range(1, len(events) + 1)):
        problems.append("event seqs are not 1..N without gaps")
    if [b.seq for b in bids] != [e.seq for e in events][:n]:
        problems.append("bid seqs do not match event seqs")
    if auction.last_seq != len(events) or auction.version != len(events):
        problems.append(f"last_seq {auction.last_seq}/version {auction.version} != {len(events)}")
    if auction.bid_count != n:
        problems.append(f"bid_count {auction.bid_count} != {n} bids")
    previous: Bid | None = None
    for bid, event in zip(bids, events, strict=False):
        floor = auction.starting_price
        if previous is not None:
            floor = previous.amount + auction.min_increment
        if bid.amount < floor:
            problems.append(f"bid seq {bid.seq}: {bid.amount} below {floor}")
        if previous is not None and bid.bidder_id == previous.bidder_id:
            problems.append(f"bid seq {bid.seq}: same bidder twice in a row")
        expected = {
            "type": "bid_placed",
            "keys": BID_PLACED_KEYS,
            "bid_id": str(bid.id),
            "amount": money(bid.amount),
            "bidder": str(bid.bidder_id),
            "min_next_bid": money(bid.amount + auction.min_increment),
            "bid_count": bid.seq,
        }
        payload = event.payload
        got = {
            "type": event.type,
            "keys": set(payload),
            "bid_id": payload.get("bid_id"),
            # current_price must repeat amount; a mismatch shows as False.
            "amount": payload.get("amount") == payload.get("current_price")
            and payload.get("amount"),
            "bidder": (payload.get("bidder") or {}).get("id"),
            "min_next_bid": payload.get("min_next_bid"),
            "bid_count": payload.get("bid_count"),
        }
        if got != expected:
            problems.append(f"event seq {event.seq}: {got} != {expected}")
        previous = bid
    if previous is not None and (
        auction.current_price != previous.amount
        or auction.highest_bidder_id != previous.bidder_id
        or auction.highest_bid_id != previous.id
    ):
        problems.append("auction's current price / highest bidder / highest bid != last bid")
    return problems[:20]


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run_one(
    design: str, clients: int, seconds: float, max_attempts: int, mode: str,
    seller: User, bidders: list[Bidder],
) -> dict[str, Any]:  # fmt: skip
    auction = auction_create(
        creator=seller,
        starting_price=STARTING_PRICE,
        item_name=f"bench {design} x{clients} {uuid.uuid4().hex[:8]}",
        min_increment=CENT,
        duration_seconds=24 * 3600,
    )
    load = os.getloadavg()[0]
    results = drive(design, auction.id, bidders, clients, seconds, max_attempts, mode)
    outcomes: Counter[str] = Counter()
    latencies: list[float] = []
    for result in results:
        outcomes.update(result.outcomes)
        latencies.extend(result.latencies_ms)
    errors = [r.error for r in results if r.error]
    started = [r.started for r in results if r.started] or [0.0]
    elapsed = max(max(r.finished for r in results) - min(started), 1e-9)
    attempts = sum(outcomes.values())
    accepted = outcomes["accepted"]
    problems = check_invariants(auction.id, accepted, design) + errors
    return {
        "design": design,
        "clients": clients,
        "mode": mode,
        "seconds": round(elapsed, 3),
        "attempts": attempts,
        "accepted": accepted,
        "attempts_per_s": round(attempts / elapsed, 1),
        "accepted_per_s": round(accepted / elapsed, 1),
        "wasted_pct": round(100 * (attempts - accepted) / attempts, 1) if attempts else 0.0,
        "outcomes": dict(outcomes),
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "retries": sum(r.retries for r in results),
        "invariants_ok": not problems,
        "problems": problems,
        "loadavg_1m_before": round(load, 2),
        "auction_id": str(auction.id),
    }


HEADER = (
    f"{'design':<20}{'clients':>8}{'att/s':>9}{'acc/s':>9}{'wasted%':>9}{'p50ms':>8}"
    f"{'p99ms':>8}{'retries':>9}  invariants"
)


def row_text(run: dict[str, Any]) -> str:
    ok = "OK" if run["invariants_ok"] else "VIOLATED: " + "; ".join(run["problems"][:3])
    return (
        f"{run['design']:<20}{run['clients']:>8}{run['attempts_per_s']:>9.0f}"
        f"{run['accepted_per_s']:>9.0f}{run['wasted_pct']:>9.1f}{run['p50_ms']:>8.2f}"
        f"{run['p99_ms']:>8.2f}{run['retries']:>9}  {ok}"
    )


def bench_users(count: int) -> tuple[User, list[Bidder]]:
    seller, _ = User.objects.get_or_create(username="bench-seller")
    bidders = []
    for i in range(count):
        user, _ = User.objects.get_or_create(username=f"bench-bidder-{i:02d}")
        bidders.append(Bidder(id=user.id, username=user.username))
    return seller, bidders


def server_settings() -> dict[str, str]:
    names = ["fsync", "synchronous_commit", "full_page_writes", "shared_buffers", "server_version"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", [names])
        return dict(cursor.fetchall())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,4,8,16", help="comma-separated client counts")
    parser.add_argument("--seconds", type=float, default=6.0, help="per run, at most 10")
    parser.add_argument("--designs", default=",".join(DESIGNS), help="comma-separated")
    parser.add_argument("--mode", choices=["threads", "processes"], default="threads")
    parser.add_argument("--max-attempts", type=int, default=100_000, help="per client and run")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    client_counts = [int(c) for c in args.clients.split(",")]
    designs = args.designs.split(",")
    unknown = set(designs) - set(DESIGNS)
    if unknown:
        parser.error(f"unknown designs: {', '.join(sorted(unknown))}")
    seconds = min(args.seconds, 10.0)

    seller, bidders = bench_users(2 * max(client_counts))
    meta = {
        "started_at": datetime.now(UTC).isoformat(),
        "mode": args.mode,
        "seconds_per_run": seconds,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "postgres": server_settings(),
        "database": connection.settings_dict["NAME"],
    }
    print(f"{args.mode}, {seconds:g} s per run, {os.cpu_count()} CPUs, {meta['postgres']}")
    print(HEADER)
    runs = []
    # Designs interleaved within each client count, so background load hits them alike.
    for clients in client_counts:
        for design in designs:
            run = run_one(design, clients, seconds, args.max_attempts, args.mode, seller, bidders)
            runs.append(run)
            print(row_text(run), flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"meta": meta, "runs": runs}, indent=2, default=str))
    print(f"results written to {args.output}")


if __name__ == "__main__":
    main()
