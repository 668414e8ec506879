"""Bids on one hot auction: the old one-statement design against the batching engine.

    .venv/bin/python -m bench.bid_designs [--clients 1,8,32,128] [--seconds 6] [--fast-unsafe]

Re-runs itself under `scripts/stack.py --durable test` (throwaway PostgreSQL and Redis on
127.0.0.1; `--fast-unsafe` turns fsync off and says so in every output), migrates, then
for each bidder count runs both designs on a fresh auction of their own:

- `old-statement`: bench/original_bid_statement.py's statement with a request id, prepared,
  autocommit (one transaction per bid), each client on its own connection;
- `engine`: bidding.services.bid_place, every client a thread of this process, all sharing
  the process's batcher, as a web process's threads do.

Clients bid like people: two identities each, a little above the min next bid they last
heard, straight or maximum bids (`--max-share`), each with a fresh request id. Reported per
run: decided offers/s (accepted, or rejected by a bid rule), accepted/s, reply latency,
database round trips counted from libpq's protocol trace, the engine's batch sizes, and the
invariants checked in the database afterwards. Writes bench-results/bid_designs.json and .png.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from unittest import mock
from urllib.parse import urlsplit
from uuid import UUID

import psycopg

from auctions.errors import BID_REJECTION_CODES, Code
from bench.original_bid_statement import PLACE_BID_WITH_REQUEST_ID_SQL, SQL_ISO_FORMAT
from bench.stack import IN_STACK_MARK, REPO_ROOT, app_env, log, run_inside_stack

if TYPE_CHECKING:
    from accounts.models import User

DESIGNS = ("old-statement", "engine", "engine-no-notices")
# The engine as the product runs it, and the same with outbid notifications switched off
# (an A/B of what recording and publishing them costs; spec §8, issue 13).
ENGINE_DESIGNS = frozenset({"engine", "engine-no-notices"})
DEFAULT_DESIGNS = "old-statement,engine"
DEFAULT_CLIENTS = "1,8,32,128"
MAX_CLIENTS = 160  # one connection each for the old design; the stack allows 200
MAX_SECONDS = 10.0
DEFAULT_OUTPUT = REPO_ROOT / "bench-results" / "bid_designs.json"
STARTING_PRICE = Decimal("10.00")
CENT = Decimal("0.01")
ACCEPTED = "accepted"
# Answers of the bid rules. not_found and rate_limited are not decisions on the bid.
RULE_CODES = frozenset(BID_REJECTION_CODES - {Code.NOT_FOUND, Code.RATE_LIMITED})
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# The goals of the issue.
GOAL_RATIO_AT = 32
GOAL_RATIO = 3.0
GOAL_FLAT_FROM, GOAL_FLAT_TO = 8, 128


# --- The old statement, fitted to today's schema ---------------------------------------------

# Only the request-id claim had to change: bidding_bidrequest lost its amount, bid_id, seq,
# current_price, min_next_bid and end_time columns for one NOT NULL `reply` (migration
# bidding 0002). The claim stores the same values there, shaped as that migration shapes
# the rows it converts. The rest runs verbatim: `bidding_bid.auto` defaults to false and
# the new (auction, seq) uniqueness holds, as every accepted bid takes last_seq + 1.
_CLAIM_FOR_TODAY = f"""claim AS (
    INSERT INTO bidding_bidrequest
        (id, bidder_id, request_id, auction_id, outcome, reply, created_at)
    SELECT gen_random_uuid(), %(bidder_id)s::uuid, %(request_id)s::text, id,
           COALESCE(rejection, 'accepted'),
           CASE WHEN rejection IS NULL THEN jsonb_build_object(
                    'bid_id', %(bid_id)s::uuid::text,
                    'amount', %(amount)s::numeric::text,
                    'seq', last_seq + 1,
                    'current_price', %(amount)s::numeric::text,
                    'min_next_bid', (%(amount)s::numeric + min_increment)::text,
                    'end_time', to_char(COALESCE(extended_end_time, end_time) AT TIME ZONE 'UTC',
                                        '{SQL_ISO_FORMAT}'),
                    'leading', true,
                    'max_amount', %(amount)s::numeric::text)
                ELSE jsonb_build_object('current_price', current_price::text,
                                        'min_next_bid', min_next_bid::text)
           END,
           decided_at
    FROM decision
    ON CONFLICT (bidder_id, request_id) DO NOTHING
    RETURNING 1
),"""


def _old_statement_for_today(sql: str) -> str:
    head, rest = sql.split("claim AS (", 1)
    _claim, tail = rest.split("RETURNING 1\n),", 1)
    return head + _CLAIM_FOR_TODAY + tail


OLD_STATEMENT = _old_statement_for_today(PLACE_BID_WITH_REQUEST_ID_SQL)


# --- Round trips, from libpq's protocol trace ------------------------------------------------

# libpq writes its trace through a stdio FILE it buffers; fflush(NULL) pushes every buffered
# line out, so a trace file can be read up to date at any quiet moment.
_LIBC = ctypes.CDLL(None)


class TraceFiles:
    """A libpq trace file per connection (one `F`/`B` line per protocol message)."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.name = name
        self._lock = threading.Lock()
        self._files: list[Path] = []

    def start(self, pgconn: psycopg.pq.abc.PGconn) -> int:
        """Trace `pgconn` from now on; returns the file's descriptor (the FILE owns it)."""
        with self._lock:
            path = self.directory / f"{self.name}-{len(self._files):04d}.trace"
            self._files.append(path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        pgconn.trace(fd)
        pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        return fd

    def mark(self) -> dict[Path, int]:
        """Where each file ends now: a run reads what comes after."""
        _LIBC.fflush(None)
        with self._lock:
            return {path: path.stat().st_size for path in self._files}

    def lines_since(self, marks: dict[Path, int]) -> Iterator[Iterator[str]]:
        """Each connection's trace lines since `marks` (all of those opened since)."""
        _LIBC.fflush(None)
        with self._lock:
            files = list(self._files)
        for path in files:
            with path.open(errors="replace") as trace:
                trace.seek(marks.get(path, 0))
                yield iter(trace)


@dataclass
class RoundTrips:
    """Round trips: each time the client sent one or more messages, then waited for an answer."""

    total: int = 0
    messages_sent: int = 0
    # Per transaction, for the engine (a transaction starts with an F message naming BEGIN).
    per_transaction: Counter[int] = field(default_factory=Counter)

    def add_connection(self, lines: Iterator[str]) -> None:
        sending = False
        current: int | None = None
        for line in lines:
            if line.startswith("F\t"):
                self.messages_sent += 1
                if _names_begin(line):
                    if current is not None:
                        self.per_transaction[current] += 1
                    current = 0
                sending = True
            elif line.startswith("B\t") and sending:
                # The first answer after the client's messages: one wait for the server.
                sending = False
                self.total += 1
                if current is not None:
                    current += 1
        if current is not None:
            self.per_transaction[current] += 1


def _names_begin(line: str) -> bool:
    parts = line.split("\t", 3)
    return len(parts) > 3 and parts[2] in ("Parse", "Query") and '"BEGIN"' in parts[3]


def round_trips(traces: TraceFiles, marks: dict[Path, int]) -> RoundTrips:
    counted = RoundTrips()
    for lines in traces.lines_since(marks):
        counted.add_connection(lines)
    return counted


# --- Clients ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """One offer's answer: `accepted` or a code, and what the client learns from it."""

    code: str
    min_next_bid: Decimal | None = None
    bid_id: UUID | None = None
    leading: bool = False

    @property
    def decided(self) -> bool:
        return self.code == ACCEPTED or self.code in RULE_CODES


class Client(Protocol):
    """One bidder's side of a design: two identities, one offer at a time."""

    identities: tuple[User, User]
    # The old statement knows no maximum bids: its clients bid straight only.
    max_bids: bool

    def place(self, me: int, amount: Decimal, as_max: bool, request_id: str) -> Reply: ...

    def close(self) -> None: ...


class OldStatementClient:
    """The statement on a connection of its own, prepared, autocommit: a transaction a bid."""

    max_bids = False

    def __init__(
        self,
        conninfo: str,
        auction_id: UUID,
        identities: tuple[User, User],
        traces: TraceFiles | None,
    ) -> None:
        self.auction_id = auction_id
        self.identities = identities
        self.conn: psycopg.Connection[tuple[Any, ...]] = psycopg.connect(conninfo, autocommit=True)
        self.cursor = self.conn.cursor()
        # Prepare before the clock runs (an auction that does not exist: nothing written),
        # so the measured round trips are those of a bid, not of preparing.
        nowhere = self._params(uuid.uuid4(), 0, STARTING_PRICE, "-")
        self.cursor.execute(OLD_STATEMENT, nowhere, prepare=True)
        self.cursor.fetchall()
        self._trace_fd = traces.start(self.conn.pgconn) if traces else None

    def _params(
        self, auction_id: UUID, me: int, amount: Decimal, request_id: str
    ) -> dict[str, Any]:
        user = self.identities[me]
        return {
            "auction_id": auction_id,
            "bidder_id": user.id,
            "bidder_name": user.username,
            "amount": amount,
            "bid_id": uuid.uuid4(),
            "request_id": request_id,
        }

    def place(self, me: int, amount: Decimal, as_max: bool, request_id: str) -> Reply:
        params = self._params(self.auction_id, me, amount, request_id)
        self.cursor.execute(OLD_STATEMENT, params, prepare=True)
        row = self.cursor.fetchone()
        if row is None:
            return Reply("no_row")
        rejection, _price, min_next_bid, _seq, next_min_next_bid = row[:5]
        if row[7]:  # a repeated request id (never, with fresh ones): not a decision
            return Reply("duplicate")
        if rejection is not None:
            return Reply(rejection, min_next_bid)
        return Reply(ACCEPTED, next_min_next_bid, params["bid_id"], leading=True)

    def close(self) -> None:
        if self._trace_fd is not None:
            self.conn.pgconn.untrace()  # flushes the trace; the FILE is not used again
            os.close(self._trace_fd)
        self.conn.close()


class EngineClient:
    """A thread calling the product's bid_place, as a web process's threads do."""

    max_bids = True

    def __init__(self, auction_id: UUID, identities: tuple[User, User]) -> None:
        self.auction_id = auction_id
        self.identities = identities

    def place(self, me: int, amount: Decimal, as_max: bool, request_id: str) -> Reply:
        from auctions.errors import BidRejected
        from bidding.services import bid_place

        try:
            result = bid_place(
                auction_id=self.auction_id,
                bidder=self.identities[me],
                amount=None if as_max else amount,
                max_amount=amount if as_max else None,
                request_id=request_id,
            )
        except BidRejected as rejected:
            heard = rejected.data.get("min_next_bid")
            return Reply(str(rejected.code), Decimal(heard) if heard else None)
        return Reply(ACCEPTED, result.min_next_bid, result.bid_id, result.leading)

    def close(self) -> None:
        pass


# --- One run ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    seconds: float
    max_offers: int  # per client and run
    max_share: float
    seed: int


@dataclass
class Tally:
    """What one client saw."""

    outcomes: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)  # of decided offers
    accepted_bids: list[tuple[UUID, UUID]] = field(default_factory=list)  # (bid, bidder)
    errors: Counter[str] = field(default_factory=Counter)
    started: float = 0.0
    finished: float = 0.0

    @property
    def offers(self) -> int:
        return sum(self.outcomes.values()) + sum(self.errors.values())


def bid_loop(client: Client, plan: Plan, seed: int, barrier: threading.Barrier) -> Tally:
    """Offer a little above the last min next bid heard, as soon as each answer is back.

    A client bids as the identity it does not believe to lead, so one client alone keeps
    bidding; a stale belief costs an already_highest (which is decided, by rule).
    """
    rng = random.Random(seed)
    tally = Tally()
    heard = STARTING_PRICE
    me = 0
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        return tally
    tally.started = time.monotonic()
    deadline = tally.started + plan.seconds
    while tally.offers < plan.max_offers and time.monotonic() < deadline:
        as_max = client.max_bids and rng.random() < plan.max_share
        amount = heard + CENT * rng.randint(0, 5)
        began = time.perf_counter()
        try:
            reply = client.place(me, amount, as_max, uuid.uuid4().hex)
        except Exception as exc:  # counted as undecided and shown, not lost in a thread
            tally.errors[f"{type(exc).__name__}: {str(exc)[:160]}"] += 1
            continue
        elapsed_ms = (time.perf_counter() - began) * 1000
        tally.outcomes[reply.code] += 1
        if reply.decided:
            tally.latencies_ms.append(elapsed_ms)
        if reply.code == ACCEPTED and reply.bid_id is not None:
            tally.accepted_bids.append((reply.bid_id, client.identities[me].id))
        if reply.min_next_bid is not None:
            heard = reply.min_next_bid
        if (reply.code == ACCEPTED and reply.leading) or reply.code == Code.ALREADY_HIGHEST:
            me = 1 - me
    tally.finished = time.monotonic()
    return tally


def drive(clients: Sequence[Client], plan: Plan) -> list[Tally]:
    """All clients at once, each on a thread of its own, released together."""
    barrier = threading.Barrier(len(clients))
    tallies: list[Tally] = [Tally() for _ in clients]

    def work(index: int) -> None:
        tallies[index] = bid_loop(clients[index], plan, plan.seed * 1000 + index, barrier)

    threads = [
        threading.Thread(target=work, args=(i,), name=f"client{i}") for i in range(len(clients))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tallies


def new_auction(seller: User, label: str) -> UUID:
    from auctions.services import auction_create

    auction = auction_create(
        creator=seller,
        starting_price=STARTING_PRICE,
        item_name=f"bench {label} {uuid.uuid4().hex[:8]}",
        min_increment=CENT,
        duration_seconds=24 * 3600,
    )
    return auction.id


def engine_warm_up(seller: User, identities: tuple[User, User]) -> None:
    """A few bids on an auction of their own: the batcher's connection is open and its
    statements prepared before the clock runs, as in a process that has been serving."""
    client = EngineClient(new_auction(seller, "warm-up"), identities)
    heard = STARTING_PRICE
    for index in range(4):
        reply = client.place(index % 2, heard, False, uuid.uuid4().hex)
        if reply.code != ACCEPTED or reply.min_next_bid is None:
            raise RuntimeError(f"warm-up bid not accepted: {reply}")
        heard = reply.min_next_bid


@dataclass
class Context:
    seller: User
    identities: list[tuple[User, User]]
    conninfo: str
    plan: Plan
    trace_dir: Path | None
    engine_traces: TraceFiles | None


def _no_notices(*args: object, **kwargs: object) -> list[object]:
    return []


def run_one(design: str, bidders: int, context: Context) -> dict[str, Any]:
    from bidding.services import batcher

    auction_id = new_auction(context.seller, f"{design} x{bidders}")
    identities = context.identities[:bidders]
    traces = context.engine_traces if design in ENGINE_DESIGNS else None
    if design not in ENGINE_DESIGNS and context.trace_dir is not None:
        traces = TraceFiles(context.trace_dir, f"old-x{bidders}")
    clients: list[Client] = []
    try:
        if design in ENGINE_DESIGNS:
            engine_warm_up(context.seller, context.identities[0])
            clients += [EngineClient(auction_id, pair) for pair in identities]
        else:
            for pair in identities:
                clients.append(OldStatementClient(context.conninfo, auction_id, pair, traces))
        load = os.getloadavg()[0]
        marks = traces.mark() if traces else {}
        batches_before = len(batcher.batch_sizes)
        with contextlib.ExitStack() as switches:
            if design == "engine-no-notices":
                switches.enter_context(mock.patch("bidding.services._notices", _no_notices))
            tallies = drive(clients, context.plan)
    finally:
        for client in clients:
            client.close()
    batch_sizes = batcher.batch_sizes[batches_before:] if design in ENGINE_DESIGNS else []
    counted = round_trips(traces, marks) if traces else None

    outcomes: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    accepted_bids: list[tuple[UUID, UUID]] = []
    for tally in tallies:
        outcomes.update(tally.outcomes)
        errors.update(tally.errors)
        latencies.extend(tally.latencies_ms)
        accepted_bids.extend(tally.accepted_bids)
    started = [t.started for t in tallies if t.started]
    elapsed = max(max((t.finished for t in tallies), default=0.0) - min(started, default=0.0), 1e-9)
    decided = {code: n for code, n in outcomes.items() if code == ACCEPTED or code in RULE_CODES}
    n_decided = sum(decided.values())
    accepted = outcomes[ACCEPTED]
    problems = check_invariants(auction_id, decided, accepted_bids, design)
    problems += [f"{n} offers failed: {error}" for error, n in errors.most_common(3)]
    offers = sum(outcomes.values()) + sum(errors.values())
    if n_decided != offers:
        problems.append(f"{offers - n_decided} of {offers} offers got no decision")
    run: dict[str, Any] = {
        "design": design,
        "bidders": bidders,
        "seconds": round(elapsed, 3),
        "offers": offers,
        "decided": n_decided,
        "accepted": accepted,
        "decided_per_s": round(n_decided / elapsed, 1),
        "accepted_per_s": round(accepted / elapsed, 1),
        "outcomes": dict(outcomes.most_common()),
        "errors": dict(errors.most_common(5)),
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "max_share": context.plan.max_share if design in ENGINE_DESIGNS else 0.0,
        "invariants_ok": not problems,
        "problems": problems[:20],
        "loadavg_1m_before": round(load, 2),
        "auction_id": str(auction_id),
    }
    if counted is not None:
        units = len(batch_sizes) if design in ENGINE_DESIGNS else n_decided
        run["round_trips"] = {
            "per": "batch" if design in ENGINE_DESIGNS else "bid",
            "total": counted.total,
            "messages_sent": counted.messages_sent,
            "per_unit": round(counted.total / units, 3) if units else None,
            "per_decided_offer": round(counted.total / n_decided, 3) if n_decided else None,
        }
        if design in ENGINE_DESIGNS:
            run["round_trips"]["per_transaction"] = {
                str(k): v for k, v in sorted(counted.per_transaction.items())
            }
    if design in ENGINE_DESIGNS:
        run["batches"] = batch_stats(batch_sizes)
    return run


# --- Invariants ------------------------------------------------------------------------------


def check_invariants(
    auction_id: UUID, decided: dict[str, int], accepted_bids: list[tuple[UUID, UUID]], design: str
) -> list[str]:
    """What must hold after any interleaving; an empty list means all of it does."""
    from auctions.models import Auction, AuctionEvent
    from bidding.models import Bid, BidRequest

    problems: list[str] = []
    auction = Auction.objects.get(id=auction_id)
    bids = list(
        Bid.objects.filter(auction_id=auction_id)
        .order_by("seq")
        .values_list("id", "seq", "amount", "auto", "bidder_id")
    )
    events = list(
        AuctionEvent.objects.filter(auction_id=auction_id)
        .order_by("seq")
        .values_list("seq", "type", "payload")
    )
    if [seq for _, seq, *_ in bids] != list(range(1, len(bids) + 1)):
        problems.append("bid seqs are not 1..N")
    if [seq for seq, *_ in events] != list(range(1, len(events) + 1)):
        problems.append("event seqs are not 1..N")
    placed = {
        seq: str(payload.get("bid_id")) for seq, type_, payload in events if type_ == "bid_placed"
    }
    if placed != {seq: str(bid_id) for bid_id, seq, *_ in bids}:
        problems.append("bid_placed events do not match the bids seq for seq")
    previous: tuple[Any, ...] | None = None
    for bid in bids:
        _, seq, amount, auto, _ = bid
        if previous is None:
            if amount < auction.starting_price:
                problems.append(f"bid seq {seq}: {amount} below the starting price")
        elif amount < previous[2]:
            problems.append(f"bid seq {seq}: {amount} fell from {previous[2]}")
        elif amount == previous[2] and not (auto and not previous[3]):
            # Equal amounts only in a tie of maxes (rule 3): the bidder's bid at their max,
            # then the leader's automatic answer at the same amount.
            problems.append(f"bid seq {seq}: {amount} repeats seq {seq - 1} outside a tie")
        previous = bid
    if auction.last_seq != len(events) or auction.bid_count != len(bids):
        problems.append(
            f"auction last_seq {auction.last_seq} / bid_count {auction.bid_count}"
            f" != {len(events)} events / {len(bids)} bids"
        )
    if previous is not None and (
        auction.current_price != previous[2]
        or auction.highest_bid_id != previous[0]
        or auction.highest_bidder_id != previous[4]
    ):
        problems.append("auction's current price / highest bid / highest bidder != its last bid")
    owners = {bid_id: bidder_id for bid_id, _, _, _, bidder_id in bids}
    lost = [bid_id for bid_id, bidder_id in accepted_bids if owners.get(bid_id) != bidder_id]
    if lost:
        problems.append(f"{len(lost)} accepted replies name no bid of their bidder, e.g. {lost[0]}")
    if design == "old-statement" and len(bids) != decided.get(ACCEPTED, 0):
        problems.append(f"{len(bids)} bids for {decided.get(ACCEPTED, 0)} accepted replies")
    stored = Counter(
        BidRequest.objects.filter(auction_id=auction_id).values_list("outcome", flat=True)
    )
    if stored != Counter(decided):
        problems.append(f"stored outcomes {dict(stored)} != replies {decided}")
    return problems


# --- Figures ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def bucket(size: int) -> str:
    """Powers of two: 1, 2-3, 4-7, ... (the cap, 256, is a bucket of its own)."""
    low = 1 << (size.bit_length() - 1)
    high = 2 * low - 1
    return str(low) if low == high or size >= 256 else f"{low}-{high}"


def batch_stats(sizes: Sequence[int]) -> dict[str, Any]:
    if not sizes:
        return {"count": 0}
    histogram = Counter(bucket(size) for size in sizes)
    return {
        "count": len(sizes),
        "mean": round(sum(sizes) / len(sizes), 2),
        "p50": percentile(sizes, 0.50),
        "p90": percentile(sizes, 0.90),
        "max": max(sizes),
        "histogram": {
            b: histogram[b] for b in sorted(histogram, key=lambda b: int(b.split("-")[0]))
        },
    }


HEADER = (
    f"{'design':<19}{'bidders':>8}{'decided/s':>11}{'accepted/s':>12}{'p50 ms':>9}{'p99 ms':>9}"
    f"{'round trips':>16}{'batch mean/p50/p90/max':>25}  invariants"
)


def row_text(run: dict[str, Any]) -> str:
    trips = run.get("round_trips")
    trips_text = f"{trips['per_unit']:.2f}/{trips['per']}" if trips and trips["per_unit"] else "-"
    batches = run.get("batches")
    batches_text = "-"
    if batches and batches["count"]:
        batches_text = f"{batches['mean']:.1f}/{batches['p50']}/{batches['p90']}/{batches['max']}"
    ok = "OK" if run["invariants_ok"] else "VIOLATED: " + "; ".join(run["problems"][:3])
    return (
        f"{run['design']:<19}{run['bidders']:>8}{run['decided_per_s']:>11.0f}"
        f"{run['accepted_per_s']:>12.0f}{run['p50_ms']:>9.2f}{run['p99_ms']:>9.2f}"
        f"{trips_text:>16}{batches_text:>25}  {ok}"
    )


def goals(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's two goals, PASS or MISS (never asserted)."""
    rate = {(r["design"], r["bidders"]): r["decided_per_s"] for r in runs}
    results: list[dict[str, Any]] = []
    old, new = rate.get(("old-statement", GOAL_RATIO_AT)), rate.get(("engine", GOAL_RATIO_AT))
    goal = f"at {GOAL_RATIO_AT} bidders the engine decides >= {GOAL_RATIO:g}x today's bids/s"
    if old is None or new is None:
        results.append({"goal": goal, "status": "NOT MEASURED"})
    else:
        ratio = new / old if old else float("inf")
        results.append(
            {
                "goal": goal,
                "status": "PASS" if ratio >= GOAL_RATIO else "MISS",
                "value": f"engine {new:.0f}/s vs today's {old:.0f}/s = {ratio:.2f}x",
            }
        )
    goal = (
        f"the engine's decided bids/s does not fall from {GOAL_FLAT_FROM} to {GOAL_FLAT_TO}"
        " bidders (today's falls)"
    )
    low, high = rate.get(("engine", GOAL_FLAT_FROM)), rate.get(("engine", GOAL_FLAT_TO))
    if low is None or high is None:
        results.append({"goal": goal, "status": "NOT MEASURED"})
    else:
        value = f"engine {low:.0f}/s -> {high:.0f}/s"
        old_low, old_high = (
            rate.get(("old-statement", GOAL_FLAT_FROM)),
            rate.get(("old-statement", GOAL_FLAT_TO)),
        )
        if old_low is not None and old_high is not None:
            verdict = "falls" if old_high < old_low else "does not fall"
            value += f"; today's {old_low:.0f}/s -> {old_high:.0f}/s ({verdict})"
        results.append({"goal": goal, "status": "PASS" if high >= low else "MISS", "value": value})
    p99 = {(r["design"], r["bidders"]): r["p99_ms"] for r in runs}
    for bidders in sorted({b for d, b in p99 if d == "engine-no-notices"}):
        goal = f"at {bidders} bidders notifications add <= 10% to the bid p99"
        with_, without = p99.get(("engine", bidders)), p99.get(("engine-no-notices", bidders))
        if not with_ or not without:
            results.append({"goal": goal, "status": "NOT MEASURED"})
            continue
        ratio = with_ / without
        results.append(
            {
                "goal": goal,
                "status": "PASS" if ratio <= 1.10 else "MISS",
                "value": f"p99 {with_:.1f} ms with, {without:.1f} ms without = {ratio:.2f}x",
            }
        )
    return results


def plot(runs: Sequence[dict[str, Any]], label: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    counts = sorted({r["bidders"] for r in runs})
    for design in DESIGNS:
        points = sorted((r["bidders"], r["decided_per_s"]) for r in runs if r["design"] == design)
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", label=design)
    ax.set_xscale("log", base=2)
    ax.set_xticks(counts, [str(c) for c in counts])
    ax.set_xlabel("concurrent bidders on one auction")
    ax.set_ylabel("decided bids/s")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Bids decided per second ({label})")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --- Setup and main --------------------------------------------------------------------------


def django_setup() -> None:
    """The web processes' settings (production, no rate limit), then migrate."""
    os.environ.update(app_env())
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def bench_users(pairs: int) -> tuple[User, list[tuple[User, User]]]:
    from accounts.models import User

    names = ["bench-seller", *(f"bench-bidder-{i:03d}" for i in range(2 * pairs))]
    existing = {user.username for user in User.objects.filter(username__in=names)}
    User.objects.bulk_create(User(username=name) for name in names if name not in existing)
    users = {user.username: user for user in User.objects.filter(username__in=names)}
    bidders = [users[name] for name in names[1:]]
    return users["bench-seller"], [(bidders[2 * i], bidders[2 * i + 1]) for i in range(pairs)]


def server_settings() -> dict[str, str]:
    from django.db import connection

    names = ["fsync", "synchronous_commit", "full_page_writes", "server_version", "max_connections"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", [names])
        return dict(cursor.fetchall())


def checkpoint() -> None:
    """Each run starts with the WAL checkpointed, so none pays for another's dirty pages."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")


def trace_engine_connections(traces: TraceFiles) -> None:
    """Trace every database connection opened off the main thread: in this process only
    the batcher's threads open any (the client threads only wait on its futures)."""
    from django.db.backends.signals import connection_created

    def started(sender: object, connection: Any, **kwargs: object) -> None:
        if threading.current_thread() is not threading.main_thread():
            traces.start(connection.connection.pgconn)

    connection_created.connect(started, weak=False)


def parse_clients(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not counts or any(not 1 <= count <= MAX_CLIENTS for count in counts):
        raise argparse.ArgumentTypeError(f"bidder counts must be 1..{MAX_CLIENTS}")
    return counts


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bid_designs", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--clients",
        type=parse_clients,
        default=parse_clients(DEFAULT_CLIENTS),
        help=f"comma-separated concurrent bidder counts ({DEFAULT_CLIENTS})",
    )
    parser.add_argument("--seconds", type=float, default=6.0, help="per run (6, at most 10)")
    parser.add_argument(
        "--max-share",
        type=float,
        default=0.5,
        help="share of the engine's offers that are maximum bids (0.5)",
    )
    parser.add_argument("--max-offers", type=int, default=50_000, help="per client and run (50000)")
    parser.add_argument(
        "--designs",
        default=DEFAULT_DESIGNS,
        help=f"comma-separated, of {', '.join(DESIGNS)} ({DEFAULT_DESIGNS})",
    )
    parser.add_argument(
        "--fast-unsafe",
        action="store_true",
        help="PostgreSQL without fsync (not durable; every output says so)",
    )
    parser.add_argument(
        "--no-trace", action="store_true", help="do not trace the protocol (no round trips)"
    )
    parser.add_argument(
        "--keep-traces", action="store_true", help="keep the libpq trace files (path printed)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON; PNG beside it")
    args = parser.parse_args(argv)
    if not 0 < args.seconds <= MAX_SECONDS:
        parser.error(f"--seconds must be in (0, {MAX_SECONDS:g}]")
    if not 0 <= args.max_share <= 1:
        parser.error("--max-share must be in [0, 1]")
    if not 1 <= args.max_offers <= 1_000_000:
        parser.error("--max-offers must be in 1..1000000")
    args.designs = [name for name in args.designs.split(",") if name]
    unknown = set(args.designs) - set(DESIGNS)
    if unknown or not args.designs:
        parser.error(f"designs are {', '.join(DESIGNS)}")
    return args


def durability_label(pg: dict[str, str]) -> str:
    if pg.get("fsync") == "on" and pg.get("synchronous_commit") == "on":
        return "durable PostgreSQL"
    return (
        f"NOT DURABLE: --fast-unsafe, fsync={pg.get('fsync')},"
        f" synchronous_commit={pg.get('synchronous_commit')}"
    )


def run(args: argparse.Namespace) -> int:
    database_url = os.environ["DATABASE_URL"]
    if urlsplit(database_url).hostname not in LOOPBACK:
        log("refusing to load a database that is not on 127.0.0.1")
        return 2
    django_setup()
    pg = server_settings()
    seller, identities = bench_users(max(args.clients))
    trace_dir = None if args.no_trace else Path(tempfile.mkdtemp(prefix="bid-designs-trace-"))
    engine_traces = None
    if trace_dir is not None:
        engine_traces = TraceFiles(trace_dir, "engine")
        trace_engine_connections(engine_traces)
    plan = Plan(args.seconds, args.max_offers, args.max_share, args.seed)
    context = Context(seller, identities, database_url, plan, trace_dir, engine_traces)
    try:
        return measure(args, context, pg)
    finally:
        if trace_dir is not None and args.keep_traces:
            log(f"libpq traces kept in {trace_dir}")
        elif trace_dir is not None:
            shutil.rmtree(trace_dir, ignore_errors=True)


def measure(args: argparse.Namespace, context: Context, pg: dict[str, str]) -> int:
    from django.conf import settings
    from django.db import connections

    label = durability_label(pg)
    meta: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "postgres": pg,
        "durable": label == "durable PostgreSQL",
        "label": label,
        "seconds_per_run": args.seconds,
        "max_offers_per_client": args.max_offers,
        "max_share": args.max_share,
        "bid_batch_max": settings.BID_BATCH_MAX,
        "bid_decision_threads": settings.BID_DECISION_THREADS,
        "round_trips_traced": context.trace_dir is not None,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    print(f"{label}; {args.seconds:g} s a run; {os.cpu_count()} CPUs; max share {args.max_share}")
    print(HEADER, flush=True)
    runs = []
    # Designs alternate within each bidder count, so background load hits them alike.
    for bidders in args.clients:
        for design in args.designs:
            checkpoint()
            result = run_one(design, bidders, context)
            runs.append(result)
            print(row_text(result), flush=True)
    connections.close_all()
    for result in runs:
        if result.get("batches", {}).get("count"):
            trips = result.get("round_trips", {}).get("per_transaction")
            print(
                f"{result['design']} x{result['bidders']} batch sizes "
                f"{result['batches']['histogram']}"
                + (f"; round trips per transaction {trips}" if trips else "")
            )
    marks = goals(runs)
    for mark in marks:
        print(f"{mark['status']:<13}{mark['goal']}: {mark.get('value', '')} [{label}]")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"meta": meta, "runs": runs, "goals": marks}, indent=2))
    picture = args.output.with_suffix(".png")
    plot(runs, label, picture)
    print(f"results in {args.output} and {picture}")
    broken = [r for r in runs if not r["invariants_ok"]]
    return 1 if broken else 0


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if not os.environ.get(IN_STACK_MARK):
        return run_inside_stack(argv, durable=not args.fast_unsafe, module="bench.bid_designs")
    return run(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
