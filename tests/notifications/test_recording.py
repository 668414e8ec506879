"""Notifications are recorded with the change that causes them (spec §8): outbid by a bid
or by an automatic bid, the end of an auction, buy it now, ending soon; per-user seqs."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from auctions.errors import BidRejected
from auctions.models import Auction
from auctions.schedule_runs import ending_soon_notify
from auctions.services import auction_close
from bidding.services import batcher, bid_place, buy_now
from notifications.models import Inbox, Notification, Watch
from tests.factories import AuctionFactory, UserFactory

pytestmark = pytest.mark.django_db


def kinds(user) -> list[tuple[int, str]]:
    return list(Notification.objects.filter(user=user).order_by("seq").values_list("seq", "kind"))


def end_now(auction: Auction) -> None:
    Auction.objects.filter(id=auction.id).update(end_time=timezone.now())


class TestOutbid:
    def test_the_leader_outbid_by_a_bid_is_notified_once(self, auction, alice, bob):
        bid_place(auction_id=auction.id, bidder=alice, amount="10")
        bid_place(auction_id=auction.id, bidder=bob, amount="11")
        assert kinds(alice) == [(1, "outbid")]
        assert kinds(bob) == []
        note = Notification.objects.get(user=alice)
        assert note.auction_id == auction.id
        assert note.data["price"] == "11.00"
        assert note.data["item_name"] == auction.item.name
        assert note.data["url"] == f"/auctions/{auction.id}/"

    def test_a_bid_beaten_at_once_by_a_max_is_answered_not_notified(self, auction, alice, bob):
        bid_place(auction_id=auction.id, bidder=alice, amount="10", max_amount="50")
        bid_place(auction_id=auction.id, bidder=bob, amount="20")  # alice's max answers
        assert kinds(alice) == []
        assert kinds(bob) == []

    def test_a_max_overtaken_by_a_higher_max_is_outbid(self, auction, alice, bob):
        bid_place(auction_id=auction.id, bidder=alice, amount="10", max_amount="50")
        bid_place(auction_id=auction.id, bidder=bob, amount="20", max_amount="80")
        assert kinds(alice) == [(1, "outbid")]

    def test_seqs_count_per_user_across_auctions(self, seller, alice, bob):
        first, second = AuctionFactory(item__owner=seller), AuctionFactory(item__owner=seller)
        for auction in (first, second):
            bid_place(auction_id=auction.id, bidder=alice, amount="10")
            bid_place(auction_id=auction.id, bidder=bob, amount="11")
        bid_place(auction_id=first.id, bidder=alice, amount="12")
        assert kinds(alice) == [(1, "outbid"), (2, "outbid")]
        assert kinds(bob) == [(1, "outbid")]
        assert Inbox.objects.get(user=alice).last_seq == 2

    def test_a_raise_by_the_leader_notifies_nobody(self, auction, alice):
        bid_place(auction_id=auction.id, bidder=alice, amount="10", max_amount="20")
        bid_place(auction_id=auction.id, bidder=alice, max_amount="30")
        assert Notification.objects.count() == 0

    def test_a_rejected_bid_records_nothing(self, auction, alice, bob):
        bid_place(auction_id=auction.id, bidder=alice, amount="10")
        with pytest.raises(BidRejected):
            bid_place(auction_id=auction.id, bidder=bob, amount="5")
        assert Notification.objects.count() == 0
        assert not Watch.objects.filter(user=bob).exists()


class TestWatching:
    def test_bidding_watches_the_auction(self, auction, alice):
        bid_place(auction_id=auction.id, bidder=alice, amount="10")
        assert Watch.objects.filter(user=alice, auction=auction).count() == 1
        bid_place(auction_id=auction.id, bidder=alice, max_amount="20")
        assert Watch.objects.filter(user=alice, auction=auction).count() == 1


class TestEnd:
    def test_the_winner_the_seller_and_every_other_bidder_hear(self, auction, seller, alice, bob):
        carol = UserFactory()
        bid_place(auction_id=auction.id, bidder=alice, amount="10")
        bid_place(auction_id=auction.id, bidder=carol, amount="11")
        bid_place(auction_id=auction.id, bidder=bob, amount="12")
        end_now(auction)
        assert auction_close(auction_id=auction.id)
        assert kinds(bob) == [(1, "won")]
        assert kinds(seller) == [(1, "sold")]
        assert kinds(alice) == [(1, "outbid"), (2, "lost")]
        assert kinds(carol) == [(1, "outbid"), (2, "lost")]
        assert Notification.objects.get(user=bob).data["price"] == "12.00"

    def test_without_a_winner_only_the_seller_hears(self, seller, alice):
        auction = AuctionFactory(item__owner=seller, reserve_price="100")
        bid_place(auction_id=auction.id, bidder=alice, amount="10")
        end_now(auction)
        auction_close(auction_id=auction.id)
        assert kinds(seller) == [(1, "not_sold")]
        assert kinds(alice) == []

    def test_closing_twice_notifies_once(self, auction, seller, alice):
        bid_place(auction_id=auction.id, bidder=alice, amount="10")
        end_now(auction)
        auction_close(auction_id=auction.id)
        auction_close(auction_id=auction.id)
        assert kinds(seller) == [(1, "sold")]

    def test_buy_it_now_tells_the_buyer_and_the_seller(self, seller, alice):
        auction = AuctionFactory(item__owner=seller, buy_now_price="100")
        buy_now(auction_id=auction.id, buyer=alice)
        assert kinds(alice) == [(1, "won")]
        assert kinds(seller) == [(1, "sold")]
        assert Watch.objects.filter(user=alice, auction=auction).exists()


class TestEndingSoon:
    def test_each_watcher_hears_once_even_when_the_end_moves(self, seller, alice, bob):
        auction = AuctionFactory(item__owner=seller, end_time=timezone.now() + timedelta(minutes=5))
        Watch.objects.create(user=alice, auction=auction)
        bid_place(auction_id=auction.id, bidder=bob, amount="10")
        assert ending_soon_notify() == 2
        Auction.objects.filter(id=auction.id).update(end_time=timezone.now() + timedelta(minutes=6))
        assert ending_soon_notify() == 0
        assert kinds(alice) == [(1, "ending_soon")]
        assert kinds(bob) == [(1, "ending_soon")]

    def test_an_auction_far_from_its_end_is_left_alone(self, seller, alice):
        auction = AuctionFactory(item__owner=seller, end_time=timezone.now() + timedelta(days=1))
        Watch.objects.create(user=alice, auction=auction)
        assert ending_soon_notify() == 0


@pytest.mark.django_db(transaction=True)
class TestThroughTheBatcher:
    def test_a_batch_records_its_outbids_with_the_bids(self, auction, alice, bob):
        bid_place(auction_id=auction.id, bidder=alice, amount="10")
        bid_place(auction_id=auction.id, bidder=bob, amount="11")
        batcher.wait_for_after()
        assert kinds(alice) == [(1, "outbid")]
        assert Notification.objects.get(user=alice).published_at is not None  # sent live

    def test_nothing_is_recorded_when_the_transaction_rolls_back(self, auction, alice, bob):
        bid_place(auction_id=auction.id, bidder=alice, amount="10")
        with pytest.raises(RuntimeError), transaction.atomic():
            bid_place(auction_id=auction.id, bidder=bob, amount="11")
            raise RuntimeError
        assert kinds(alice) == []
