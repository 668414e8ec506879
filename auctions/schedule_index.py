"""The schedule index: two Redis sorted sets of auction ids, scored by start and end time.

`schedule:start` and `schedule:end` hold auction ids scored by their start and end times
(Unix seconds). Members are added after the creating transaction commits, moved when soft
close extends an auction, and removed when it is cancelled. `due_claim` atomically moves
the members due within the next second into a "claimed" set, so two dispatchers never get
the same member; a claimed member not acknowledged in time (its worker died) goes back.
PostgreSQL stays the truth: the sets are an index that auctions.schedule_runs rebuilds.
"""

import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Literal
from uuid import UUID

from django.db import transaction

from auctions.models import Auction, AuctionStatus
from infra.redis import redis_client

logger = logging.getLogger(__name__)

Kind = Literal["start", "end"]
KINDS: tuple[Kind, ...] = ("start", "end")
# Claim what falls due this far ahead; the worker task waits for the exact time (ETA).
LOOKAHEAD_SECONDS = 1.0
# A claimed member not acknowledged within this long goes back into the schedule.
CLAIM_TIMEOUT_SECONDS = 60
CLAIM_BATCH = 500


def schedule_key(kind: Kind) -> str:
    return f"schedule:{kind}"


def claimed_key(kind: Kind) -> str:
    return f"schedule:{kind}:claimed"


# Present while the index in Redis is whole; a Redis that came back empty lacks it.
BUILT_KEY = "schedule:built"


def schedule_index_lost() -> bool:
    """True, once, when Redis lacks the index (it restarted without its data, or was
    flushed): the caller rebuilds it from PostgreSQL, or on failure calls
    `schedule_index_unbuilt`."""
    return bool(redis_client().set(BUILT_KEY, "built", nx=True))


def schedule_index_unbuilt() -> None:
    """The rebuild failed: the next dispatch tries again."""
    redis_client().delete(BUILT_KEY)


# KEYS: schedule, claimed. ARGV: due-by score, now, claim timeout, batch size.
# Returns the claimed members with their scores: [id1, score1, id2, score2, ...].
_CLAIM_DUE = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2] - ARGV[3])
for _, member in ipairs(expired) do
    redis.call('ZREM', KEYS[2], member)
    redis.call('ZADD', KEYS[1], 'NX', ARGV[2], member)
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[4])
for i = 1, #due, 2 do
    redis.call('ZREM', KEYS[1], due[i])
    redis.call('ZADD', KEYS[2], ARGV[2], due[i])
end
return due
"""


def _on_commit_safely(action: Callable[[], None], what: str) -> None:
    """Run `action` after commit; a Redis failure is logged (the reconcile sweep repairs it)."""

    def run() -> None:
        try:
            action()
        except Exception:
            logger.warning("schedule: %s failed; reconcile will repair it", what, exc_info=True)

    transaction.on_commit(run)


def schedule_auction(auction: Auction) -> None:
    """Index a new auction's start (if pending) and end, once its transaction commits."""
    start, end, auction_id = auction.start_time, auction.end_time, str(auction.id)
    pending = auction.status == AuctionStatus.PENDING

    def add() -> None:
        pipeline = redis_client().pipeline()
        if pending:
            pipeline.zadd(schedule_key("start"), {auction_id: start.timestamp()})
        pipeline.zadd(schedule_key("end"), {auction_id: end.timestamp()})
        pipeline.execute()

    _on_commit_safely(add, f"adding auction {auction_id}")


def schedule_end_moved(auction_id: UUID, end_time: datetime) -> None:
    """Soft close moved the end: move the member's score, once the bid commits."""

    def move() -> None:
        redis_client().zadd(schedule_key("end"), {str(auction_id): end_time.timestamp()})

    _on_commit_safely(move, f"moving the end of auction {auction_id}")


def schedule_remove(auction_id: UUID) -> None:
    """A cancelled auction leaves the schedule, once the cancel commits."""

    def remove() -> None:
        pipeline = redis_client().pipeline()
        for kind in KINDS:
            pipeline.zrem(schedule_key(kind), str(auction_id))
            pipeline.zrem(claimed_key(kind), str(auction_id))
        pipeline.execute()

    _on_commit_safely(remove, f"removing auction {auction_id}")


def due_claim(kind: Kind, *, now: float | None = None) -> list[tuple[str, float]]:
    """Atomically claim the members due by now + LOOKAHEAD: (auction id, due time) pairs."""
    now = time.time() if now is None else now
    flat = redis_client().eval(
        _CLAIM_DUE,
        2,
        schedule_key(kind),
        claimed_key(kind),
        now + LOOKAHEAD_SECONDS,
        now,
        CLAIM_TIMEOUT_SECONDS,
        CLAIM_BATCH,
    )
    return [
        (member.decode(), float(score)) for member, score in zip(flat[::2], flat[1::2], strict=True)
    ]


def claim_ack(kind: Kind, auction_id: str) -> None:
    redis_client().zrem(claimed_key(kind), auction_id)


def claim_release(kind: Kind, auction_id: str, due: float) -> None:
    """A claimed member whose task failed goes back into the schedule."""
    pipeline = redis_client().pipeline()
    pipeline.zrem(claimed_key(kind), auction_id)
    pipeline.zadd(schedule_key(kind), {auction_id: due}, nx=True)
    pipeline.execute()


def schedule_index_missing(kind: Kind, rows: Iterable[tuple[UUID, datetime]], batch: int) -> int:
    """ZADD NX every (id, time): members already there (or claimed) keep their score."""
    added = 0
    chunk: dict[str, float] = {}
    for auction_id, moment in rows:
        chunk[str(auction_id)] = moment.timestamp()
        if len(chunk) >= batch:
            added += _add_unclaimed(kind, chunk)
            chunk = {}
    if chunk:
        added += _add_unclaimed(kind, chunk)
    return added


def _add_unclaimed(kind: Kind, members: dict[str, float]) -> int:
    client = redis_client()
    pipeline = client.pipeline()
    for member in members:
        pipeline.zscore(claimed_key(kind), member)
    claimed = pipeline.execute()
    missing = {m: s for (m, s), c in zip(members.items(), claimed, strict=True) if c is None}
    if not missing:
        return 0
    return int(client.zadd(schedule_key(kind), missing, nx=True) or 0)
