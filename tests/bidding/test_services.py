"""Bid rules (spec §1, §2): who may bid, when, how much; events; idempotency; soft close."""

from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest
from django.db import connection
from django.utils import timezone

from auctions.errors import BidRejected, Code, NotFound
from auctions.formats import iso
from auctions.models import AuctionStatus
from auctions.services import auction_cancel, auction_close
from bidding.models import Bid, BidRequest
from bidding.services import bid_place
from tests.factories import AuctionFactory

pytestmark = pytest.mark.django_db


def rejection(**kwargs) -> BidRejected:
    with pytest.raises(BidRejected) as error:
        bid_place(**kwargs)
    return error.value


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class TestAccepted:
    def test_first_bid_at_the_starting_price_is_accepted(self, auction, alice):
        accepted = bid_place(auction_id=auction.id, bidder=alice, amount="10.00")
        auction.refresh_from_db()
        assert accepted.seq == 1
        assert accepted.as_data() == {
            "bid_id": str(accepted.bid_id),
            "amount": "10.00",
            "seq": 1,
            "current_price": "10.00",
            "min_next_bid": "11.00",
            "end_time": iso(accepted.end_time),
            "leading": True,
            "max_amount": "10.00",
            "bought": False,
        }
        assert auction.current_price == Decimal("10.00")
        assert auction.highest_bidder == alice
        assert auction.highest_bid_id == accepted.bid_id
        assert auction.bid_count == 1
        assert auction.last_seq == 1
        assert auction.version == 1

    def test_later_bid_at_current_price_plus_increment_is_accepted(self, auction, alice, bob):
        bid_place(auction_id=auction.id, bidder=alice, amount="10")
        accepted = bid_place(auction_id=auction.id, bidder=bob, amount="11")
        assert accepted.current_price == Decimal("11.00")
        assert accepted.min_next_bid == Decimal("12.00")
        assert accepted.seq == 2

    def test_accepted_bid_records_a_bid_placed_event(self, auction, alice):
        accepted = bid_place(auction_id=auction.id, bidder=alice, amount=12.5)
        event = auction.events.get()
        assert (event.seq, event.type) == (1, "bid_placed")
        assert event.payload == {
            "bid_id": str(accepted.bid_id),
            "amount": "12.50",
            "bidder": {"id": str(alice.id), "name": "alice"},
            "auto": False,
            "highest_bidder": {"id": str(alice.id), "name": "alice"},
            "current_price": "12.50",
            "min_next_bid": "13.50",
            "bid_count": 1,
            "end_time": iso(accepted.end_time),
        }
        bid = Bid.objects.get()
        assert (bid.amount, bid.seq, bid.bidder) == (Decimal("12.50"), 1, alice)

    def test_amount_can_be_int_decimal_float_or_numeric_string(self, auction, alice, bob):
        bid_place(auction_id=auction.id, bidder=alice, amount=10)
        bid_place(auction_id=auction.id, bidder=bob, amount=Decimal("11.10"))
        bid_place(auction_id=auction.id, bidder=alice, amount=12.2)
        bid_place(auction_id=auction.id, bidder=bob, amount="13.30")
        amounts = list(Bid.objects.order_by("seq").values_list("amount", flat=True))
        assert amounts == [Decimal(a) for a in ("10.00", "11.10", "12.20", "13.30")]


class TestRejected:
    def test_first_bid_below_the_starting_price_is_too_low(self, auction, alice):
        error = rejection(auction_id=auction.id, bidder=alice, amount="9.99")
        assert error.code == Code.BID_TOO_LOW
        assert error.data == {"current_price": "10.00", "min_next_bid": "10.00"}

    def test_bid_below_min_next_bid_is_too_low(self, auction, alice, bob):
        bid_place(auction_id=auction.id, bidder=alice, amount="10")
        error = rejection(auction_id=auction.id, bidder=bob, amount="10.99")
        assert error.code == Code.BID_TOO_LOW
        assert error.data == {"current_price": "10.00", "min_next_bid": "11.00"}

    def test_creator_cannot_bid_on_own_auction(self, auction, seller):
        assert (
            rejection(auction_id=auction.id, bidder=seller, amount="100").code == Code.OWN_AUCTION
        )

    def test_highest_bidder_cannot_outbid_themselves(self, auction, alice):
        bid_place(auction_id=auction.id, bidder=alice, amount="10")
        error = rejection(auction_id=auction.id, bidder=alice, amount="50")
        assert error.code == Code.ALREADY_HIGHEST

    def test_pending_auction_takes_no_bids(self, seller, alice):
        auction = AuctionFactory(
            item__owner=seller,
            status=AuctionStatus.PENDING,
            start_time=timezone.now() + timedelta(minutes=5),
        )
        error = rejection(auction_id=auction.id, bidder=alice, amount="10")
        assert error.code == Code.AUCTION_NOT_ACTIVE

    def test_cancelled_auction_takes_no_bids(self, auction, seller, alice):
        auction_cancel(auction_id=auction.id, actor=seller)
        error = rejection(auction_id=auction.id, bidder=alice, amount="10")
        assert error.code == Code.AUCTION_NOT_ACTIVE

    def test_ended_auction_takes_no_bids(self, auction, alice):
        auction_close(auction_id=auction.id, early=True)
        assert (
            rejection(auction_id=auction.id, bidder=alice, amount="10").code == Code.AUCTION_ENDED
        )

    def test_bid_after_end_time_is_rejected_before_the_auction_is_closed(self, seller, alice):
        auction = AuctionFactory(item__owner=seller, end_time=timezone.now() - timedelta(minutes=1))
        assert (
            rejection(auction_id=auction.id, bidder=alice, amount="10").code == Code.AUCTION_ENDED
        )
        auction.refresh_from_db()
        assert auction.status == AuctionStatus.ACTIVE
        assert auction.bid_count == 0

    def test_unknown_auction_is_not_found(self, alice):
        with pytest.raises(NotFound):
            bid_place(auction_id=UUID(int=0), bidder=alice, amount="10")

    @pytest.mark.parametrize(
        "amount", [None, "", "abc", "0", -1, "10.001", True, "NaN", float("inf")]
    )
    def test_invalid_amount_is_rejected_and_changes_nothing(self, auction, alice, amount):
        assert (
            rejection(auction_id=auction.id, bidder=alice, amount=amount).code
            == Code.INVALID_AMOUNT
        )
        auction.refresh_from_db()
        assert (auction.bid_count, auction.last_seq, auction.version) == (0, 0, 0)

    def test_rejected_bid_changes_nothing(self, auction, alice, bob):
        bid_place(auction_id=auction.id, bidder=alice, amount="10")
        rejection(auction_id=auction.id, bidder=bob, amount="10.50")
        auction.refresh_from_db()
        assert (auction.bid_count, auction.last_seq, auction.version) == (1, 1, 1)
        assert Bid.objects.count() == 1


class TestIdempotency:
    def test_repeated_request_id_returns_the_earlier_acceptance(self, auction, alice):
        first = bid_place(auction_id=auction.id, bidder=alice, amount="10", request_id="r-1")
        again = bid_place(auction_id=auction.id, bidder=alice, amount="99", request_id="r-1")
        assert again.as_data() == first.as_data()
        assert again.replayed
        assert Bid.objects.count() == 1

    def test_replayed_acceptance_shows_the_state_right_after_that_bid(self, auction, alice, bob):
        first = bid_place(auction_id=auction.id, bidder=alice, amount="10", request_id="r-1")
        bid_place(auction_id=auction.id, bidder=bob, amount="20")
        again = bid_place(auction_id=auction.id, bidder=alice, amount="10", request_id="r-1")
        assert again.current_price == Decimal("10.00")
        assert again.as_data() == first.as_data()

    def test_repeated_request_id_returns_the_earlier_rejection(self, auction, alice):
        first = rejection(auction_id=auction.id, bidder=alice, amount="5", request_id="r-1")
        # The same request again, even with an amount that would now be accepted.
        again = rejection(auction_id=auction.id, bidder=alice, amount="50", request_id="r-1")
        assert (
            (again.code, again.data)
            == (first.code, first.data)
            == (
                Code.BID_TOO_LOW,
                {"current_price": "10.00", "min_next_bid": "10.00"},
            )
        )
        assert Bid.objects.count() == 0
        assert BidRequest.objects.count() == 1

    def test_request_ids_are_per_bidder(self, auction, alice, bob):
        bid_place(auction_id=auction.id, bidder=alice, amount="10", request_id="same")
        accepted = bid_place(auction_id=auction.id, bidder=bob, amount="11", request_id="same")
        assert not accepted.replayed
        assert Bid.objects.count() == 2

    def test_rejection_without_request_id_is_not_stored(self, auction, alice):
        rejection(auction_id=auction.id, bidder=alice, amount="5")
        assert BidRequest.objects.count() == 0


class TestSoftClose:
    def soft_close_auction(self, seller, ends_in: timedelta, cap: timedelta = timedelta(hours=1)):
        end = timezone.now() + ends_in
        return AuctionFactory(
            item__owner=seller, end_time=end, max_end_time=end + cap, extension_seconds=60
        )

    def test_bid_inside_the_window_extends_the_end(self, seller, alice):
        auction = self.soft_close_auction(seller, ends_in=timedelta(seconds=30))
        previous_end = auction.end_time
        accepted = bid_place(auction_id=auction.id, bidder=alice, amount="10")
        auction.refresh_from_db()
        bid = Bid.objects.get()
        assert auction.end_time == bid.created_at + timedelta(seconds=60)
        assert accepted.extended
        events = list(auction.events.order_by("seq"))
        assert [(e.seq, e.type) for e in events] == [(1, "bid_placed"), (2, "auction_extended")]
        assert parse_iso(events[1].payload["end_time"]) == auction.end_time
        assert parse_iso(events[1].payload["previous_end_time"]) == previous_end
        assert parse_iso(events[0].payload["end_time"]) == auction.end_time
        assert auction.last_seq == 2

    def test_bid_outside_the_window_does_not_extend(self, seller, alice):
        auction = self.soft_close_auction(seller, ends_in=timedelta(minutes=10))
        end = auction.end_time
        accepted = bid_place(auction_id=auction.id, bidder=alice, amount="10")
        auction.refresh_from_db()
        assert auction.end_time == end
        assert not accepted.extended
        assert list(auction.events.values_list("type", flat=True)) == ["bid_placed"]

    def test_extension_never_passes_the_cap(self, seller, alice):
        auction = self.soft_close_auction(
            seller, ends_in=timedelta(seconds=30), cap=timedelta(seconds=10)
        )
        bid_place(auction_id=auction.id, bidder=alice, amount="10")
        auction.refresh_from_db()
        assert auction.end_time == auction.max_end_time

    def test_no_extension_once_the_cap_is_reached(self, seller, alice):
        end = timezone.now() + timedelta(seconds=30)
        auction = AuctionFactory(
            item__owner=seller, end_time=end, max_end_time=end, extension_seconds=60
        )
        bid_place(auction_id=auction.id, bidder=alice, amount="10")
        auction.refresh_from_db()
        assert auction.end_time == end
        assert list(auction.events.values_list("type", flat=True)) == ["bid_placed"]

    def test_soft_close_off_never_extends(self, seller, alice):
        end = timezone.now() + timedelta(seconds=5)
        auction = AuctionFactory(item__owner=seller, end_time=end, extension_seconds=0)
        bid_place(auction_id=auction.id, bidder=alice, amount="10")
        auction.refresh_from_db()
        assert auction.end_time == end

    def test_rejected_bid_does_not_extend(self, seller, alice):
        auction = self.soft_close_auction(seller, ends_in=timedelta(seconds=30))
        end = auction.end_time
        rejection(auction_id=auction.id, bidder=alice, amount="1")
        auction.refresh_from_db()
        assert auction.end_time == end


class TestPreparedStatement:
    def test_the_bid_engine_statements_run_prepared_on_the_server(self, auction, alice, bob):
        """Django turns server-side preparation off unless OPTIONS asks for it; the bid
        statements' speed depends on it (planning the write costs as much as running it)."""
        first = bid_place(auction_id=auction.id, bidder=alice, amount=auction.starting_price)
        bid_place(auction_id=auction.id, bidder=bob, amount=first.min_next_bid, request_id="r-1")
        rejection(auction_id=auction.id, bidder=alice, amount=auction.starting_price)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements"
            )
            prepared = cursor.fetchall()
        runs = {
            what: sum(count for statement, count in prepared if marker in statement)
            for what, marker in [("lock", "FOR UPDATE"), ("write", "WITH moved AS")]
        }
        assert runs == {"lock": 3, "write": 2}  # the rejection without a request id writes nothing
