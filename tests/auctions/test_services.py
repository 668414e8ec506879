"""Auction lifecycle rules (spec §1): create, start, close, cancel, and their events."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from auctions.errors import Code, DomainError, NotFound, PermissionDenied, ValidationFailed
from auctions.models import Auction, AuctionEvent, AuctionStatus
from auctions.services import auction_cancel, auction_close, auction_create, auction_start
from bidding.services import bid_place
from tests.factories import AuctionFactory, ItemFactory, UserFactory

pytestmark = pytest.mark.django_db


def event_types(auction: Auction) -> list[tuple[int, str]]:
    return list(
        AuctionEvent.objects.filter(auction=auction).order_by("seq").values_list("seq", "type")
    )


class TestCreate:
    def test_without_start_time_is_active_at_once_without_event(self, seller):
        auction = auction_create(
            creator=seller, item_name="Lamp", starting_price="10", duration_seconds=60
        )
        assert auction.status == AuctionStatus.ACTIVE
        assert auction.current_price == Decimal("10.00")
        assert auction.min_increment == Decimal("0.01")
        assert auction.end_time - auction.start_time == timedelta(seconds=60)
        assert event_types(auction) == []

    def test_with_past_start_time_is_active_at_once(self, seller):
        past = timezone.now() - timedelta(hours=1)
        auction = auction_create(
            creator=seller, item_name="Lamp", starting_price=5, start_time=past, duration_seconds=60
        )
        assert auction.status == AuctionStatus.ACTIVE
        assert auction.start_time > past

    def test_with_future_start_time_is_pending(self, seller):
        start = timezone.now() + timedelta(minutes=5)
        auction = auction_create(
            creator=seller,
            item_name="Lamp",
            starting_price="5.50",
            start_time=start,
            end_time=start + timedelta(hours=1),
        )
        assert auction.status == AuctionStatus.PENDING
        assert auction.start_time == start

    def test_soft_close_sets_the_extension_cap(self, seller):
        auction = auction_create(
            creator=seller,
            item_name="Lamp",
            starting_price=1,
            duration_seconds=60,
            extension_seconds=30,
        )
        assert auction.max_end_time - auction.end_time == timedelta(hours=1)

    @pytest.mark.parametrize(
        "changes",
        [
            {"duration_seconds": None},
            {"end_time": "both"},
            {"duration_seconds": 0},
            {"duration_seconds": -5},
            {"duration_seconds": True},
            {"starting_price": "0"},
            {"starting_price": "abc"},
            {"starting_price": "1.001"},
            {"reserve_price": "5"},
            {"min_increment": "-1"},
            {"extension_seconds": -1},
            {"extension_seconds": "30"},
            {"item_name": "   "},
            {"item_name": "x" * 201},
            {"item_name": "a\x00b"},
            {"item_description": "lone \ud800 surrogate"},
        ],
    )
    def test_invalid_input_is_rejected_and_creates_nothing(self, seller, changes):
        fields = {"item_name": "Lamp", "starting_price": "10", "duration_seconds": 60}
        fields.update(changes)
        if fields.get("end_time") == "both":
            fields["end_time"] = timezone.now() + timedelta(hours=1)
        if fields.get("duration_seconds") is None and "end_time" not in fields:
            fields.pop("duration_seconds")
        with pytest.raises(ValidationFailed):
            auction_create(creator=seller, **fields)
        assert not Auction.objects.exists()

    def test_end_time_in_the_past_is_rejected(self, seller):
        with pytest.raises(ValidationFailed):
            auction_create(
                creator=seller,
                item_name="Lamp",
                starting_price=1,
                end_time=timezone.now() - timedelta(seconds=1),
            )

    def test_end_before_start_is_rejected(self, seller):
        start = timezone.now() + timedelta(hours=2)
        with pytest.raises(ValidationFailed):
            auction_create(
                creator=seller,
                item_name="Lamp",
                starting_price=1,
                start_time=start,
                end_time=start - timedelta(minutes=1),
            )

    def test_an_item_can_have_only_one_open_auction(self, seller):
        first = auction_create(
            creator=seller, item_name="Lamp", starting_price=1, duration_seconds=60
        )
        with pytest.raises(DomainError) as error:
            auction_create(
                creator=seller, item_id=first.item_id, starting_price=1, duration_seconds=60
            )
        assert error.value.code == Code.ITEM_UNAVAILABLE

    def test_an_item_can_be_auctioned_again_after_its_auction_ended(self, seller):
        first = auction_create(
            creator=seller, item_name="Lamp", starting_price=1, duration_seconds=60
        )
        auction_close(auction_id=first.id, early=True)
        again = auction_create(
            creator=seller, item_id=first.item_id, starting_price=1, duration_seconds=60
        )
        assert again.status == AuctionStatus.ACTIVE

    def test_only_the_owner_can_auction_an_item(self, seller, alice):
        item = ItemFactory(owner=seller)
        with pytest.raises(PermissionDenied):
            auction_create(creator=alice, item_id=item.id, starting_price=1, duration_seconds=60)

    def test_unknown_item_is_not_found(self, seller):
        with pytest.raises(NotFound):
            auction_create(
                creator=seller,
                item_id="00000000-0000-0000-0000-000000000000",
                starting_price=1,
                duration_seconds=60,
            )


class TestStart:
    def test_pending_auction_starts_at_its_start_time_with_an_event(self, seller):
        auction = AuctionFactory(
            item__owner=seller,
            status=AuctionStatus.PENDING,
            start_time=timezone.now() - timedelta(minutes=1),
        )
        assert auction_start(auction_id=auction.id) is True
        auction.refresh_from_db()
        assert auction.status == AuctionStatus.ACTIVE
        assert event_types(auction) == [(1, "auction_started")]
        payload = auction.events.get().payload
        assert payload["status"] == "active"
        assert payload["current_price"] == "10.00"
        assert payload["min_next_bid"] == "10.00"

    def test_pending_auction_does_not_start_early(self, seller):
        auction = AuctionFactory(
            item__owner=seller,
            status=AuctionStatus.PENDING,
            start_time=timezone.now() + timedelta(minutes=1),
        )
        assert auction_start(auction_id=auction.id) is False
        auction.refresh_from_db()
        assert auction.status == AuctionStatus.PENDING
        assert event_types(auction) == []

    def test_starting_twice_starts_once(self, seller):
        auction = AuctionFactory(
            item__owner=seller,
            status=AuctionStatus.PENDING,
            start_time=timezone.now() - timedelta(minutes=1),
        )
        assert auction_start(auction_id=auction.id) is True
        assert auction_start(auction_id=auction.id) is False
        assert event_types(auction) == [(1, "auction_started")]


class TestClose:
    def test_highest_bidder_wins_when_there_is_no_reserve(self, auction, alice, bob):
        bid_place(auction_id=auction.id, bidder=alice, amount="10")
        winning = bid_place(auction_id=auction.id, bidder=bob, amount="12")
        assert auction_close(auction_id=auction.id, early=True) is True
        auction.refresh_from_db()
        assert auction.status == AuctionStatus.ENDED
        assert auction.winner == bob
        assert auction.final_price == Decimal("12.00")
        ended = auction.events.get(type="auction_ended").payload
        assert ended == {
            "status": "ended",
            "final_price": "12.00",
            "winner": {"id": str(bob.id), "name": "bob"},
            "winning_bid_id": str(winning.bid_id),
            "reserve_met": True,
            "reason": "ended",
        }

    def test_reserve_not_met_ends_without_winner(self, seller, alice):
        auction = AuctionFactory(item__owner=seller, reserve_price=Decimal("50.00"))
        bid_place(auction_id=auction.id, bidder=alice, amount="20")
        auction_close(auction_id=auction.id, early=True)
        auction.refresh_from_db()
        assert auction.winner is None
        assert auction.final_price is None
        ended = auction.events.get(type="auction_ended").payload
        assert ended["winner"] is None
        assert ended["final_price"] is None
        assert ended["winning_bid_id"] is None
        assert ended["reserve_met"] is False

    def test_reserve_met_exactly_has_a_winner(self, seller, alice):
        auction = AuctionFactory(item__owner=seller, reserve_price=Decimal("20.00"))
        bid_place(auction_id=auction.id, bidder=alice, amount="20")
        auction_close(auction_id=auction.id, early=True)
        auction.refresh_from_db()
        assert auction.winner == alice
        assert auction.reserve_met is True

    def test_no_bids_ends_without_winner(self, auction):
        auction_close(auction_id=auction.id, early=True)
        auction.refresh_from_db()
        assert auction.winner is None
        assert auction.events.get(type="auction_ended").payload["reserve_met"] is True

    def test_auction_is_not_closed_before_its_end_time(self, auction):
        assert auction_close(auction_id=auction.id) is False
        auction.refresh_from_db()
        assert auction.status == AuctionStatus.ACTIVE

    def test_auction_past_its_end_time_is_closed(self, seller):
        auction = AuctionFactory(item__owner=seller, end_time=timezone.now() - timedelta(minutes=1))
        assert auction_close(auction_id=auction.id) is True

    def test_closing_twice_ends_once_with_one_event(self, auction):
        assert auction_close(auction_id=auction.id, early=True) is True
        assert auction_close(auction_id=auction.id, early=True) is False
        assert event_types(auction) == [(1, "auction_ended")]

    def test_pending_auction_cannot_be_closed_early(self, seller):
        auction = AuctionFactory(
            item__owner=seller,
            status=AuctionStatus.PENDING,
            start_time=timezone.now() + timedelta(minutes=1),
        )
        with pytest.raises(DomainError) as error:
            auction_close(auction_id=auction.id, early=True)
        assert error.value.code == Code.AUCTION_NOT_ACTIVE

    def test_unknown_auction_is_not_found(self, db):
        with pytest.raises(NotFound):
            auction_close(auction_id=uuid.uuid4())


class TestCancel:
    def test_creator_cancels_a_pending_auction(self, seller):
        auction = AuctionFactory(
            item__owner=seller,
            status=AuctionStatus.PENDING,
            start_time=timezone.now() + timedelta(minutes=1),
        )
        auction_cancel(auction_id=auction.id, actor=seller, reason="changed my mind")
        auction.refresh_from_db()
        assert auction.status == AuctionStatus.CANCELLED
        assert auction.events.get().payload == {"status": "cancelled", "reason": "changed my mind"}

    def test_creator_cancels_an_active_auction_without_bids(self, auction, seller):
        auction_cancel(auction_id=auction.id, actor=seller)
        auction.refresh_from_db()
        assert auction.status == AuctionStatus.CANCELLED

    def test_active_auction_with_bids_cannot_be_cancelled(self, auction, seller, alice):
        bid_place(auction_id=auction.id, bidder=alice, amount="10")
        with pytest.raises(DomainError) as error:
            auction_cancel(auction_id=auction.id, actor=seller)
        assert error.value.code == Code.NOT_CANCELLABLE
        auction.refresh_from_db()
        assert auction.status == AuctionStatus.ACTIVE

    def test_ended_auction_cannot_be_cancelled(self, auction, seller):
        auction_close(auction_id=auction.id, early=True)
        with pytest.raises(DomainError) as error:
            auction_cancel(auction_id=auction.id, actor=seller)
        assert error.value.code == Code.NOT_CANCELLABLE

    def test_someone_else_cannot_cancel(self, auction, alice):
        with pytest.raises(PermissionDenied):
            auction_cancel(auction_id=auction.id, actor=alice)

    def test_staff_can_cancel(self, auction):
        staff = UserFactory(is_staff=True)
        auction_cancel(auction_id=auction.id, actor=staff)
        auction.refresh_from_db()
        assert auction.status == AuctionStatus.CANCELLED
        assert auction.cancel_reason == "cancelled by staff"
