"""The Redis schedule follows the database: added, moved, removed after commit; claimed once."""

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from auctions.models import Auction, AuctionEvent, AuctionStatus
from auctions.schedule_index import claim_release, due_claim, schedule_key
from auctions.schedule_runs import (
    overdue_run,
    schedule_reconcile,
    scheduled_end_run,
    scheduled_start_run,
)
from auctions.services import auction_cancel, auction_close, auction_create
from bidding.services import bid_place
from infra.locks import redis_lock
from infra.redis import redis_client
from tests.factories import AuctionFactory
from tests.scheduling.conftest import claimed, members

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_new_active_auction_is_scheduled_to_end(seller):
    auction = auction_create(
        creator=seller, item_name="Lamp", starting_price=1, duration_seconds=60
    )
    assert members("end") == {str(auction.id): pytest.approx(auction.end_time.timestamp())}
    assert members("start") == {}


def test_a_new_pending_auction_is_scheduled_to_start_and_end(seller):
    start = timezone.now() + timedelta(minutes=5)
    auction = auction_create(
        creator=seller,
        item_name="Lamp",
        starting_price=1,
        start_time=start,
        duration_seconds=60,
    )
    assert members("start") == {str(auction.id): pytest.approx(start.timestamp())}
    assert str(auction.id) in members("end")


def test_nothing_is_scheduled_when_the_transaction_rolls_back(seller):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        auction_create(creator=seller, item_name="Lamp", starting_price=1, duration_seconds=60)
        raise RuntimeError("roll back")
    assert members("end") == {}


def test_a_cancelled_auction_leaves_the_schedule(seller):
    auction = auction_create(
        creator=seller, item_name="Lamp", starting_price=1, duration_seconds=60
    )
    auction_cancel(auction_id=auction.id, actor=seller)
    assert members("end") == {}


def test_soft_close_moves_the_end_score(seller, alice):
    auction = auction_create(
        creator=seller, item_name="Lamp", starting_price=1, duration_seconds=5, extension_seconds=60
    )
    accepted = bid_place(auction_id=auction.id, bidder=alice, amount=1)
    assert accepted.extended
    auction.refresh_from_db()
    assert members("end")[str(auction.id)] == pytest.approx(auction.end_time.timestamp())


def test_due_members_are_claimed_once():
    client = redis_client()
    now = time.time()
    client.zadd(schedule_key("end"), {"due": now - 1, "soon": now + 0.5, "later": now + 60})
    first = dict(due_claim("end", now=now))
    second = dict(due_claim("end", now=now))
    assert set(first) == {"due", "soon"}
    assert second == {}
    assert set(members("end")) == {"later"}
    assert claimed("end") == {"due", "soon"}


def test_a_claim_not_acknowledged_in_time_goes_back():
    client = redis_client()
    now = time.time()
    client.zadd(schedule_key("end"), {"x": now - 1})
    assert dict(due_claim("end", now=now)) == {"x": pytest.approx(now - 1)}
    # 61 s later nobody acknowledged it: it is claimable again.
    assert set(dict(due_claim("end", now=now + 61))) == {"x"}


def test_a_released_claim_is_claimable_again():
    now = time.time()
    redis_client().zadd(schedule_key("end"), {"x": now - 1})
    due_claim("end", now=now)
    claim_release("end", "x", now - 1)
    assert claimed("end") == set()
    assert set(dict(due_claim("end", now=now))) == {"x"}


def test_an_auction_past_its_end_is_ended_once_with_one_event(seller, alice):
    auction = AuctionFactory(item__owner=seller, end_time=timezone.now() + timedelta(seconds=1))
    bid_place(auction_id=auction.id, bidder=alice, amount="10")
    assert scheduled_end_run(str(auction.id)) is True  # waits out the last second
    assert scheduled_end_run(str(auction.id)) is False
    auction.refresh_from_db()
    assert auction.status == AuctionStatus.ENDED
    assert auction.winner == alice
    assert AuctionEvent.objects.filter(auction=auction, type="auction_ended").count() == 1
    assert claimed("end") == set()


def test_an_auction_is_not_ended_before_its_end_time(seller):
    auction = AuctionFactory(item__owner=seller, end_time=timezone.now() + timedelta(minutes=5))
    assert scheduled_end_run(str(auction.id)) is False
    auction.refresh_from_db()
    assert auction.status == AuctionStatus.ACTIVE
    assert members("end") == {str(auction.id): pytest.approx(auction.end_time.timestamp())}


def test_ending_is_skipped_while_another_worker_holds_the_lock(seller):
    auction = AuctionFactory(item__owner=seller, end_time=timezone.now() - timedelta(seconds=1))
    with redis_lock(f"auction:end:{auction.id}") as held:
        assert held
        assert scheduled_end_run(str(auction.id)) is False
    auction.refresh_from_db()
    assert auction.status == AuctionStatus.ACTIVE
    assert scheduled_end_run(str(auction.id)) is True


def test_a_lock_is_released_only_by_its_owner():
    with redis_lock("auction:end:test", ttl_seconds=30) as held:
        assert held
        with redis_lock("auction:end:test") as second:
            assert not second
        assert redis_client().exists("auction:end:test")
    assert not redis_client().exists("auction:end:test")


def test_a_pending_auction_is_started_at_its_start_time(seller):
    auction = AuctionFactory(
        item__owner=seller,
        status=AuctionStatus.PENDING,
        start_time=timezone.now() - timedelta(seconds=1),
    )
    assert scheduled_start_run(str(auction.id)) is True
    assert scheduled_start_run(str(auction.id)) is False
    assert list(auction.events.values_list("type", flat=True)) == ["auction_started"]


def test_reconcile_rebuilds_the_schedule_and_ends_overdue_auctions(seller, alice):
    overdue = AuctionFactory(item__owner=seller)
    bid_place(auction_id=overdue.id, bidder=alice, amount="12")
    # Its end passed while nothing ran (the worker, beat and Redis were all away).
    Auction.objects.filter(id=overdue.id).update(end_time=timezone.now() - timedelta(seconds=5))
    upcoming = AuctionFactory(item__owner=seller, end_time=timezone.now() + timedelta(hours=1))
    pending = AuctionFactory(
        item__owner=seller,
        status=AuctionStatus.PENDING,
        start_time=timezone.now() + timedelta(minutes=10),
    )
    redis_client().flushdb()  # Redis lost everything
    counts = schedule_reconcile()
    assert counts["ended"] == 1
    overdue.refresh_from_db()
    assert overdue.status == AuctionStatus.ENDED
    assert overdue.final_price == Decimal("12.00")
    assert str(upcoming.id) in members("end")
    assert str(pending.id) in members("start")
    assert schedule_reconcile()["ended"] == 0  # idempotent


def test_closing_early_removes_the_auction_from_the_schedule(seller):
    auction = auction_create(
        creator=seller, item_name="Lamp", starting_price=1, duration_seconds=60
    )
    auction_close(auction_id=auction.id, early=True)
    assert members("end") == {}


def test_an_overdue_auction_is_ended_from_the_database_and_one_just_due_is_left(seller):
    """overdue_run: what lost its timed task (a killed worker) ends within seconds."""
    lost = AuctionFactory(item__owner=seller, end_time=timezone.now() + timedelta(minutes=5))
    just_due = AuctionFactory(item__owner=seller, end_time=timezone.now() + timedelta(minutes=5))
    now = timezone.now()
    Auction.objects.filter(id=lost.id).update(end_time=now - timedelta(seconds=5))
    Auction.objects.filter(id=just_due.id).update(end_time=now - timedelta(seconds=0.5))
    redis_client().flushdb()  # neither is in the schedule any more
    assert overdue_run() == {"started": 0, "ended": 1}
    lost.refresh_from_db()
    just_due.refresh_from_db()
    assert (lost.status, just_due.status) == (AuctionStatus.ENDED, AuctionStatus.ACTIVE)
