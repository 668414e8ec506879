"""Auctions start and end on time, exactly once, with real Celery worker and beat processes."""

import os
import signal
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Count, Q
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from auction_site.periodic_tasks import periodic_tasks_install
from auctions.models import Auction, AuctionEvent, AuctionStatus
from auctions.schedule_index import claimed_key
from auctions.services import auction_create
from bidding.services import bid_place
from infra.redis import redis_client
from tests.factories import UserFactory
from tests.servers import CELERY, Server, server_environment, spawn

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def scheduler(tmp_path) -> Iterator[Callable[..., list[Server]]]:
    """Start `workers` Celery workers and `beats` beat processes (a misconfiguration with 2)."""
    processes: list[Server] = []
    env = server_environment(LOG_LEVEL=os.environ.get("SCHED_LOG", "WARNING"))

    def run(*, workers: int = 1, beats: int = 1, reconcile_every: int = 30) -> list[Server]:
        started = len(processes)
        periodic_tasks_install(IntervalSchedule, PeriodicTask)
        reconcile = PeriodicTask.objects.get(task="auctions.tasks.reconcile_schedule")
        reconcile.interval, _ = IntervalSchedule.objects.get_or_create(
            every=reconcile_every, period="seconds"
        )
        reconcile.save()
        for _ in range(workers):
            name = f"worker-{len(processes)}"
            command = [
                *CELERY,
                "worker",
                "--concurrency=2",
                f"--hostname=test-{name}@%h",
                "--without-gossip",
                "--without-mingle",
            ]
            processes.append(spawn(name, command, env, tmp_path))
        for n in range(beats):
            command = [
                *CELERY,
                "beat",
                "--scheduler=django_celery_beat.schedulers:DatabaseScheduler",
                "--max-interval=1",
                f"--pidfile={tmp_path}/beat-{n}.pid",
            ]
            processes.append(spawn(f"beat-{n}", command, env, tmp_path))
        return processes[started:]

    yield run
    for process in processes:
        process.stop()


def wait_for(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"not done within {timeout} s")


def all_closed(auctions: list[Auction]) -> Callable[[], bool]:
    ids = [a.id for a in auctions]
    return lambda: not Auction.objects.filter(id__in=ids, status=AuctionStatus.ACTIVE).exists()


def ending_works(seller) -> None:
    """Wait until an auction ending in a second has ended: the processes are at work."""
    soon = timezone.now() + timedelta(seconds=1)
    warm = auction_create(creator=seller, item_name="First", starting_price=1, end_time=soon)
    wait_for(all_closed([warm]), timeout=45)


def ended_once(auctions: list[Auction]) -> None:
    counts = (
        Auction.objects.filter(id__in=[a.id for a in auctions])
        .annotate(ended=Count("events", filter=Q(events__type="auction_ended")))
        .values_list("ended", flat=True)
    )
    assert sorted(set(counts)) == [1], "every auction ends exactly once"


def lateness_ms(auctions: list[Auction]) -> list[float]:
    ends = {a.id: a.end_time for a in Auction.objects.filter(id__in=[a.id for a in auctions])}
    events = AuctionEvent.objects.filter(auction_id__in=ends, type="auction_ended")
    return sorted((e.created_at - ends[e.auction_id]).total_seconds() * 1000 for e in events)


def test_a_hundred_auctions_ending_in_one_second_each_end_once(scheduler):
    sellers = [UserFactory() for _ in range(5)]
    bidder, other = UserFactory(), UserFactory()
    end = timezone.now() + timedelta(seconds=6)
    auctions = []
    for n in range(100):
        auction = auction_create(
            creator=sellers[n % 5],
            item_name=f"Lot {n}",
            starting_price="10",
            reserve_price="20" if n % 10 == 0 else None,
            end_time=end + timedelta(milliseconds=7 * n),  # all within one second
        )
        auctions.append(auction)
    for auction in auctions[:20]:
        bid_place(auction_id=auction.id, bidder=bidder, amount="15")
    for auction in auctions[10:20]:
        bid_place(auction_id=auction.id, bidder=other, amount="16")
    scheduler(workers=2, beats=2)

    wait_for(all_closed(auctions), timeout=60)
    ended_once(auctions)
    late = lateness_ms(auctions)
    print(
        f"\n[closing] {len(late)} auctions, 2 workers, 2 beats: lateness p50 "
        f"{statistics.median(late):.0f} ms, p99 {late[int(len(late) * 0.99) - 1]:.0f} ms, "
        f"max {late[-1]:.0f} ms"
    )
    assert len(late) == len(auctions)
    assert late[0] >= 0, "never before the end time"
    # Ends are on time, not merely eventual: a few seconds at most on a loaded machine.
    assert late[-1] < 5000, f"an auction ended {late[-1]:.0f} ms after its end time"
    results = {
        auction.id: (auction.winner_id, auction.final_price)
        for auction in Auction.objects.filter(id__in=[a.id for a in auctions])
    }
    for n, auction in enumerate(auctions):
        highest = (bidder.id, Decimal("15.00")) if n < 10 else (other.id, Decimal("16.00"))
        reserve_met = n % 10 != 0  # every tenth auction has a reserve of 20
        expected = highest if n < 20 and reserve_met else (None, None)
        assert results[auction.id] == expected, (n, results[auction.id])


def test_the_safety_net_ends_active_auctions_after_redis_lost_the_schedule(scheduler, seller):
    end = timezone.now() + timedelta(seconds=3)
    auctions = [
        auction_create(creator=seller, item_name=f"Lot {n}", starting_price=1, end_time=end)
        for n in range(10)
    ]
    redis_client().flushdb()
    scheduler(workers=1, beats=1, reconcile_every=3)
    wait_for(all_closed(auctions), timeout=45)
    ended_once(auctions)


def test_a_late_bid_extends_the_end_and_the_auction_ends_at_the_new_time(scheduler, seller, alice):
    auction = auction_create(
        creator=seller, item_name="Lamp", starting_price=1, duration_seconds=3, extension_seconds=4
    )
    original_end = auction.end_time
    scheduler()
    # A bid late in the auction, once the clock is inside its last 2 seconds.
    wait_for(lambda: timezone.now() >= original_end - timedelta(seconds=2), timeout=5)
    accepted = bid_place(auction_id=auction.id, bidder=alice, amount=5)
    assert accepted.extended
    auction.refresh_from_db()
    new_end = auction.end_time
    assert new_end > original_end
    wait_for(all_closed([auction]), timeout=30)
    ended = AuctionEvent.objects.get(auction=auction, type="auction_ended")
    assert ended.created_at >= new_end
    assert ended.payload["winner"]["id"] == str(alice.id)


def test_extensions_stop_at_the_cap(scheduler, seller, alice, bob, settings):
    settings.AUCTION_MAX_EXTENSION_SECONDS = 2
    auction = auction_create(
        creator=seller, item_name="Lamp", starting_price=1, duration_seconds=2, extension_seconds=10
    )
    bid_place(auction_id=auction.id, bidder=alice, amount=5)
    auction.refresh_from_db()
    assert auction.end_time == auction.max_end_time
    scheduler()
    wait_for(all_closed([auction]), timeout=30)
    ended = AuctionEvent.objects.get(auction=auction, type="auction_ended")
    assert ended.created_at >= auction.max_end_time


def test_a_pending_auction_starts_at_its_start_time(scheduler, seller):
    start_time = timezone.now() + timedelta(seconds=3)
    auction = auction_create(
        creator=seller,
        item_name="Lamp",
        starting_price=1,
        start_time=start_time,
        duration_seconds=60,
    )
    assert auction.status == AuctionStatus.PENDING
    scheduler()
    wait_for(lambda: Auction.objects.get(id=auction.id).status == AuctionStatus.ACTIVE, timeout=30)
    started = AuctionEvent.objects.get(auction=auction, type="auction_started")
    assert started.created_at >= start_time


def test_after_redis_lost_the_schedule_auctions_end_on_time_without_the_reconcile(
    scheduler, seller
):
    """The index is rebuilt at the next dispatch (every second), not by the 30 s reconcile."""
    scheduler(workers=1, beats=1, reconcile_every=3600)
    ending_works(seller)  # beat and worker are up and dispatching
    end = timezone.now() + timedelta(seconds=4)
    auctions = [
        auction_create(creator=seller, item_name=f"Lot {n}", starting_price=1, end_time=end)
        for n in range(10)
    ]
    redis_client().flushdb()  # what a restart without persistence leaves
    wait_for(all_closed(auctions), timeout=30)
    ended_once(auctions)
    late = lateness_ms(auctions)
    print(
        f"\n[schedule lost] lateness ms: max {max(late):.0f}, median {statistics.median(late):.0f}"
    )
    assert max(late) < 2500, late


def test_after_a_redis_restart_auctions_end_within_a_second_of_their_time_or_of_redis(
    scheduler, seller
):
    """A real restart: broker, schedule and locks all gone for a moment (spec §10)."""
    from tests.e2e.conftest import RedisServer

    redis_server = RedisServer.from_environment()
    if redis_server is None:
        pytest.skip("needs the Redis that scripts/stack.py test starts")
    scheduler(workers=1, beats=1, reconcile_every=3600)
    ending_works(seller)
    start = timezone.now()
    auctions = [
        auction_create(
            creator=seller,
            item_name=f"Lot {n}",
            starting_price=1,
            end_time=start + timedelta(seconds=2 + n * 0.5),
        )
        for n in range(10)
    ]
    redis_server.stop()
    time.sleep(2.0)
    redis_server.start()
    back = timezone.now()
    wait_for(all_closed(auctions), timeout=60)
    ended_once(auctions)
    ends = {
        a.id: max(a.end_time, back) for a in Auction.objects.filter(id__in=[a.id for a in auctions])
    }
    events = AuctionEvent.objects.filter(auction_id__in=ends, type="auction_ended")
    late = sorted((e.created_at - ends[e.auction_id]).total_seconds() * 1000 for e in events)
    print(f"\n[redis restart] lateness after max(end, Redis back) ms: {[round(x) for x in late]}")
    assert max(late) < 1500, late  # goal: within a second (measured: 0.7 s at most)


def test_a_worker_killed_while_auctions_end_leaves_none_open_for_long(scheduler, seller):
    """The worker that holds the auctions' timed tasks is SIGKILLed just before they end;
    a worker started then ends each once, a few seconds late at most (OVERDUE_SECONDS)."""
    started = scheduler(workers=1, beats=1, reconcile_every=3600)
    (doomed,) = [p for p in started if p.name.startswith("worker")]
    ending_works(seller)  # the first worker is up and ending auctions
    end = timezone.now() + timedelta(seconds=3)
    auctions = [
        auction_create(creator=seller, item_name=f"Lot {n}", starting_price=1, end_time=end)
        for n in range(20)
    ]
    ids = {str(a.id) for a in auctions}
    # The doomed worker, the only one, has claimed them and holds their timed tasks.
    claimed = lambda: {m.decode() for m in redis_client().zrange(claimed_key("end"), 0, -1)}  # noqa: E731
    wait_for(lambda: ids <= claimed(), 10)
    time.sleep(0.3)
    os.killpg(doomed.process.pid, signal.SIGKILL)
    scheduler(workers=1, beats=0, reconcile_every=3600)  # the survivor
    wait_for(all_closed(auctions), timeout=60)
    ended_once(auctions)
    late = lateness_ms(auctions)
    print(
        f"\n[worker killed] lateness ms: max {max(late):.0f}, median {statistics.median(late):.0f}"
    )
    assert max(late) < 8000, sorted(late)[-3:]  # OVERDUE_SECONDS, a dispatch, a worker start
