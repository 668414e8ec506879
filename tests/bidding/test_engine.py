"""The bid engine with the database (spec §7): maximum bids, raises, the reserve, increment
tables, buy it now, privacy of the max, idempotency of the whole outcome, soft close,
versions, and offers decided through the batcher's threads.

Most tests run in the test's transaction (`db`): there, bid_place decides inline. The
classes marked `transaction=True` go through the batcher's threads, as a server does.
"""

import itertools
import json
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from django.db import connection, connections, transaction
from django.test import override_settings
from django.utils import timezone

from accounts.models import User
from auctions.errors import BidRejected, Code, NotFound, ValidationFailed
from auctions.events import event_as_message
from auctions.formats import iso
from auctions.models import Auction, AuctionEvent, AuctionStatus
from auctions.schedule_index import claimed_key, schedule_key
from auctions.selectors import auction_get, auction_snapshot
from auctions.services import auction_close, auction_create
from bidding.models import Bid, BidRequest
from bidding.rules import Offer, Person, Rejected, offer_parse
from bidding.selectors import bid_history, own_bid
from bidding.services import BidAccepted, OfferResult, batcher, bid_place, buy_now
from infra.redis import redis_client
from tests.factories import AuctionFactory, UserFactory

pytestmark = pytest.mark.django_db

STANDARD_PAIRS = [
    ["0.00", "0.05"],
    ["1.00", "0.25"],
    ["5.00", "0.50"],
    ["25.00", "1.00"],
    ["100.00", "2.50"],
    ["250.00", "5.00"],
    ["500.00", "10.00"],
    ["1000.00", "25.00"],
    ["2500.00", "50.00"],
    ["5000.00", "100.00"],
]


@pytest.fixture
def carol(db) -> User:
    return UserFactory(username="carol")


def bid(auction: Auction, user: User, **kwargs: Any) -> BidAccepted:
    return bid_place(auction_id=auction.id, bidder=user, **kwargs)


def rejection(auction: Auction, user: User, **kwargs: Any) -> BidRejected:
    with pytest.raises(BidRejected) as error:
        bid_place(auction_id=auction.id, bidder=user, **kwargs)
    return error.value


def buy_rejection(auction: Auction, user: User, **kwargs: Any) -> BidRejected:
    with pytest.raises(BidRejected) as error:
        buy_now(auction_id=auction.id, buyer=user, **kwargs)
    return error.value


def ledger(auction: Auction) -> list[tuple[str, str, bool]]:
    """The auction's bids in seq order: (bidder's name, amount, automatic)."""
    bids = Bid.objects.filter(auction=auction).select_related("bidder").order_by("seq")
    return [(b.bidder.username, f"{b.amount}", b.auto) for b in bids]


def events(auction: Auction) -> list[AuctionEvent]:
    return list(AuctionEvent.objects.filter(auction=auction).order_by("seq"))


def person(user: User) -> dict[str, str]:
    return {"id": str(user.id), "name": user.username}


def fresh(auction: Auction) -> Auction:
    auction.refresh_from_db()
    return auction


def new_auction(seller: User, **kwargs: Any) -> Auction:
    """An auction made by the service, as the interfaces make them."""
    return auction_create(
        creator=seller, item_name="Lamp", duration_seconds=3600, **{"starting_price": 10, **kwargs}
    )


class TestMaximumBids:
    def test_a_max_bid_without_an_amount_leads_at_the_minimum(self, auction, alice):
        accepted = bid(auction, alice, max_amount="50")
        assert accepted.as_data() == {
            "bid_id": str(accepted.bid_id),
            "amount": "10.00",
            "seq": 1,
            "current_price": "10.00",
            "min_next_bid": "11.00",
            "end_time": iso(auction.end_time),
            "leading": True,
            "max_amount": "50.00",
            "bought": False,
        }
        auction = fresh(auction)
        assert (auction.current_price, auction.highest_bidder, auction.leader_max) == (
            Decimal("10.00"),
            alice,
            Decimal("50.00"),
        )
        assert ledger(auction) == [("alice", "10.00", False)]
        (event,) = events(auction)
        assert event.type == "bid_placed"
        assert event.payload["auto"] is False
        assert event.payload["highest_bidder"] == person(alice)

    def test_a_max_bid_with_an_amount_bids_that_amount(self, auction, alice):
        accepted = bid(auction, alice, amount="20", max_amount="50")
        assert (accepted.amount, accepted.current_price, accepted.leading) == (
            Decimal("20.00"),
            Decimal("20.00"),
            True,
        )
        assert fresh(auction).leader_max == Decimal("50.00")
        assert ledger(auction) == [("alice", "20.00", False)]

    def test_a_max_bid_without_an_amount_bids_min_next_bid_when_there_is_a_price(
        self, auction, alice, bob
    ):
        bid(auction, alice, amount="15")
        accepted = bid(auction, bob, max_amount="40")
        assert accepted.amount == Decimal("16.00")
        assert ledger(auction) == [("alice", "15.00", False), ("bob", "16.00", False)]

    def test_a_higher_max_triggers_the_old_leaders_automatic_bid_then_leads_one_increment_over_it(
        self, auction, alice, bob
    ):
        bid(auction, alice, max_amount="50")
        accepted = bid(auction, bob, max_amount="80")

        assert ledger(auction) == [
            ("alice", "10.00", False),
            ("alice", "50.00", True),
            ("bob", "51.00", False),
        ]
        bobs_bid = Bid.objects.get(auction=auction, bidder=bob)
        assert accepted.as_data() == {
            "bid_id": str(bobs_bid.id),
            "amount": "51.00",
            "seq": 3,
            "current_price": "51.00",
            "min_next_bid": "52.00",
            "end_time": iso(auction.end_time),
            "leading": True,
            "max_amount": "80.00",
            "bought": False,
        }
        auto_event, bob_event = events(auction)[1:]
        assert (auto_event.seq, auto_event.type) == (2, "bid_placed")
        assert auto_event.payload["bidder"] == person(alice)
        assert auto_event.payload["auto"] is True
        assert auto_event.payload["amount"] == "50.00"
        assert (bob_event.seq, bob_event.payload["auto"]) == (3, False)
        assert bob_event.payload["bidder"] == bob_event.payload["highest_bidder"] == person(bob)
        assert bob_event.payload["current_price"] == "51.00"
        assert bob_event.payload["bid_count"] == 3
        auction = fresh(auction)
        assert (auction.highest_bidder, auction.leader_max, auction.highest_bid_id) == (
            bob,
            Decimal("80.00"),
            bobs_bid.id,
        )
        assert (auction.current_price, auction.bid_count, auction.last_seq) == (
            Decimal("51.00"),
            3,
            3,
        )

    def test_a_higher_max_just_above_the_old_max_leads_at_its_own_max(self, auction, alice, bob):
        bid(auction, alice, max_amount="50")
        accepted = bid(auction, bob, max_amount="50.40")
        assert accepted.amount == Decimal("50.40")
        assert ledger(auction)[-2:] == [("alice", "50.00", True), ("bob", "50.40", False)]

    def test_an_old_leader_whose_max_is_used_up_gets_no_automatic_bid(self, auction, alice, bob):
        bid(auction, alice, amount="20")
        accepted = bid(auction, bob, max_amount="80")
        assert accepted.amount == Decimal("21.00")
        assert ledger(auction) == [("alice", "20.00", False), ("bob", "21.00", False)]

    def test_an_explicit_amount_above_the_old_max_is_bid_as_given(self, auction, alice, bob):
        bid(auction, alice, max_amount="50")
        accepted = bid(auction, bob, amount="70", max_amount="80")
        assert accepted.amount == Decimal("70.00")
        assert ledger(auction)[1:] == [("alice", "50.00", True), ("bob", "70.00", False)]

    def test_a_lower_max_is_answered_by_the_leaders_automatic_bid(self, auction, alice, bob):
        bid(auction, alice, max_amount="50")
        accepted = bid(auction, bob, max_amount="30")

        assert ledger(auction) == [
            ("alice", "10.00", False),
            ("bob", "30.00", False),
            ("alice", "31.00", True),
        ]
        bobs_bid = Bid.objects.get(auction=auction, bidder=bob)
        assert accepted.as_data() == {
            "bid_id": str(bobs_bid.id),
            "amount": "30.00",
            "seq": 3,
            "current_price": "31.00",
            "min_next_bid": "32.00",
            "end_time": iso(auction.end_time),
            "leading": False,
            "max_amount": "30.00",
            "bought": False,
        }
        bob_event, auto_event = events(auction)[1:]
        assert bob_event.payload["bidder"] == person(bob)
        assert bob_event.payload["highest_bidder"] == person(alice)
        assert bob_event.payload["auto"] is False
        assert auto_event.payload["bidder"] == auto_event.payload["highest_bidder"] == person(alice)
        assert auto_event.payload["auto"] is True
        auction = fresh(auction)
        assert (auction.highest_bidder, auction.leader_max, auction.current_price) == (
            alice,
            Decimal("50.00"),
            Decimal("31.00"),
        )
        assert auction.highest_bid_id == Bid.objects.get(auction=auction, seq=3).id

    def test_a_straight_bid_below_the_leaders_max_is_answered_too(self, auction, alice, bob):
        bid(auction, alice, max_amount="50")
        accepted = bid(auction, bob, amount="20")
        assert (accepted.leading, accepted.amount, accepted.current_price) == (
            False,
            Decimal("20.00"),
            Decimal("21.00"),
        )
        assert accepted.as_data()["max_amount"] == "20.00"
        assert ledger(auction)[1:] == [("bob", "20.00", False), ("alice", "21.00", True)]

    def test_the_leaders_answer_stops_at_the_leaders_max(self, auction, alice, bob):
        bid(auction, alice, max_amount="50")
        accepted = bid(auction, bob, max_amount="49.50")
        assert accepted.current_price == Decimal("50.00")
        assert ledger(auction)[1:] == [("bob", "49.50", False), ("alice", "50.00", True)]

    def test_a_lower_max_with_an_explicit_amount_is_recorded_at_its_max(self, auction, alice, bob):
        bid(auction, alice, max_amount="50")
        accepted = bid(auction, bob, amount="15", max_amount="30")
        assert (accepted.amount, accepted.leading) == (Decimal("30.00"), False)
        assert ledger(auction)[1:] == [("bob", "30.00", False), ("alice", "31.00", True)]

    def test_equal_maxes_the_earlier_wins_with_two_bids_at_the_same_amount(
        self, auction, alice, bob
    ):
        bid(auction, alice, max_amount="50")
        accepted = bid(auction, bob, max_amount="50")

        assert ledger(auction) == [
            ("alice", "10.00", False),
            ("bob", "50.00", False),
            ("alice", "50.00", True),
        ]
        assert (accepted.leading, accepted.amount, accepted.current_price) == (
            False,
            Decimal("50.00"),
            Decimal("50.00"),
        )
        auction = fresh(auction)
        assert auction.highest_bidder == alice
        # The later of the two bids at 50.00, alice's, is the leading bid.
        assert auction.highest_bid_id == Bid.objects.get(auction=auction, seq=3).id
        assert Bid.objects.get(id=auction.highest_bid_id).bidder == alice

    def test_a_max_below_min_next_bid_is_too_low_and_changes_nothing(self, auction, alice, bob):
        bid(auction, alice, amount="20")
        error = rejection(auction, bob, max_amount="20.99")
        assert error.code == Code.BID_TOO_LOW
        assert error.data == {"current_price": "20.00", "min_next_bid": "21.00"}
        auction = fresh(auction)
        assert (auction.bid_count, auction.last_seq, auction.version) == (1, 1, 1)

    def test_an_explicit_amount_below_min_next_bid_is_too_low_even_with_a_high_max(
        self, auction, alice, bob
    ):
        bid(auction, alice, amount="20")
        error = rejection(auction, bob, amount="20.50", max_amount="100")
        assert error.code == Code.BID_TOO_LOW
        assert ledger(auction) == [("alice", "20.00", False)]

    @pytest.mark.parametrize(
        ("amount", "max_amount"),
        [
            ("30", "20"),
            (None, "abc"),
            (None, "0"),
            (None, "-5"),
            (None, "10.001"),
            (None, "10000000000"),
            (None, True),
            (None, ""),
            ("abc", "50"),
        ],
    )
    def test_a_malformed_max_is_an_invalid_amount_and_changes_nothing(
        self, auction, alice, amount, max_amount
    ):
        error = rejection(auction, alice, amount=amount, max_amount=max_amount)
        assert error.code == Code.INVALID_AMOUNT
        auction = fresh(auction)
        assert (auction.bid_count, auction.version, auction.leader_max) == (0, 0, None)

    def test_the_leader_wins_at_the_current_price_not_at_the_max(self, auction, alice, bob):
        bid(auction, alice, max_amount="50")
        bid(auction, bob, max_amount="30")
        auction_close(auction_id=auction.id, early=True)
        auction = fresh(auction)
        assert (auction.winner, auction.final_price) == (alice, Decimal("31.00"))
        ended = events(auction)[-1]
        assert ended.type == "auction_ended"
        assert ended.payload["final_price"] == "31.00"
        assert ended.payload["reason"] == "ended"


class TestReserve:
    @pytest.fixture
    def reserved(self, seller) -> Auction:
        return AuctionFactory(item__owner=seller, reserve_price=Decimal("100.00"))

    def test_a_first_max_at_or_above_the_reserve_bids_the_reserve(self, reserved, alice):
        accepted = bid(reserved, alice, max_amount="150")
        assert (accepted.amount, accepted.current_price) == (Decimal("100.00"), Decimal("100.00"))
        assert fresh(reserved).reserve_met
        assert ledger(reserved) == [("alice", "100.00", False)]

    def test_a_first_max_exactly_at_the_reserve_bids_the_reserve(self, reserved, alice):
        assert bid(reserved, alice, max_amount="100").amount == Decimal("100.00")

    def test_a_max_below_the_reserve_bids_the_minimum(self, reserved, alice):
        assert bid(reserved, alice, max_amount="99.99").amount == Decimal("10.00")
        assert not fresh(reserved).reserve_met

    def test_a_new_leader_whose_max_reaches_the_reserve_is_put_at_the_reserve(
        self, reserved, alice, bob
    ):
        bid(reserved, alice, max_amount="60")
        accepted = bid(reserved, bob, max_amount="120")
        assert accepted.amount == Decimal("100.00")
        assert ledger(reserved) == [
            ("alice", "10.00", False),
            ("alice", "60.00", True),
            ("bob", "100.00", False),
        ]
        assert fresh(reserved).reserve_met

    def test_a_new_leader_below_the_reserve_leads_one_increment_over_the_old_max(
        self, reserved, alice, bob
    ):
        bid(reserved, alice, max_amount="60")
        assert bid(reserved, bob, max_amount="90").amount == Decimal("61.00")
        assert not fresh(reserved).reserve_met

    def test_the_reserve_met_by_a_max_gives_a_winner_at_the_reserve(self, reserved, alice):
        bid(reserved, alice, max_amount="150")
        auction_close(auction_id=reserved.id, early=True)
        reserved = fresh(reserved)
        assert (reserved.winner, reserved.final_price) == (alice, Decimal("100.00"))


class TestMaxRaise:
    def test_the_leader_raising_their_max_changes_no_price_and_sends_no_event(self, auction, alice):
        first = bid(auction, alice, max_amount="50")
        raised = bid(auction, alice, max_amount="70")

        assert raised.as_data() == {
            "bid_id": str(first.bid_id),
            "amount": "10.00",
            "seq": 1,
            "current_price": "10.00",
            "min_next_bid": "11.00",
            "end_time": iso(auction.end_time),
            "leading": True,
            "max_amount": "70.00",
            "bought": False,
        }
        auction = fresh(auction)
        assert (auction.leader_max, auction.current_price, auction.version) == (
            Decimal("70.00"),
            Decimal("10.00"),
            2,
        )
        assert (auction.last_seq, auction.bid_count) == (1, 1)
        assert len(events(auction)) == 1
        assert ledger(auction) == [("alice", "10.00", False)]

    def test_a_raised_max_holds_against_a_bid_above_the_old_max(self, auction, alice, bob):
        bid(auction, alice, max_amount="50")
        bid(auction, alice, max_amount="70")
        accepted = bid(auction, bob, max_amount="60")
        assert (accepted.leading, accepted.current_price) == (False, Decimal("61.00"))
        assert fresh(auction).highest_bidder == alice

    def test_a_leader_with_a_straight_bid_can_raise_to_a_max(self, auction, alice, bob):
        bid(auction, alice, amount="10")
        raised = bid(auction, alice, max_amount="40")
        assert (raised.leading, raised.amount) == (True, Decimal("10.00"))
        assert raised.as_data()["max_amount"] == "40.00"
        assert bid(auction, bob, max_amount="25").leading is False
        assert fresh(auction).current_price == Decimal("26.00")

    def test_a_raise_to_the_reserve_is_an_automatic_bid_at_the_reserve(self, seller, alice):
        auction = AuctionFactory(item__owner=seller, reserve_price=Decimal("100.00"))
        bid(auction, alice, max_amount="50")
        raised = bid(auction, alice, max_amount="120")

        assert ledger(auction) == [("alice", "10.00", False), ("alice", "100.00", True)]
        auto_bid = Bid.objects.get(auction=auction, seq=2)
        assert raised.as_data() == {
            "bid_id": str(auto_bid.id),
            "amount": "100.00",
            "seq": 2,
            "current_price": "100.00",
            "min_next_bid": "101.00",
            "end_time": iso(auction.end_time),
            "leading": True,
            "max_amount": "120.00",
            "bought": False,
        }
        event = events(auction)[-1]
        assert (event.seq, event.type, event.payload["auto"]) == (2, "bid_placed", True)
        assert event.payload["bidder"] == event.payload["highest_bidder"] == person(alice)
        auction = fresh(auction)
        assert auction.reserve_met
        assert (auction.leader_max, auction.version) == (Decimal("120.00"), 2)

    def test_a_raise_still_below_the_reserve_bids_nothing(self, seller, alice):
        auction = AuctionFactory(item__owner=seller, reserve_price=Decimal("100.00"))
        bid(auction, alice, max_amount="50")
        bid(auction, alice, max_amount="99")
        assert ledger(auction) == [("alice", "10.00", False)]
        assert fresh(auction).leader_max == Decimal("99.00")

    @pytest.mark.parametrize("new_max", ["50", "49.99", "10"])
    def test_a_raise_not_above_the_current_max_is_too_low(self, auction, alice, new_max):
        bid(auction, alice, max_amount="50")
        error = rejection(auction, alice, max_amount=new_max)
        assert error.code == Code.BID_TOO_LOW
        assert error.data == {"current_price": "10.00", "min_next_bid": "11.00"}
        auction = fresh(auction)
        assert (auction.leader_max, auction.version) == (Decimal("50.00"), 1)

    def test_a_straight_bid_by_the_leader_is_already_highest(self, auction, alice):
        bid(auction, alice, max_amount="50")
        error = rejection(auction, alice, amount="60")
        assert error.code == Code.ALREADY_HIGHEST
        auction = fresh(auction)
        assert (auction.leader_max, auction.current_price, auction.version) == (
            Decimal("50.00"),
            Decimal("10.00"),
            1,
        )


class TestBuyNow:
    @pytest.fixture
    def offered(self, seller) -> Auction:
        return AuctionFactory(item__owner=seller, buy_now_price=Decimal("200.00"))

    def test_buying_records_a_bid_at_the_price_and_ends_the_auction(self, offered, alice):
        bought = buy_now(auction_id=offered.id, buyer=alice, request_id="buy-1")

        the_bid = Bid.objects.get(auction=offered)
        assert (the_bid.bidder, the_bid.amount, the_bid.auto, the_bid.seq) == (
            alice,
            Decimal("200.00"),
            False,
            1,
        )
        assert bought.as_data() == {
            "bid_id": str(the_bid.id),
            "amount": "200.00",
            "seq": 2,
            "current_price": "200.00",
            "min_next_bid": "201.00",
            "end_time": iso(offered.end_time),
            "leading": True,
            "max_amount": "200.00",
            "bought": True,
        }
        placed, ended = events(offered)
        assert (placed.seq, placed.type, placed.payload["amount"]) == (1, "bid_placed", "200.00")
        assert placed.payload["bidder"] == placed.payload["highest_bidder"] == person(alice)
        assert (ended.seq, ended.type) == (2, "auction_ended")
        assert ended.payload == {
            "status": "ended",
            "final_price": "200.00",
            "winner": person(alice),
            "winning_bid_id": str(the_bid.id),
            "reserve_met": True,
            "reason": "bought",
        }
        offered = fresh(offered)
        assert offered.status == AuctionStatus.ENDED
        assert (offered.winner, offered.final_price, offered.highest_bidder) == (
            alice,
            Decimal("200.00"),
            alice,
        )
        assert offered.ended_at is not None
        assert (offered.bid_count, offered.last_seq, offered.version) == (1, 2, 1)

    def test_buying_with_a_reserve_meets_it(self, seller, alice):
        auction = AuctionFactory(
            item__owner=seller, reserve_price=Decimal("150.00"), buy_now_price=Decimal("150.00")
        )
        buy_now(auction_id=auction.id, buyer=alice)
        auction = fresh(auction)
        assert auction.reserve_met
        assert events(auction)[-1].payload["reserve_met"] is True

    def test_after_a_sale_no_bid_and_no_second_sale_is_accepted(self, offered, alice, bob):
        buy_now(auction_id=offered.id, buyer=alice)
        assert buy_rejection(offered, bob).code == Code.AUCTION_ENDED
        assert rejection(offered, bob, amount="500").code == Code.AUCTION_ENDED
        assert rejection(offered, bob, max_amount="900").code == Code.AUCTION_ENDED
        assert Bid.objects.filter(auction=offered).count() == 1
        assert fresh(offered).winner == alice

    def test_buy_now_is_unavailable_after_a_bid(self, offered, alice, bob):
        bid(offered, bob, amount="10")
        error = buy_rejection(offered, alice)
        assert error.code == Code.BUY_NOW_UNAVAILABLE
        assert error.data == {"current_price": "10.00", "min_next_bid": "11.00"}
        assert buy_rejection(offered, bob).code == Code.BUY_NOW_UNAVAILABLE
        offered = fresh(offered)
        assert (offered.status, offered.bid_count, offered.version) == (AuctionStatus.ACTIVE, 1, 1)

    def test_buy_now_is_unavailable_without_a_price(self, auction, alice):
        assert buy_rejection(auction, alice).code == Code.BUY_NOW_UNAVAILABLE
        auction = fresh(auction)
        assert (auction.status, auction.bid_count) == (AuctionStatus.ACTIVE, 0)

    def test_buying_ones_own_auction_is_own_auction(self, offered, seller):
        assert buy_rejection(offered, seller).code == Code.OWN_AUCTION
        assert fresh(offered).status == AuctionStatus.ACTIVE

    def test_buying_a_pending_auction_is_not_active(self, seller, alice):
        now = timezone.now()
        pending = AuctionFactory(
            item__owner=seller,
            status=AuctionStatus.PENDING,
            start_time=now + timedelta(hours=1),
            end_time=now + timedelta(hours=2),
            max_end_time=now + timedelta(hours=2),
            buy_now_price=Decimal("200.00"),
        )
        assert buy_rejection(pending, alice).code == Code.AUCTION_NOT_ACTIVE

    def test_buying_after_the_end_time_is_ended(self, seller, alice):
        now = timezone.now()
        overdue = AuctionFactory(
            item__owner=seller,
            start_time=now - timedelta(hours=2),
            end_time=now - timedelta(seconds=1),
            max_end_time=now - timedelta(seconds=1),
            buy_now_price=Decimal("200.00"),
        )
        assert buy_rejection(overdue, alice).code == Code.AUCTION_ENDED
        assert fresh(overdue).bid_count == 0

    def test_buying_an_unknown_auction_is_not_found(self, alice):
        with pytest.raises(NotFound):
            buy_now(auction_id=UUID(int=0), buyer=alice)

    def test_a_sale_inside_the_soft_close_window_does_not_extend(self, seller, alice):
        end = timezone.now() + timedelta(seconds=20)
        auction = AuctionFactory(
            item__owner=seller,
            end_time=end,
            max_end_time=end + timedelta(hours=1),
            extension_seconds=60,
            buy_now_price=Decimal("200.00"),
        )
        buy_now(auction_id=auction.id, buyer=alice)
        assert [e.type for e in events(auction)] == ["bid_placed", "auction_ended"]
        assert fresh(auction).end_time == end


class TestCreatingAuctions:
    def test_the_standard_table_chosen_by_name_is_stored_as_its_pairs(self, seller):
        auction = new_auction(seller, starting_price="0.50", increments="standard")
        assert auction.increments == STANDARD_PAIRS
        snapshot = auction_snapshot(auction_get(auction_id=auction.id))
        assert snapshot["increments"] == STANDARD_PAIRS
        assert (snapshot["min_increment"], snapshot["min_next_bid"]) == ("0.05", "0.50")

    @pytest.mark.parametrize(
        ("price", "next_bid"),
        [
            ("0.50", "0.55"),
            ("0.99", "1.04"),
            ("1.00", "1.25"),
            ("4.99", "5.24"),
            ("5.00", "5.50"),
            ("24.99", "25.49"),
            ("25.00", "26.00"),
            ("99.99", "100.99"),
            ("100.00", "102.50"),
            ("250.00", "255.00"),
            ("500.00", "510.00"),
            ("1000.00", "1025.00"),
            ("2500.00", "2550.00"),
            ("5000.00", "5100.00"),
            ("1000000.00", "1000100.00"),
        ],
    )
    def test_min_next_bid_follows_the_standard_table(self, seller, alice, bob, price, next_bid):
        auction = new_auction(seller, starting_price="0.50", increments="standard")
        if price != "0.50":
            bid(auction, bob, amount="0.50")
        accepted = bid(auction, alice, amount=price)
        assert accepted.min_next_bid == Decimal(next_bid)
        snapshot = auction_snapshot(auction_get(auction_id=auction.id))
        assert snapshot["min_next_bid"] == next_bid
        assert Decimal(snapshot["min_increment"]) == Decimal(next_bid) - Decimal(price)

    def test_a_bid_one_cent_below_the_tables_minimum_is_too_low(self, seller, alice, bob):
        auction = new_auction(seller, starting_price="100", increments="standard")
        bid(auction, alice, amount="100")
        error = rejection(auction, bob, amount="102.49")
        assert error.code == Code.BID_TOO_LOW
        assert error.data == {"current_price": "100.00", "min_next_bid": "102.50"}
        assert bid(auction, bob, amount="102.50").current_price == Decimal("102.50")

    def test_explicit_pairs_set_the_increment_at_each_price(self, seller, alice, bob, carol):
        auction = new_auction(seller, starting_price=50, increments=[["0", "1"], [100, "10.00"]])
        assert auction.increments == [["0.00", "1.00"], ["100.00", "10.00"]]
        bid(auction, alice, max_amount="95")
        # Rule 2 with inc(M): one increment over the old max at the old max's price.
        assert bid(auction, bob, max_amount="150").amount == Decimal("96.00")
        assert bid(auction, carol, max_amount="300").amount == Decimal("160.00")
        assert ledger(auction)[-2:] == [("bob", "150.00", True), ("carol", "160.00", False)]
        # Rule 3 with inc(m): the leader answers one increment over the lower max.
        answered = bid(auction, alice, max_amount="175")
        assert (answered.leading, answered.current_price) == (False, Decimal("185.00"))
        assert answered.min_next_bid == Decimal("195.00")

    @override_settings(AUCTION_INCREMENT_TABLES={"coarse": [["0.00", "5.00"]]})
    def test_a_table_the_site_defines_can_be_chosen_by_name(self, seller, alice):
        auction = new_auction(seller, increments="coarse")
        assert auction.increments == [["0.00", "5.00"]]
        assert bid(auction, alice, amount="10").min_next_bid == Decimal("15.00")

    def test_a_named_table_is_copied_so_changing_the_setting_moves_no_running_auction(
        self, seller, alice
    ):
        with override_settings(AUCTION_INCREMENT_TABLES={"coarse": [["0.00", "5.00"]]}):
            auction = new_auction(seller, increments="coarse")
        with override_settings(AUCTION_INCREMENT_TABLES={"coarse": [["0.00", "50.00"]]}):
            assert bid(auction, alice, amount="10").min_next_bid == Decimal("15.00")

    @pytest.mark.parametrize(
        "table",
        [
            pytest.param("nope", id="unknown-name"),
            pytest.param("", id="empty-name"),
            pytest.param([], id="no-rows"),
            pytest.param([["1.00", "0.10"]], id="not-from-zero"),
            pytest.param([["0", "0"]], id="zero-increment"),
            pytest.param([["0", "-1"]], id="negative-increment"),
            pytest.param([["0", "0.001"]], id="three-decimals"),
            pytest.param([["0", "1"], ["0", "2"]], id="repeated-from"),
            pytest.param([["0", "1"], ["5", "1"], ["3", "1"]], id="descending"),
            pytest.param([["0"]], id="short-row"),
            pytest.param([["0", "1", "2"]], id="long-row"),
            pytest.param([["0", "abc"]], id="not-money"),
            pytest.param([["0", True]], id="boolean"),
            pytest.param([["-1", "1"]], id="negative-from"),
            pytest.param({"0": "1"}, id="object"),
            pytest.param(["0", "1"], id="flat-list"),
            pytest.param(True, id="true"),
            pytest.param([[str(n), "1"] for n in range(101)], id="101-rows"),
        ],
    )
    def test_an_invalid_table_is_rejected_on_the_increments_field(self, seller, table):
        with pytest.raises(ValidationFailed) as error:
            new_auction(seller, increments=table)
        assert error.value.code == Code.VALIDATION_ERROR
        assert error.value.data == {"field": "increments"}
        assert not Auction.objects.exists()

    def test_a_table_of_100_rows_is_accepted(self, seller):
        auction = new_auction(seller, increments=[[str(n), "1"] for n in range(100)])
        assert len(auction.increments) == 100

    def test_min_increment_and_increments_together_are_rejected(self, seller):
        with pytest.raises(ValidationFailed) as error:
            new_auction(seller, min_increment="1.00", increments="standard")
        assert error.value.data == {"field": "increments"}
        assert not Auction.objects.exists()

    def test_a_fixed_increment_shows_no_table(self, seller):
        auction = new_auction(seller, min_increment="2.50")
        snapshot = auction_snapshot(auction_get(auction_id=auction.id))
        assert (snapshot["increments"], snapshot["min_increment"]) == (None, "2.50")

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"starting_price": 10, "buy_now_price": "9.99"}, "buy_now_price"),
            (
                {"starting_price": 10, "reserve_price": 50, "buy_now_price": "49.99"},
                "buy_now_price",
            ),
            ({"starting_price": 10, "buy_now_price": "abc"}, "buy_now_price"),
            ({"starting_price": 10, "buy_now_price": 0}, "buy_now_price"),
        ],
    )
    def test_a_buy_now_price_below_the_start_or_the_reserve_is_rejected(
        self, seller, kwargs, field
    ):
        with pytest.raises(ValidationFailed) as error:
            new_auction(seller, **kwargs)
        assert error.value.data == {"field": field}
        assert not Auction.objects.exists()

    def test_a_buy_now_price_equal_to_the_start_and_the_reserve_is_accepted(self, seller):
        auction = new_auction(seller, starting_price=50, reserve_price=50, buy_now_price="50")
        assert auction.buy_now_price == Decimal("50.00")
        assert auction_snapshot(auction)["buy_now_price"] == "50.00"


class TestPrivacy:
    """Rule 7: a bidder's max is theirs alone; 87.65 appears nowhere but in own_bid."""

    @pytest.fixture
    def bidding(self, auction, alice, bob) -> Auction:
        bid(auction, alice, max_amount="87.65")
        bid(auction, bob, max_amount="40")
        bid(auction, alice, max_amount="91.23")  # a raise: also private
        return auction

    def test_no_event_payload_carries_a_max(self, bidding):
        stored = events(bidding)
        assert [e.payload["amount"] for e in stored] == ["10.00", "40.00", "41.00"]
        for event in stored:
            # (The message's timestamp is left out: its digits could spell anything.)
            text = json.dumps({**event_as_message(event), "timestamp": None})
            assert "87.65" not in text and "91.23" not in text
            assert "max" not in " ".join(event.payload)

    def test_no_snapshot_carries_the_leaders_max(self, bidding):
        for snapshot in (
            auction_snapshot(auction_get(auction_id=bidding.id)),
            auction_snapshot(auction_get(auction_id=bidding.id, for_snapshot=True)),
        ):
            text = json.dumps(snapshot)
            assert "87.65" not in text and "91.23" not in text
            assert not any("max" in key for key in snapshot)
            assert snapshot["current_price"] == "41.00"

    def test_the_bid_history_carries_no_max(self, bidding):
        history = list(bid_history(auction_id=bidding.id))
        assert [f"{b.amount}" for b in history] == ["41.00", "40.00", "10.00"]
        assert Decimal("87.65") not in {b.amount for b in history}

    def test_own_bid_shows_the_leader_their_max(self, bidding, alice):
        mine = own_bid(auction_id=bidding.id, bidder=alice)
        assert mine.as_data() == {"max_amount": "91.23", "leading": True, "amount": "41.00"}

    def test_own_bid_shows_an_outbid_bidder_their_highest_bid_as_their_max(self, bidding, bob):
        mine = own_bid(auction_id=bidding.id, bidder=bob)
        assert mine.as_data() == {"max_amount": "40.00", "leading": False, "amount": "40.00"}

    def test_own_bid_of_an_old_leader_outbid_by_a_higher_max(self, auction, alice, bob):
        bid(auction, alice, max_amount="50")
        bid(auction, bob, max_amount="80")
        assert own_bid(auction_id=auction.id, bidder=alice).as_data() == {
            "max_amount": "50.00",
            "leading": False,
            "amount": "50.00",
        }
        assert own_bid(auction_id=auction.id, bidder=bob).as_data() == {
            "max_amount": "80.00",
            "leading": True,
            "amount": "51.00",
        }

    def test_own_bid_of_someone_who_never_bid_is_not_found(self, bidding, carol, seller):
        for user in (carol, seller):
            with pytest.raises(NotFound):
                own_bid(auction_id=bidding.id, bidder=user)

    def test_own_bid_of_an_unknown_auction_is_not_found(self, alice):
        with pytest.raises(NotFound):
            own_bid(auction_id=UUID(int=0), bidder=alice)


class TestIdempotency:
    def test_repeating_a_max_bid_returns_the_same_reply_and_records_nothing_more(
        self, auction, alice, bob
    ):
        bid(auction, alice, max_amount="50")
        first = bid(auction, bob, max_amount="80", request_id="b-1")
        state = fresh(auction)
        again = bid(auction, bob, max_amount="80", request_id="b-1")

        assert again.replayed and not first.replayed
        assert again.as_data() == first.as_data()
        assert len(ledger(auction)) == 3
        assert len(events(auction)) == 3
        auction = fresh(auction)
        assert (auction.version, auction.last_seq) == (state.version, state.last_seq)

    def test_the_stored_reply_is_the_whole_bid_accepted_data(self, auction, alice, bob):
        bid(auction, alice, max_amount="50")
        first = bid(auction, bob, max_amount="30", request_id="b-1")
        stored = BidRequest.objects.get(bidder=bob, request_id="b-1")
        assert (stored.outcome, stored.auction_id) == ("accepted", auction.id)
        assert stored.reply == first.as_data()
        assert stored.reply["leading"] is False

    def test_a_repeat_after_the_auction_moved_on_still_gets_the_first_reply(
        self, auction, alice, bob, carol
    ):
        bid(auction, alice, max_amount="50")
        first = bid(auction, bob, max_amount="80", request_id="b-1")
        bid(auction, carol, max_amount="100")  # bob's automatic bid at 80, carol leads
        again = bid(auction, bob, max_amount="999", request_id="b-1")

        assert again.replayed
        assert again.as_data() == first.as_data()
        assert (again.leading, again.current_price) == (True, Decimal("51.00"))
        assert ledger(auction)[-2:] == [("bob", "80.00", True), ("carol", "81.00", False)]
        assert fresh(auction).highest_bidder == carol

    def test_repeating_the_lower_max_creates_no_second_automatic_bid(self, auction, alice, bob):
        bid(auction, alice, max_amount="50")
        first = bid(auction, bob, max_amount="30", request_id="b-1")
        again = bid(auction, bob, max_amount="30", request_id="b-1")
        assert again.as_data() == first.as_data()
        assert ledger(auction) == [
            ("alice", "10.00", False),
            ("bob", "30.00", False),
            ("alice", "31.00", True),
        ]

    def test_repeating_a_max_raise_raises_once(self, auction, alice, bob):
        bid(auction, alice, max_amount="50")
        first = bid(auction, alice, max_amount="70", request_id="raise")
        bid(auction, bob, max_amount="60")
        again = bid(auction, alice, max_amount="70", request_id="raise")
        assert again.replayed
        assert again.as_data() == first.as_data()
        auction = fresh(auction)
        assert (auction.leader_max, auction.current_price) == (Decimal("70.00"), Decimal("61.00"))

    def test_repeating_a_rejected_raise_is_rejected_again_even_if_it_would_now_pass(
        self, auction, alice
    ):
        bid(auction, alice, max_amount="50")
        first = rejection(auction, alice, max_amount="40", request_id="low")
        again = rejection(auction, alice, max_amount="90", request_id="low")
        assert (again.code, again.data) == (first.code, first.data)
        assert fresh(auction).leader_max == Decimal("50.00")

    def test_repeating_a_purchase_returns_the_sale_again_and_sells_once(self, seller, alice):
        auction = AuctionFactory(item__owner=seller, buy_now_price=Decimal("200.00"))
        first = buy_now(auction_id=auction.id, buyer=alice, request_id="buy")
        again = buy_now(auction_id=auction.id, buyer=alice, request_id="buy")
        assert again.replayed
        assert again.as_data() == first.as_data()
        assert again.as_data()["bought"] is True
        assert len(ledger(auction)) == 1
        assert [e.type for e in events(auction)] == ["bid_placed", "auction_ended"]


class TestSoftClose:
    def closing_auction(self, seller, **kwargs: Any) -> Auction:
        """An auction with a 60 s soft close, ending in 30 s."""
        end = timezone.now() + timedelta(seconds=30)
        return AuctionFactory(
            item__owner=seller,
            end_time=end,
            max_end_time=end + timedelta(hours=1),
            extension_seconds=60,
            **kwargs,
        )

    def move_end(self, auction: Auction, seconds: int) -> None:
        Auction.objects.filter(id=auction.id).update(
            end_time=timezone.now() + timedelta(seconds=seconds)
        )

    def test_an_automatic_bid_alone_extends_the_end(self, seller, alice):
        auction = self.closing_auction(seller, reserve_price=Decimal("100.00"))
        self.move_end(auction, 600)  # alice's own bid is outside the window
        bid(auction, alice, max_amount="50")
        self.move_end(auction, 30)
        previous_end = fresh(auction).end_time

        raised = bid(auction, alice, max_amount="150")

        auction = fresh(auction)
        auto_bid = Bid.objects.get(auction=auction, seq=2)
        assert auto_bid.auto
        assert raised.extended
        assert auction.end_time == auto_bid.created_at + timedelta(seconds=60)
        placed, extended = events(auction)[1:]
        assert (placed.type, extended.type) == ("bid_placed", "auction_extended")
        assert extended.seq == 3
        assert extended.payload == {
            "end_time": iso(auction.end_time),
            "previous_end_time": iso(previous_end),
        }
        assert placed.payload["end_time"] == iso(auction.end_time)

    def test_a_max_raise_that_changes_no_price_extends_nothing(self, seller, alice):
        auction = self.closing_auction(seller)
        bid(auction, alice, max_amount="50")
        self.move_end(auction, 30)
        end = fresh(auction).end_time
        raised = bid(auction, alice, max_amount="70")
        assert not raised.extended
        assert fresh(auction).end_time == end
        assert [e.type for e in events(auction)] == ["bid_placed", "auction_extended"]

    def test_an_answered_lower_max_extends_after_both_bids(self, seller, alice, bob):
        auction = self.closing_auction(seller)
        self.move_end(auction, 600)
        bid(auction, alice, max_amount="50")
        self.move_end(auction, 30)

        accepted = bid(auction, bob, max_amount="30")

        assert accepted.extended
        auction = fresh(auction)
        stored = events(auction)[1:]
        assert [(e.seq, e.type) for e in stored] == [
            (2, "bid_placed"),
            (3, "bid_placed"),
            (4, "auction_extended"),
        ]
        assert stored[1].payload["auto"] is True
        assert stored[0].payload["end_time"] == stored[1].payload["end_time"]
        assert stored[1].payload["end_time"] == iso(auction.end_time)
        assert accepted.end_time == auction.end_time
        assert accepted.seq == 4


class TestVersion:
    def test_each_decided_bid_bumps_the_version_once_whatever_it_records(self, auction, alice, bob):
        versions = []
        bid(auction, alice, max_amount="50")  # one bid
        versions.append(fresh(auction).version)
        bid(auction, bob, max_amount="80")  # an automatic bid and bob's
        versions.append(fresh(auction).version)
        bid(auction, alice, max_amount="60")  # alice's and bob's answer
        versions.append(fresh(auction).version)
        bid(auction, bob, max_amount="90")  # a raise: no bid
        versions.append(fresh(auction).version)
        rejection(auction, alice, max_amount="5")  # nothing
        versions.append(fresh(auction).version)
        assert versions == [1, 2, 3, 4, 4]
        assert fresh(auction).bid_count == 5


def wait_until(condition: Callable[[], bool], timeout: float = 10) -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)


def lock_waiters() -> int:
    """Sessions waiting for a lock (pg_locks is read afresh, even inside a transaction)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
        (count,) = cursor.fetchone()
        return int(count)


def offer(user: User, **fields: Any) -> Offer:
    return offer_parse(bidder=Person(user.id, user.username), **fields)


def decide_behind(
    auction: Auction, first: Offer, rest: Sequence[Offer]
) -> tuple[OfferResult, list[OfferResult], list[int]]:
    """Through the batcher: `first` alone, then `rest` as one batch.

    The test holds the auction's row lock until `first`'s batch waits on it, then queues
    `rest` behind it; returns the results and the sizes of the batches decided.
    """
    before = len(batcher.batch_sizes)
    with transaction.atomic():
        Auction.objects.select_for_update().get(id=auction.id)
        head = batcher.submit(auction.id, first)
        wait_until(lambda: lock_waiters() > 0)
        tail = [batcher.submit(auction.id, one) for one in rest]
    results = [future.result(timeout=30) for future in tail]
    return head.result(timeout=30), results, batcher.batch_sizes[before:]


def assert_consistent(auction: Auction) -> list[Bid]:
    """Seqs 1..N without gaps, a bid_placed per bid, amounts that never fall (equal only
    in a tie of maxes), and a running state that matches the last bid."""
    auction = fresh(auction)
    bids = list(Bid.objects.filter(auction=auction).order_by("seq"))
    stored = events(auction)
    assert [e.seq for e in stored] == list(range(1, len(stored) + 1))
    assert auction.last_seq == len(stored)
    placed = {e.seq: e for e in stored if e.type == "bid_placed"}
    assert sorted(placed) == [b.seq for b in bids]
    for one in bids:
        assert placed[one.seq].payload["bid_id"] == str(one.id)
        assert Decimal(placed[one.seq].payload["amount"]) == one.amount
        assert placed[one.seq].payload["auto"] is one.auto
    for earlier, later in itertools.pairwise(bids):
        assert later.amount >= earlier.amount
    assert auction.bid_count == len(bids)
    assert auction.current_price == bids[-1].amount
    assert auction.highest_bid_id == bids[-1].id
    assert auction.highest_bidder_id == bids[-1].bidder_id
    assert auction.leader_max is not None and auction.leader_max >= auction.current_price
    return bids


@pytest.mark.django_db(transaction=True)
class TestThroughTheBatcher:
    """Outside a transaction, offers go through the batcher's threads, as on a server."""

    def test_a_higher_max_through_the_batcher_records_the_automatic_bid_first(
        self, auction, alice, bob
    ):
        assert not transaction.get_connection().in_atomic_block
        bid(auction, alice, max_amount="50")
        accepted = bid(auction, bob, max_amount="80", request_id="b-1")
        assert (accepted.leading, accepted.amount) == (True, Decimal("51.00"))
        assert ledger(auction) == [
            ("alice", "10.00", False),
            ("alice", "50.00", True),
            ("bob", "51.00", False),
        ]
        assert fresh(auction).version == 2
        again = bid(auction, bob, max_amount="80", request_id="b-1")
        assert again.replayed and again.as_data() == accepted.as_data()
        assert len(ledger(auction)) == 3

    def test_a_lower_max_through_the_batcher_is_answered(self, auction, alice, bob):
        bid(auction, alice, max_amount="50")
        accepted = bid(auction, bob, max_amount="30")
        assert (accepted.leading, accepted.current_price) == (False, Decimal("31.00"))
        assert own_bid(auction_id=auction.id, bidder=alice).max_amount == Decimal("50.00")

    def test_buying_removes_the_auction_from_the_schedule(self, seller, alice):
        auction = new_auction(seller, buy_now_price=200)
        end_key = schedule_key("end")
        assert redis_client().zscore(end_key, str(auction.id)) is not None

        bought = buy_now(auction_id=auction.id, buyer=alice)

        assert bought.as_data()["bought"] is True
        # The schedule follows the commit (it may do so after the answer, in another thread).
        wait_until(lambda: redis_client().zscore(end_key, str(auction.id)) is None)
        assert redis_client().zscore(claimed_key("end"), str(auction.id)) is None
        assert fresh(auction).status == AuctionStatus.ENDED

    def test_a_batch_is_one_decision_and_bumps_the_version_once(self, auction, alice, bob, carol):
        head, results, sizes = decide_behind(
            auction,
            offer(alice, max_amount="50"),
            [
                offer(bob, max_amount="30"),
                offer(carol, amount="60"),
                offer(bob, amount="55"),  # too low by the time it is decided
            ],
        )

        assert sizes == [1, 3]
        assert head.outcome.leading is True
        answered, outbid, too_low = (result.outcome for result in results)
        assert (answered.leading, answered.current_price) == (False, Decimal("31.00"))
        assert (outbid.leading, outbid.current_price) == (True, Decimal("60.00"))
        assert isinstance(too_low, Rejected) and too_low.code == Code.BID_TOO_LOW
        assert ledger(auction) == [
            ("alice", "10.00", False),
            ("bob", "30.00", False),
            ("alice", "31.00", True),
            ("alice", "50.00", True),
            ("carol", "60.00", False),
        ]
        auction = fresh(auction)
        # One bump per batch: not one per offer (3) nor one per bid (5).
        assert (auction.version, auction.last_seq, auction.bid_count) == (2, 5, 5)
        assert (auction.highest_bidder, auction.leader_max) == (carol, Decimal("60.00"))
        assert_consistent(auction)

    def test_a_repeat_inside_one_batch_is_decided_once(self, auction, alice, bob):
        _, (first, again), sizes = decide_behind(
            auction,
            offer(alice, max_amount="50"),
            [offer(bob, max_amount="30", request_id="b-1")] * 2,
        )
        assert sizes == [1, 2]
        assert not first.replayed and again.replayed
        assert again.outcome == first.outcome
        assert ledger(auction) == [
            ("alice", "10.00", False),
            ("bob", "30.00", False),
            ("alice", "31.00", True),
        ]
        assert fresh(auction).version == 2

    def test_rising_maxes_queued_behind_the_lock_are_decided_in_order(self, seller):
        auction = AuctionFactory(item__owner=seller)
        bidders = [UserFactory() for _ in range(6)]
        offers = [offer(user, max_amount=20 + 10 * n) for n, user in enumerate(bidders)]
        head, results, sizes = decide_behind(auction, offers[0], offers[1:])

        assert sizes == [1, 5]
        assert all(result.outcome.leading for result in [head, *results])
        auction = fresh(auction)
        assert auction.version == 2
        assert (auction.highest_bidder, auction.leader_max) == (bidders[-1], Decimal("70.00"))
        assert auction.current_price == Decimal("61.00")
        bids = assert_consistent(auction)
        assert [f"{b.amount}" for b in bids] == [
            "10.00", "20.00", "21.00", "30.00", "31.00", "40.00",
            "41.00", "50.00", "51.00", "60.00", "61.00",
        ]  # fmt: skip

    def test_concurrent_max_bids_are_each_decided_once_with_a_consistent_end_state(self, seller):
        auction = AuctionFactory(item__owner=seller)
        maxes = [Decimal(20 + 5 * n) for n in range(12)]  # 20.00 … 75.00
        bidders = [UserFactory() for _ in maxes]
        results: dict[int, Any] = {}
        lock = threading.Lock()
        gate = threading.Barrier(len(bidders))

        def offer(number: int) -> None:
            gate.wait()
            try:
                outcome: Any = bid(
                    auction,
                    bidders[number],
                    max_amount=maxes[number],
                    request_id=f"c-{number}",
                )
            except BidRejected as rejected:
                outcome = rejected
            finally:
                connections.close_all()
            with lock:
                results[number] = outcome

        threads = [threading.Thread(target=offer, args=(n,)) for n in range(len(bidders))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads)
        assert sorted(results) == list(range(len(bidders)))

        bids = assert_consistent(auction)
        auction = fresh(auction)
        # Whatever the order, the highest max leads one increment over the second highest.
        assert (auction.highest_bidder, auction.leader_max) == (bidders[-1], Decimal("75.00"))
        assert auction.current_price == Decimal("71.00")
        assert 1 <= auction.version <= len(bids)
        rejected = [r for r in results.values() if isinstance(r, BidRejected)]
        assert {r.code for r in rejected} <= {Code.BID_TOO_LOW}
        accepted = {n: r for n, r in results.items() if isinstance(r, BidAccepted)}
        assert accepted[len(bidders) - 1].leading
        # Every accepted bidder but the leader spent their whole max (rules 2 and 3).
        for number, reply in accepted.items():
            mine = own_bid(auction_id=auction.id, bidder=bidders[number])
            assert mine.max_amount == maxes[number]
            if number != len(bidders) - 1:
                assert (mine.leading, mine.amount) == (False, maxes[number])
            assert Bid.objects.filter(id=reply.bid_id, bidder=bidders[number]).exists()
        # Exactly once: every request id has one stored outcome, and a retry changes nothing.
        assert BidRequest.objects.filter(auction=auction).count() == len(bidders)
        for number, first in results.items():
            if isinstance(first, BidAccepted):
                again = bid(
                    auction, bidders[number], max_amount=maxes[number], request_id=f"c-{number}"
                )
                assert again.replayed and again.as_data() == first.as_data()
            else:
                repeat = rejection(
                    auction, bidders[number], max_amount=maxes[number], request_id=f"c-{number}"
                )
                assert (repeat.code, repeat.data) == (first.code, first.data)
        assert fresh(auction).version == auction.version
        assert len(ledger(auction)) == len(bids)

    def test_two_buyers_at_once_make_one_sale(self, seller):
        auction = AuctionFactory(item__owner=seller, buy_now_price=Decimal("200.00"))
        buyers = [UserFactory() for _ in range(4)]
        outcomes: list[Any] = []
        lock = threading.Lock()
        gate = threading.Barrier(len(buyers))

        def buy(user: User) -> None:
            gate.wait()
            try:
                outcome: Any = buy_now(auction_id=auction.id, buyer=user)
            except BidRejected as rejected:
                outcome = rejected.code
            finally:
                connections.close_all()
            with lock:
                outcomes.append((user, outcome))

        threads = [threading.Thread(target=buy, args=(user,)) for user in buyers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert len(outcomes) == len(buyers)

        sales = [(user, o) for user, o in outcomes if isinstance(o, BidAccepted)]
        assert len(sales) == 1
        assert {o for _, o in outcomes if not isinstance(o, BidAccepted)} <= {
            Code.AUCTION_ENDED,
            Code.BUY_NOW_UNAVAILABLE,
        }
        auction = fresh(auction)
        assert (auction.winner, auction.bid_count) == (sales[0][0], 1)
        assert [e.type for e in events(auction)] == ["bid_placed", "auction_ended"]

    def test_a_purchase_racing_a_bid_is_one_or_the_other(self, seller, alice, bob):
        auction = AuctionFactory(item__owner=seller, buy_now_price=Decimal("200.00"))
        outcomes: dict[str, Any] = {}
        gate = threading.Barrier(2)

        def run(name: str, action: Any) -> None:
            gate.wait()
            try:
                outcomes[name] = action()
            except BidRejected as rejected:
                outcomes[name] = rejected.code
            finally:
                connections.close_all()

        threads = [
            threading.Thread(
                target=run, args=("buy", lambda: buy_now(auction_id=auction.id, buyer=alice))
            ),
            threading.Thread(target=run, args=("bid", lambda: bid(auction, bob, max_amount="50"))),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        auction = fresh(auction)
        if isinstance(outcomes["buy"], BidAccepted):
            assert outcomes["bid"] == Code.AUCTION_ENDED
            assert (auction.status, auction.winner) == (AuctionStatus.ENDED, alice)
            assert ledger(auction) == [("alice", "200.00", False)]
        else:
            assert outcomes["buy"] == Code.BUY_NOW_UNAVAILABLE
            assert isinstance(outcomes["bid"], BidAccepted)
            assert (auction.status, auction.highest_bidder) == (AuctionStatus.ACTIVE, bob)
            assert ledger(auction) == [("bob", "10.00", False)]

    def test_one_request_id_sent_to_two_auctions_at_once_places_one_bid(self, seller, alice):
        first, second = AuctionFactory(item__owner=seller), AuctionFactory(item__owner=seller)
        replies: dict[UUID, BidAccepted] = {}
        gate = threading.Barrier(2)

        def run(auction: Auction) -> None:
            gate.wait()
            try:
                replies[auction.id] = bid(auction, alice, max_amount="50", request_id="same")
            finally:
                connections.close_all()

        threads = [threading.Thread(target=run, args=(a,)) for a in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        assert len(replies) == 2
        assert sorted(reply.replayed for reply in replies.values()) == [False, True]
        a, b = replies.values()
        assert a.as_data() == b.as_data()
        assert Bid.objects.filter(bidder=alice).count() == 1
        assert BidRequest.objects.filter(bidder=alice, request_id="same").count() == 1
        assert sum(fresh(x).version for x in (first, second)) == 1
