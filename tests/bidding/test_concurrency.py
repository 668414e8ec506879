"""Conflicting bids from many real threads (each with its own connection) keep every invariant."""

import itertools
import random
import threading
import time
from collections import Counter, defaultdict
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connections
from django.test import override_settings
from django.utils import timezone

from auctions.errors import BidRejected
from auctions.models import Auction, AuctionEvent
from bidding.models import Bid, BidRequest
from bidding.services import bid_place
from tests.factories import AuctionFactory, UserFactory

USERS = 8
THREADS_PER_USER = 2  # two threads per user race on the same request ids
SECONDS = 3.0
MAX_ATTEMPTS_PER_THREAD = 20_000
INCREMENT = Decimal("0.50")


def bidder_loop(auction_id, user, results, start_gate, stop_at, lock, with_request_ids):
    """Bid just above what we last heard, as fast as replies come.

    With request ids, a user's two threads reuse the same ids (and so race on them);
    without, the statement variant that claims nothing is the one under contention.
    """
    outcomes = []
    next_bid = Decimal("10.00")
    start_gate.wait()
    try:
        for attempt in range(MAX_ATTEMPTS_PER_THREAD):
            if time.monotonic() >= stop_at:
                break
            amount = next_bid + INCREMENT * random.randint(0, 2)
            request_id = f"{user.username}-{attempt}" if with_request_ids else None
            try:
                accepted = bid_place(
                    auction_id=auction_id, bidder=user, amount=amount, request_id=request_id
                )
            except BidRejected as rejected:
                outcomes.append((user.id, request_id, rejected.code, None))
                next_bid = Decimal(rejected.data.get("min_next_bid") or next_bid)
            else:
                outcomes.append((user.id, request_id, "accepted", accepted.bid_id))
                next_bid = accepted.min_next_bid
    finally:
        connections.close_all()
    with lock:
        results.extend(outcomes)


def run_bidders(auction: Auction, with_request_ids: bool) -> tuple[list, float]:
    users = [UserFactory() for _ in range(USERS)]
    results: list = []
    lock = threading.Lock()
    start_gate = threading.Barrier(USERS * THREADS_PER_USER)
    stop_at = time.monotonic() + SECONDS
    threads = [
        threading.Thread(
            target=bidder_loop,
            args=(auction.id, user, results, start_gate, stop_at, lock, with_request_ids),
        )
        for user in users
        for _ in range(THREADS_PER_USER)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SECONDS + 60)
    assert not any(thread.is_alive() for thread in threads)
    return results, time.monotonic() - started


def assert_invariants(auction: Auction, results: list) -> None:
    auction.refresh_from_db()
    bids = list(Bid.objects.filter(auction=auction).order_by("seq"))
    events = list(AuctionEvent.objects.filter(auction=auction).order_by("seq"))

    # Accepted amounts strictly increase in seq order, each by at least the increment.
    assert bids, "no bid was accepted"
    assert bids[0].amount >= auction.starting_price
    for previous, bid in itertools.pairwise(bids):
        assert bid.amount >= previous.amount + auction.min_increment, (previous, bid)
        assert bid.created_at >= previous.created_at
        assert bid.bidder_id != previous.bidder_id  # nobody outbid themselves

    # The auction's running state matches the highest accepted bid.
    last = bids[-1]
    assert auction.current_price == last.amount
    assert auction.highest_bidder_id == last.bidder_id
    assert auction.highest_bid_id == last.id
    assert auction.bid_count == len(bids)

    # Events: seq 1..N with no gap; every bid has its bid_placed event at its seq.
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert auction.last_seq == len(events)
    placed = {e.seq: e for e in events if e.type == "bid_placed"}
    assert sorted(placed) == [b.seq for b in bids]
    for bid in bids:
        assert placed[bid.seq].payload["bid_id"] == str(bid.id)
        assert Decimal(placed[bid.seq].payload["amount"]) == bid.amount
    for event in events:
        if event.type == "auction_extended":
            assert placed[event.seq - 1]  # always right after the bid that caused it

    # Every reply is true: accepted replies name exactly the stored bids, and a request
    # id never got two different outcomes.
    reported = {bid_id for *_, code, bid_id in results if code == "accepted"}
    assert reported == {b.id for b in bids}
    if not any(request_id for _, request_id, *_ in results):
        assert not BidRequest.objects.filter(auction=auction).exists()
        return
    by_request = defaultdict(set)
    for user_id, request_id, code, bid_id in results:
        by_request[(user_id, request_id)].add((code, bid_id))
    assert all(len(outcomes) == 1 for outcomes in by_request.values())
    assert BidRequest.objects.filter(auction=auction).count() == len(by_request)


def report(name: str, results: list, seconds: float) -> None:
    codes = Counter(code for *_, code, _ in results)
    accepted = codes.pop("accepted", 0)
    print(
        f"\n[{name}] {USERS * THREADS_PER_USER} threads, {seconds:.1f}s: "
        f"tried {len(results)} ({len(results) / seconds:.0f}/s), "
        f"accepted {accepted} ({accepted / seconds:.0f}/s), "
        f"rejected {sum(codes.values())} {dict(codes)}"
    )


# The per-user rate limit would turn most of this load away; it is tested on its own.
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@override_settings(BID_RATE_LIMIT=0)
@pytest.mark.parametrize("with_request_ids", [True, False], ids=["request-ids", "no-request-ids"])
def test_concurrent_conflicting_bids_keep_every_invariant(with_request_ids):
    auction = AuctionFactory(min_increment=INCREMENT)
    results, seconds = run_bidders(auction, with_request_ids)
    report("hot auction", results, seconds)
    assert_invariants(auction, results)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@override_settings(BID_RATE_LIMIT=0)
@pytest.mark.parametrize("with_request_ids", [True, False], ids=["request-ids", "no-request-ids"])
def test_concurrent_bids_in_the_soft_close_window_extend_within_the_cap(with_request_ids):
    end = timezone.now() + timedelta(seconds=1)
    auction = AuctionFactory(
        min_increment=INCREMENT,
        end_time=end,
        max_end_time=end + timedelta(seconds=1),
        extension_seconds=5,
    )
    results, seconds = run_bidders(auction, with_request_ids)
    report("soft close", results, seconds)
    assert_invariants(auction, results)
    auction.refresh_from_db()
    assert auction.end_time == auction.max_end_time  # extended up to the cap, no further
    last_bid = Bid.objects.filter(auction=auction).latest("seq")
    assert last_bid.created_at < auction.end_time
    assert any(code == "auction_ended" for *_, code, _ in results)
    assert AuctionEvent.objects.filter(auction=auction, type="auction_extended").exists()
