"""Placing bids and buying now: offers decided by bidding.rules under the auction's row lock.

Every interface calls `bid_place` / `buy_now` (or their async forms). The offers for one
auction that arrive in a process while a decision for it is in flight wait and are
decided together, in arrival order (bidding.batching): one transaction per batch,

1. in one round trip (psycopg's pipeline): BEGIN, lock the auction row with
   `SELECT … FOR UPDATE` (the leader's max and name come with it, and the database's
   clock is read once the lock is held), and read the stored outcomes of the batch's
   request ids;
2. decide every offer in Python (bidding.rules), on that latest committed state;
3. in one more round trip: one statement writes it all (the auction row, checked against
   the `version` read and bumped, the bids, the events, the outcomes of offers with a
   request id), then COMMIT.

So a batch costs two round trips and one WAL flush however many offers it holds. Events
are published after the commit; a lost publish is made good by the sweep.
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
from django.conf import settings
from django.db import OperationalError, connection, transaction

from accounts.models import User
from auctions.errors import BidRejected, Code, NotFound
from auctions.events import events_publication
from auctions.formats import is_storable_text
from auctions.models import AuctionEvent
from auctions.notices import closing_notices, outbid_notices
from auctions.pricing import increments_of
from auctions.schedule_index import schedule_end_moved, schedule_remove
from bidding.batching import Decided, OfferBatcher
from bidding.models import BidRequest
from bidding.ratelimit import bid_rates_allow
from bidding.rejections import rejection_text
from bidding.rules import (
    Accepted,
    AuctionState,
    Decision,
    Offer,
    Outcome,
    Person,
    Rejected,
    offer_parse,
)
from bidding.rules import decide as rules_decide
from infra.metrics import BIDS
from notifications.models import Notification
from notifications.services import RECORD_SQL, Notice, notifications, record_params, recorded

logger = logging.getLogger(__name__)

MAX_REQUEST_ID_LENGTH = 64
# A batch is decided again if its write found the row changed or a request id taken
# meanwhile (by another auction's batch); both are rare races.
MAX_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class BidAccepted:
    """An accepted offer: `bid_accepted.data` (`outcome`) and how it came about."""

    auction_id: UUID
    request_id: str | None
    outcome: Accepted
    replayed: bool = False
    extended: bool = False

    @property
    def bid_id(self) -> UUID:
        return self.outcome.bid_id

    @property
    def amount(self) -> Decimal:
        return self.outcome.amount

    @property
    def seq(self) -> int:
        return self.outcome.seq

    @property
    def current_price(self) -> Decimal:
        return self.outcome.current_price

    @property
    def min_next_bid(self) -> Decimal:
        return self.outcome.min_next_bid

    @property
    def end_time(self) -> datetime:
        return self.outcome.end_time

    @property
    def leading(self) -> bool:
        return self.outcome.leading

    def as_data(self) -> dict[str, Any]:
        return self.outcome.as_data()


@dataclass(frozen=True, slots=True)
class OfferResult:
    """What became of one offer of a batch."""

    outcome: Outcome
    replayed: bool = False
    extended: bool = False


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
    *,
    auction_id: UUID,
    bidder: User,
    amount: object = None,
    max_amount: object = None,
    request_id: str | None = None,
) -> BidAccepted:
    """Bid `amount`, or up to `max_amount` (spec §7); raise BidRejected with its code.

    A bid that repeats the request_id of an earlier one by the same bidder gets the
    earlier outcome again (accepted or rejected) and changes nothing. Callers validate
    `request_id` with `check_request_id` (a malformed one is a malformed message).
    """
    offer = offer_parse(
        bidder=_person(bidder), amount=amount, max_amount=max_amount, request_id=request_id
    )
    return _answer(auction_id, offer, _submit(auction_id, offer))


def buy_now(*, auction_id: UUID, buyer: User, request_id: str | None = None) -> BidAccepted:
    """Buy at the buy-it-now price (spec §7); raise BidRejected with its code."""
    offer = offer_parse(bidder=_person(buyer), buy_now=True, request_id=request_id)
    return _answer(auction_id, offer, _submit(auction_id, offer))


async def bid_place_async(
    *,
    auction_id: UUID,
    bidder: User,
    amount: object = None,
    max_amount: object = None,
    buy: bool = False,
    request_id: str | None = None,
) -> BidAccepted:
    """`bid_place` (or, with `buy`, `buy_now`) for the event loop: waiting holds no thread."""
    offer = offer_parse(
        bidder=_person(bidder),
        amount=amount,
        max_amount=max_amount,
        buy_now=buy,
        request_id=request_id,
    )
    result = await asyncio.wrap_future(batcher.submit(auction_id, offer))
    return _answer(auction_id, offer, result)


def _person(user: User) -> Person:
    return Person(id=user.id, name=user.username)


def _submit(auction_id: UUID, offer: Offer) -> OfferResult:
    # Inside the caller's transaction (a test, a script), decide here, in it: another
    # thread's connection could not see what the transaction has not committed yet.
    if connection.in_atomic_block:
        decided = offers_decide(auction_id, [offer])
        if decided.after is not None:
            decided.after()
        return decided.results[0]
    return batcher.submit(auction_id, offer).result()


def _answer(auction_id: UUID, offer: Offer, result: OfferResult) -> BidAccepted:
    outcome = result.outcome
    BIDS.labels(outcome.code if isinstance(outcome, Rejected) else "accepted").inc()
    if isinstance(outcome, Rejected):
        if outcome.code == Code.NOT_FOUND:
            raise NotFound()
        data = outcome.as_data()
        raise BidRejected(outcome.code, rejection_text(outcome.code, data), data)
    return BidAccepted(
        auction_id=auction_id,
        request_id=offer.request_id,
        outcome=outcome,
        replayed=result.replayed,
        extended=result.extended,
    )


# --- one batch ---------------------------------------------------------------------------

# The auction row, locked; the clock is read after the lock is held (a bid is in time if
# it is decided before end_time). The leader's name comes along for automatic bids, the
# item's name for notifications.
_LOCK_SQL = """
WITH locked AS MATERIALIZED (
    SELECT status, creator_id, end_time, max_end_time, extension_seconds, starting_price,
           min_increment, increments, reserve_price, buy_now_price, current_price,
           bid_count, highest_bidder_id, leader_max, leader_max_at, highest_bid_id,
           last_seq, version, item_id
    FROM auctions_auction
    WHERE id = %(auction_id)s
    FOR UPDATE
)
SELECT locked.*, u.username, item.name, clock_timestamp()
FROM locked
JOIN auctions_item AS item ON item.id = locked.item_id
LEFT JOIN accounts_user AS u ON u.id = locked.highest_bidder_id
"""

_STORED_SQL = """
SELECT bidder_id, request_id, outcome, reply
FROM bidding_bidrequest
WHERE (bidder_id, request_id) IN (
    SELECT * FROM unnest(%(bidders)b::uuid[], %(request_ids)b::text[])
)
"""

# Everything a batch changes, in one statement. The auction row is updated only if it
# still has the version read under the lock; the bids and events go in only with it.
# The arrays go binary (`%(…)b`): dumping them as text escapes every element, which was
# most of a batch's CPU.
_WRITE_SQL = """
WITH moved AS (
    UPDATE auctions_auction
    SET status = %(status)s, current_price = %(current_price)s, bid_count = %(bid_count)s,
        highest_bidder_id = %(leader_id)s, highest_bid_id = %(highest_bid_id)s,
        leader_max = %(leader_max)s, leader_max_at = %(leader_max_at)s,
        end_time = %(end_time)s, last_seq = %(last_seq)s, winner_id = %(winner_id)s,
        final_price = %(final_price)s, ended_at = %(ended_at)s,
        version = version + 1, updated_at = %(now)s
    WHERE id = %(auction_id)s AND version = %(version)s AND %(changed)s
    RETURNING version
),
written AS (
    SELECT NOT %(changed)s OR EXISTS (SELECT 1 FROM moved) AS ok
),
new_bids AS (
    INSERT INTO bidding_bid (id, auction_id, bidder_id, amount, auto, request_id, seq, created_at)
    SELECT b.id, %(auction_id)s, b.bidder_id, b.amount, b.auto, b.request_id, b.seq, %(now)s
    FROM unnest(%(bid_ids)b::uuid[], %(bid_bidders)b::uuid[], %(bid_amounts)b::numeric[],
                %(bid_autos)b::boolean[], %(bid_request_ids)b::text[], %(bid_seqs)b::bigint[])
         AS b(id, bidder_id, amount, auto, request_id, seq)
    WHERE (SELECT ok FROM written)
),
new_events AS (
    INSERT INTO auctions_auctionevent (id, auction_id, seq, type, payload, created_at)
    SELECT e.id, %(auction_id)s, e.seq, e.type, e.payload, %(now)s
    FROM unnest(%(event_ids)b::uuid[], %(event_seqs)b::bigint[], %(event_types)b::text[],
                %(event_payloads)b::jsonb[])
         AS e(id, seq, type, payload)
    WHERE (SELECT ok FROM written)
),
new_outcomes AS (
    INSERT INTO bidding_bidrequest (id, bidder_id, request_id, auction_id, outcome, reply,
                                    created_at)
    SELECT gen_random_uuid(), r.bidder_id, r.request_id, %(auction_id)s, r.outcome, r.reply,
           %(now)s
    FROM unnest(%(outcome_bidders)b::uuid[], %(outcome_request_ids)b::text[],
                %(outcome_codes)b::text[], %(outcome_replies)b::jsonb[])
         AS r(bidder_id, request_id, outcome, reply)
    WHERE (SELECT ok FROM written)
)
SELECT ok FROM written
"""


class _Retry(Exception):
    """The batch must be decided again (its write found the row or a request id changed)."""


class _StaleConnection(Exception):
    """The batch's first round trip met a connection the server had dropped."""


@dataclass(frozen=True, slots=True)
class _Written:
    """A committed batch that changed the auction: what to do once it is committed."""

    decision: Decision
    now: datetime
    notifications: list[Notification]


@dataclass
class _Batch:
    """One batch's offers and what is known of each before the rules decide."""

    offers: Sequence[Offer]
    results: dict[int, OfferResult] = field(default_factory=dict)

    def undecided(self) -> list[int]:
        return [index for index in range(len(self.offers)) if index not in self.results]


def offers_decide(auction_id: UUID, offers: Sequence[Offer]) -> Decided[OfferResult]:
    """Decide one batch of offers for one auction, in order; one transaction. The results
    come with what to do once they are given: publish the events, move the schedule."""
    batch = _Batch(offers)
    if settings.BID_RATE_LIMIT > 0:
        _answer_repeats(batch, _stored_outcomes_fresh(batch, batch.undecided()))  # before limit
        _rate_limit(batch)
    for attempt in range(MAX_ATTEMPTS):
        try:
            written = _decide_locked(auction_id, batch)
        except _StaleConnection as stale:
            # Nothing reached the database: a fresh connection may decide this batch.
            connection.close()
            if attempt == MAX_ATTEMPTS - 1:
                raise OperationalError(str(stale.__cause__)) from stale.__cause__
            logger.info("bid batch of auction %s met a broken connection; again", auction_id)
            continue
        except _Retry:
            if attempt == MAX_ATTEMPTS - 1:
                raise
            logger.info("bid batch of auction %s raced a concurrent write; again", auction_id)
            batch.results = {i: r for i, r in batch.results.items() if _kept(r)}
            continue
        break
    results = [batch.results[index] for index in range(len(offers))]
    if written is None:
        return Decided(results)
    return Decided(results, _after_commit(auction_id, written))


def _kept(result: OfferResult) -> bool:
    # Rate limits stand; everything decided under the lock is decided again.
    return isinstance(result.outcome, Rejected) and result.outcome.code == Code.RATE_LIMITED


def _rate_limit(batch: _Batch) -> None:
    indexes = batch.undecided()
    allowed = bid_rates_allow(user_ids=[batch.offers[i].bidder.id for i in indexes])
    for index, ok in zip(indexes, allowed, strict=True):
        if not ok:
            batch.results[index] = OfferResult(Rejected(Code.RATE_LIMITED, None, None))


def _decide_locked(auction_id: UUID, batch: _Batch) -> _Written | None:
    """Lock, read, decide, write and commit, as one transaction of its own (or a savepoint
    of the caller's); returns what the batch changed, if anything."""
    own_transaction = not connection.in_atomic_block
    with contextlib.nullcontext() if own_transaction else transaction.atomic():
        connection.ensure_connection()
        raw = connection.connection
        with connection.wrap_database_errors:
            try:
                return _run(raw, auction_id, batch, own_transaction)
            except BaseException:
                if own_transaction and raw.info.transaction_status != _IDLE:
                    with contextlib.suppress(psycopg.Error):
                        raw.execute("ROLLBACK")
                raise


_IDLE = psycopg.pq.TransactionStatus.IDLE


def _run(
    raw: psycopg.Connection[Any], auction_id: UUID, batch: _Batch, own_transaction: bool
) -> _Written | None:
    indexes = batch.undecided()
    keyed = [i for i in indexes if batch.offers[i].request_id is not None]
    # Plain psycopg cursors bind on the server and can be prepared; Django's bind on the
    # client.
    # Results are fetched once the pipeline block has ended: its single sync sends all and
    # waits once (fetching inside would sync, and leaving the block would sync again).
    with psycopg.Cursor(raw) as lock, psycopg.Cursor(raw) as stored:
        try:
            with raw.pipeline():
                if own_transaction:
                    raw.execute("BEGIN")
                lock.execute(_LOCK_SQL, {"auction_id": auction_id}, prepare=True)
                if keyed:
                    stored.execute(_STORED_SQL, _keys(batch, keyed), prepare=True)
        except psycopg.OperationalError as exc:
            # A pooled connection the server has dropped (it restarted) fails its first
            # round trip: this transaction only read, so it may go again on a new one.
            if own_transaction and raw.broken:
                raise _StaleConnection() from exc
            raise
        row = lock.fetchone()
        found = stored.fetchall() if keyed else []
    if row is None:
        for index in indexes:
            batch.results[index] = OfferResult(Rejected(Code.NOT_FOUND))
        if own_transaction:
            raw.execute("COMMIT")
        return None
    state, version, item_name, now = _state(row)
    _answer_repeats(batch, _replies(found))
    decided = _first_of_each_key(batch)
    decision = rules_decide(state, [batch.offers[i] for i in decided], now=now)
    for index, outcome in zip(decided, decision.outcomes, strict=True):
        batch.results[index] = OfferResult(outcome, extended=decision.extended)
    _copy_to_repeats(batch, decided)
    params = _write_params(auction_id, version, now, decision, batch, decided)
    if not decision.changed and not params["outcome_bidders"]:
        if own_transaction:
            raw.execute("COMMIT")  # nothing to write: release the lock
        return None
    notices = _notices(auction_id, state.creator_id, item_name, decision)
    watchers = _watchers(decision)
    try:
        with psycopg.Cursor(raw) as write, psycopg.Cursor(raw) as record:
            with raw.pipeline():
                write.execute(_WRITE_SQL, params, prepare=True)
                if notices or watchers:
                    # Only if the write above moved the version on: see RECORD_SQL.
                    guarded = record_params(
                        notices,
                        at=now,
                        watchers=watchers,
                        watch_auction=auction_id,
                        guard_auction=auction_id,
                        guard_version=version + 1,
                    )
                    record.execute(RECORD_SQL, guarded, prepare=True)
                if own_transaction:
                    raw.execute("COMMIT")
            ok = write.fetchone()
            notified = recorded(record.fetchall()) if notices else []
    except psycopg.errors.UniqueViolation as exc:
        # Another auction's batch stored one of these request ids first: answer from it.
        if exc.diag.constraint_name == "bid_request_unique":
            raise _Retry() from exc
        raise
    if not ok or not ok[0]:
        raise _Retry()  # the row changed although we held its lock: decide again
    return _Written(decision, now, notified) if decision.changed else None


def _notices(auction_id: UUID, seller_id: UUID, item_name: str, decision: Decision) -> list[Notice]:
    state = decision.state
    if decision.bought:
        assert state.winner is not None
        return closing_notices(
            auction_id=auction_id,
            item_name=item_name,
            seller_id=seller_id,
            winner_id=state.winner.id,
            final_price=state.final_price,
            bidder_ids=(),  # buy it now is offered only before the first bid
        )
    return outbid_notices(
        auction_id=auction_id,
        item_name=item_name,
        outbid=[person.id for person in decision.outbid],
        price=state.current_price,
        min_next_bid=state.min_next_bid,
    )


def _watchers(decision: Decision) -> list[UUID]:
    """Bidding on an auction watches it (spec §8): everyone who bid in this decision."""
    return sorted({bid.bidder.id for bid in decision.bids if not bid.auto})


def _state(row: tuple[Any, ...]) -> tuple[AuctionState, int, str, datetime]:
    (
        status, creator_id, end_time, max_end_time, extension_seconds, starting_price,
        min_increment, increments, reserve_price, buy_now_price, current_price, bid_count,
        leader_id, leader_max, leader_max_at, highest_bid_id, last_seq, version, _item_id,
        leader_name, item_name, now,
    ) = row  # fmt: skip
    state = AuctionState(
        status=status,
        creator_id=creator_id,
        end_time=end_time,
        max_end_time=max_end_time,
        extension_seconds=extension_seconds,
        starting_price=starting_price,
        increments=increments_of(min_increment, _json(increments)),
        reserve_price=reserve_price,
        buy_now_price=buy_now_price,
        current_price=current_price,
        bid_count=bid_count,
        leader=Person(leader_id, leader_name) if leader_id else None,
        leader_max=leader_max,
        leader_max_at=leader_max_at,
        highest_bid_id=highest_bid_id,
        last_seq=last_seq,
    )
    return state, version, item_name, now


def _keys(batch: _Batch, indexes: Sequence[int]) -> dict[str, list[Any]]:
    return {
        "bidders": [batch.offers[i].bidder.id for i in indexes],
        "request_ids": [batch.offers[i].request_id for i in indexes],
    }


def _stored_outcomes(batch: _Batch, indexes: Sequence[int]) -> dict[tuple[UUID, str], Outcome]:
    keyed = [i for i in indexes if batch.offers[i].request_id is not None]
    if not keyed:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_STORED_SQL, _keys(batch, keyed))
        return _replies(cursor.fetchall())


def _stored_outcomes_fresh(
    batch: _Batch, indexes: Sequence[int]
) -> dict[tuple[UUID, str], Outcome]:
    """_stored_outcomes, once more on a new connection if the pooled one was dropped."""
    try:
        return _stored_outcomes(batch, indexes)
    except OperationalError:
        raw = connection.connection
        if connection.in_atomic_block or raw is None or not raw.broken:
            raise
        connection.close()
        return _stored_outcomes(batch, indexes)


def _replies(rows: Sequence[tuple[Any, ...]]) -> dict[tuple[UUID, str], Outcome]:
    replies: dict[tuple[UUID, str], Outcome] = {}
    for bidder_id, request_id, code, reply in rows:
        replies[(bidder_id, request_id)] = _outcome_from_reply(code, _json(reply))
    return replies


def _answer_repeats(batch: _Batch, stored: dict[tuple[UUID, str], Outcome]) -> None:
    """Offers whose (bidder, request_id) already has an outcome get it again."""
    for index in batch.undecided():
        offer = batch.offers[index]
        if offer.request_id is not None and (offer.bidder.id, offer.request_id) in stored:
            outcome = stored[(offer.bidder.id, offer.request_id)]
            batch.results[index] = OfferResult(outcome, replayed=True)


def _first_of_each_key(batch: _Batch) -> list[int]:
    """The undecided offers, without later repeats of a (bidder, request_id) in the batch."""
    seen: set[tuple[UUID, str]] = set()
    first = []
    for index in batch.undecided():
        offer = batch.offers[index]
        if offer.request_id is not None:
            key = (offer.bidder.id, offer.request_id)
            if key in seen:
                continue
            seen.add(key)
        first.append(index)
    return first


def _copy_to_repeats(batch: _Batch, decided: Sequence[int]) -> None:
    """Later repeats of a (bidder, request_id) in the batch get its first offer's outcome."""
    by_key = {
        (batch.offers[i].bidder.id, batch.offers[i].request_id): batch.results[i]
        for i in decided
        if batch.offers[i].request_id is not None
    }
    for index in batch.undecided():
        offer = batch.offers[index]
        batch.results[index] = OfferResult(
            by_key[(offer.bidder.id, offer.request_id)].outcome, replayed=True
        )


def _write_params(
    auction_id: UUID,
    version: int,
    now: datetime,
    decision: Decision,
    batch: _Batch,
    decided: Sequence[int],
) -> dict[str, Any]:
    state = decision.state
    stored = [
        (batch.offers[index], outcome)
        for index, outcome in zip(decided, decision.outcomes, strict=True)
        if batch.offers[index].request_id is not None
    ]
    return {
        "auction_id": auction_id,
        "version": version,
        "now": now,
        "changed": decision.changed,
        "status": state.status,
        "current_price": state.current_price,
        "bid_count": state.bid_count,
        "leader_id": state.leader.id if state.leader else None,
        "highest_bid_id": state.highest_bid_id,
        "leader_max": state.leader_max,
        "leader_max_at": state.leader_max_at,
        "end_time": state.end_time,
        "last_seq": state.last_seq,
        "winner_id": state.winner.id if state.winner else None,
        "final_price": state.final_price,
        "ended_at": state.ended_at,
        "bid_ids": [bid.id for bid in decision.bids],
        "bid_bidders": [bid.bidder.id for bid in decision.bids],
        "bid_amounts": [bid.amount for bid in decision.bids],
        "bid_autos": [bid.auto for bid in decision.bids],
        "bid_request_ids": [bid.request_id for bid in decision.bids],
        "bid_seqs": [bid.seq for bid in decision.bids],
        "event_ids": [event.id for event in decision.events],
        "event_seqs": [event.seq for event in decision.events],
        "event_types": [event.type for event in decision.events],
        "event_payloads": [json.dumps(event.data) for event in decision.events],
        "outcome_bidders": [offer.bidder.id for offer, _ in stored],
        "outcome_request_ids": [offer.request_id for offer, _ in stored],
        "outcome_codes": [_code(outcome) for _, outcome in stored],
        "outcome_replies": [json.dumps(outcome.as_data()) for _, outcome in stored],
    }


def _code(outcome: Outcome) -> str:
    return BidRequest.ACCEPTED if isinstance(outcome, Accepted) else str(outcome.code)


def _outcome_from_reply(code: str, reply: dict[str, Any]) -> Outcome:
    if code != BidRequest.ACCEPTED:
        prices = (_money(reply.get("current_price")), _money(reply.get("min_next_bid")))
        return Rejected(Code(code), *prices)
    return Accepted(
        bid_id=UUID(reply["bid_id"]),
        amount=Decimal(reply["amount"]),
        seq=reply["seq"],
        current_price=Decimal(reply["current_price"]),
        min_next_bid=Decimal(reply["min_next_bid"]),
        end_time=datetime.fromisoformat(reply["end_time"]),
        leading=reply["leading"],
        max_amount=Decimal(reply["max_amount"]),
        bought=reply.get("bought", False),
    )


def _json(value: Any) -> Any:
    # Django has psycopg hand jsonb over as text (its JSONField decodes it).
    return json.loads(value) if isinstance(value, str) else value


def _money(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _after_commit(auction_id: UUID, written: _Written) -> Callable[[], None]:
    """What publishes the events and moves the schedule once the batch has committed (in
    a caller's transaction: once that commits). The publisher is the one registered now."""
    decision = written.decision
    events = [
        AuctionEvent(
            id=event.id,
            auction_id=auction_id,
            seq=event.seq,
            type=event.type,
            payload=event.data,
            created_at=written.now,
        )
        for event in decision.events
    ]
    publications = [
        publish
        for publish in (
            events_publication(events),
            notifications.publication(written.notifications),
        )
        if publish is not None
    ]

    def after() -> None:
        for publish in publications:
            if connection.in_atomic_block:  # the caller's transaction has not committed yet
                transaction.on_commit(publish)
            else:
                publish()
        if decision.extended:
            schedule_end_moved(auction_id, decision.state.end_time)
        if decision.bought:
            schedule_remove(auction_id)

    return after


# The process's batcher: every bid and buy-it-now of this process goes through it.
batcher = OfferBatcher(
    offers_decide, max_batch=settings.BID_BATCH_MAX, threads=settings.BID_DECISION_THREADS
)
