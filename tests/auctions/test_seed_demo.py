"""`manage.py seed_demo`: demo users, items and live auctions; running it again is safe."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import User
from auction_site.management.commands.seed_demo import DEMO_AUCTIONS
from auctions.models import OPEN_STATUSES, Auction, AuctionStatus, Item
from auctions.services import auction_close
from bidding.models import Bid

pytestmark = pytest.mark.django_db

DEMO_USERS = {
    "admin": "admin-demo-pass",
    "alice": "demo-pass-123",
    "bob": "demo-pass-123",
    "carol": "demo-pass-123",
}


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", "--demo-passwords", stdout=out, stderr=StringIO())
    return out.getvalue()


def counts() -> tuple[int, int, int, int]:
    return User.objects.count(), Item.objects.count(), Auction.objects.count(), Bid.objects.count()


def test_creates_the_demo_logins():
    seed()
    for username, password in DEMO_USERS.items():
        assert User.objects.get(username=username).check_password(password)
    admin = User.objects.get(username="admin")
    assert admin.is_staff and admin.is_superuser
    assert not User.objects.filter(username__in=["alice", "bob", "carol"], is_staff=True).exists()


def test_creates_live_auctions_of_every_kind_with_bids():
    seed()
    auctions = Auction.objects.select_related("creator")
    assert {auction.creator.username for auction in auctions} == {"alice", "bob", "carol"}
    active = [a for a in auctions if a.status == AuctionStatus.ACTIVE]
    pending = [a for a in auctions if a.status == AuctionStatus.PENDING]
    assert len(active) >= 3 and len(pending) == 1
    for auction in active:
        remaining = auction.end_time - auction.start_time
        assert timedelta(minutes=5) <= remaining <= timedelta(minutes=60)
    assert any(a.extension_seconds == 30 for a in active)
    assert any(a.reserve_price is not None for a in active)
    assert (
        timedelta(minutes=1) < pending[0].start_time - pending[0].created_at <= timedelta(minutes=3)
    )
    assert Bid.objects.exists()
    for auction in active:
        assert auction.bid_count == auction.bids.count()


def test_shows_a_maximum_bid_an_increment_table_and_buy_it_now():
    seed()
    watch = Auction.objects.get(item__name="Pocket watch")
    assert watch.increments is not None  # the standard table
    assert watch.highest_bidder.username == "bob"  # his max outlasted carol's bid
    assert watch.bids.filter(auto=True, bidder__username="bob").exists()
    assert watch.current_price < watch.leader_max
    book = Auction.objects.get(item__name="Signed first edition")
    assert book.buy_now_offered is not None


def test_running_twice_duplicates_nothing_and_does_not_fail():
    seed()
    before = counts()
    output = seed()
    assert counts() == before
    assert "0 auctions and 0 bids created now" in output


def test_a_second_run_reopens_only_finished_demo_auctions():
    seed()
    finished = Auction.objects.filter(status=AuctionStatus.ACTIVE).first()
    auction_close(auction_id=finished.id, early=True)
    items = Item.objects.count()
    seed()
    assert Item.objects.count() == items
    assert finished.item.auctions.filter(status__in=OPEN_STATUSES).count() == 1
    assert Auction.objects.filter(status__in=OPEN_STATUSES).count() == len(DEMO_AUCTIONS)


def test_prints_the_site_the_admin_and_the_logins(settings):
    settings.HOST = "127.0.0.2"
    settings.PORT = 8123
    output = seed()
    assert "http://127.0.0.2:8123/" in output
    assert "http://127.0.0.2:8123/admin/" in output
    for username, password in DEMO_USERS.items():
        assert username in output and password in output


def test_a_wildcard_host_is_printed_as_loopback(settings):
    settings.HOST = "0.0.0.0"
    settings.PORT = 8000
    assert "http://127.0.0.1:8000/admin/" in seed()


def test_existing_users_keep_their_passwords():
    User.objects.create_user(username="alice", password="alices-own-pass")
    output = seed()
    assert User.objects.get(username="alice").check_password("alices-own-pass")
    assert "existed already" in output
