"""The database itself enforces the domain's invariants: raw SQL cannot break them."""

import uuid
from datetime import timedelta

import pytest
from django.db import DataError, IntegrityError, connection, transaction
from django.utils import timezone

from auctions.models import AuctionStatus
from tests.factories import AuctionFactory, ItemFactory

pytestmark = pytest.mark.django_db


def insert(table: str, **values) -> None:
    columns = ", ".join(values)
    placeholders = ", ".join(["%s"] * len(values))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", list(values.values())
        )


def auction_row(item, **overrides) -> dict:
    now = timezone.now()
    row = {
        "id": uuid.uuid4(),
        "item_id": item.id,
        "creator_id": item.owner_id,
        "status": "active",
        "start_time": now,
        "end_time": now + timedelta(hours=1),
        "max_end_time": now + timedelta(hours=1),
        "starting_price": "10.00",
        "min_increment": "0.01",
        "extension_seconds": 0,
        "current_price": "10.00",
        "bid_count": 0,
        "last_seq": 0,
        "version": 0,
        "cancel_reason": "",
        "created_at": now,
        "updated_at": now,
    }
    row.update(overrides)
    return row


def bid_row(auction, bidder, **overrides) -> dict:
    row = {
        "id": uuid.uuid4(),
        "auction_id": auction.id,
        "bidder_id": bidder.id,
        "amount": "20.00",
        "request_id": None,
        "seq": 1,
        "created_at": timezone.now(),
    }
    row.update(overrides)
    return row


class TestAuctionConstraints:
    @pytest.mark.parametrize("first_status", ["pending", "active"])
    @pytest.mark.parametrize("second_status", ["pending", "active"])
    def test_an_item_has_at_most_one_open_auction(self, seller, first_status, second_status):
        item = ItemFactory(owner=seller)
        insert("auctions_auction", **auction_row(item, status=first_status))
        with pytest.raises(IntegrityError, match="auction_one_open_per_item"):
            insert("auctions_auction", **auction_row(item, status=second_status))

    def test_closed_auctions_of_an_item_do_not_count(self, seller):
        item = ItemFactory(owner=seller)
        insert("auctions_auction", **auction_row(item, status="ended"))
        insert("auctions_auction", **auction_row(item, status="cancelled"))
        insert("auctions_auction", **auction_row(item, status="active"))

    def test_end_must_be_after_start(self, seller):
        now = timezone.now()
        item = ItemFactory(owner=seller)
        with pytest.raises(IntegrityError, match="auction_ends_after_start"):
            insert("auctions_auction", **auction_row(item, start_time=now, end_time=now))

    def test_end_cannot_pass_the_extension_cap(self, seller):
        now = timezone.now()
        item = ItemFactory(owner=seller)
        with pytest.raises(IntegrityError, match="auction_end_within_cap"):
            insert(
                "auctions_auction",
                **auction_row(
                    item, end_time=now + timedelta(hours=2), max_end_time=now + timedelta(hours=1)
                ),
            )

    @pytest.mark.parametrize(
        "field",
        ["starting_price", "min_increment", "current_price", "reserve_price", "final_price"],
    )
    @pytest.mark.parametrize("amount", ["0", "-1.00"])
    def test_amounts_are_positive(self, seller, field, amount):
        item = ItemFactory(owner=seller)
        with pytest.raises(IntegrityError, match="auction_amounts_positive"):
            insert("auctions_auction", **auction_row(item, **{field: amount}))

    def test_status_is_one_of_the_four(self, seller):
        item = ItemFactory(owner=seller)
        with pytest.raises(IntegrityError, match="auction_status_valid"):
            insert("auctions_auction", **auction_row(item, status="paused"))

    @pytest.mark.parametrize(("buy_now", "reserve"), [("9.99", None), ("19.99", "20.00")])
    def test_buy_now_is_at_least_the_starting_price_and_the_reserve(self, seller, buy_now, reserve):
        item = ItemFactory(owner=seller)
        row = auction_row(item, buy_now_price=buy_now, reserve_price=reserve)
        with pytest.raises(IntegrityError, match="auction_buy_now_at_least_start_and_reserve"):
            insert("auctions_auction", **row)

    def test_the_leaders_max_covers_the_price(self, seller):
        item = ItemFactory(owner=seller)
        row = auction_row(item, current_price="20.00", leader_max="19.99")
        with pytest.raises(IntegrityError, match="auction_leader_max_covers_price"):
            insert("auctions_auction", **row)

    def test_amounts_cannot_exceed_twelve_digits(self, seller):
        item = ItemFactory(owner=seller)
        with pytest.raises(DataError):
            insert("auctions_auction", **auction_row(item, starting_price="10000000000.00"))


class TestBidConstraints:
    def test_bid_amount_is_positive(self, auction, alice):
        with pytest.raises(IntegrityError, match="bid_amount_positive"):
            insert("bidding_bid", **bid_row(auction, alice, amount="0"))

    def test_two_bids_of_an_auction_cannot_have_the_same_seq(self, auction, alice, bob):
        insert("bidding_bid", **bid_row(auction, alice, amount="20.00"))
        with pytest.raises(IntegrityError, match="bid_unique_seq"):
            insert("bidding_bid", **bid_row(auction, bob, amount="21.00", seq=1))

    def test_two_bids_may_share_an_amount_in_a_tie_of_maxes(self, auction, alice, bob):
        insert("bidding_bid", **bid_row(auction, alice, amount="20.00"))
        insert("bidding_bid", **bid_row(auction, bob, amount="20.00", seq=2))

    def test_a_bidder_cannot_reuse_a_request_id(self, auction, alice):
        insert("bidding_bid", **bid_row(auction, alice, amount="20", request_id="r"))
        with pytest.raises(IntegrityError, match="bid_unique_request"):
            insert("bidding_bid", **bid_row(auction, alice, amount="21", request_id="r", seq=2))

    def test_bids_without_request_id_are_not_constrained_by_it(self, auction, alice):
        insert("bidding_bid", **bid_row(auction, alice, amount="20"))
        insert("bidding_bid", **bid_row(auction, alice, amount="21", seq=2))

    def test_bid_must_belong_to_an_existing_auction(self, alice):
        # Django's foreign keys are deferred: make them surface now.
        with pytest.raises(IntegrityError), transaction.atomic():
            insert("bidding_bid", **bid_row(AuctionFactory.build(), alice))
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class TestEventConstraints:
    def event_row(self, auction, seq: int) -> dict:
        return {
            "id": uuid.uuid4(),
            "auction_id": auction.id,
            "seq": seq,
            "type": "bid_placed",
            "payload": "{}",
            "created_at": timezone.now(),
        }

    def test_seq_is_unique_per_auction(self, auction):
        insert("auctions_auctionevent", **self.event_row(auction, 1))
        with pytest.raises(IntegrityError, match="event_unique_seq"):
            insert("auctions_auctionevent", **self.event_row(auction, 1))

    def test_seq_starts_at_one(self, auction):
        with pytest.raises(IntegrityError, match="event_seq_positive"):
            insert("auctions_auctionevent", **self.event_row(auction, 0))

    def test_the_same_seq_in_two_auctions_is_fine(self, seller, auction):
        other = AuctionFactory(item__owner=seller, status=AuctionStatus.ACTIVE)
        insert("auctions_auctionevent", **self.event_row(auction, 1))
        insert("auctions_auctionevent", **self.event_row(other, 1))
