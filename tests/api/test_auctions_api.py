"""The HTTP API's auction endpoints (spec §3): shapes, status codes, pagination, money."""

import json
from datetime import timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from django.test import RequestFactory, override_settings
from django.utils import timezone

from api.base import STATUS_BY_CODE
from api.site import api
from auctions.errors import BidRejected, Code
from auctions.models import Auction, AuctionStatus
from auctions.services import auction_close
from bidding.models import Bid
from bidding.services import bid_place
from tests.factories import AuctionFactory, ItemFactory, UserFactory

pytestmark = pytest.mark.django_db


def bids_url(auction) -> str:
    return f"/api/auctions/{auction.id}/bids/"


def ended_auction(seller) -> Auction:
    """An auction still marked active whose end time has passed."""
    now = timezone.now()
    return AuctionFactory(
        item__owner=seller,
        start_time=now - timedelta(hours=2),
        end_time=now - timedelta(minutes=1),
        max_end_time=now - timedelta(minutes=1),
    )


def pending_auction(seller) -> Auction:
    now = timezone.now()
    return AuctionFactory(
        item__owner=seller,
        status=AuctionStatus.PENDING,
        start_time=now + timedelta(hours=1),
        end_time=now + timedelta(hours=2),
        max_end_time=now + timedelta(hours=2),
    )


class TestListAuctions:
    def test_list_is_paginated_with_count_next_and_results(self, alice_api, auction):
        response = alice_api.get("/api/auctions/")
        assert response.status_code == 200
        body = response.json()
        assert body["count"] == 1
        assert body["next"] is None
        assert [a["id"] for a in body["results"]] == [str(auction.id)]

    def test_list_results_are_auction_snapshots(self, alice_api, auction):
        result = alice_api.get("/api/auctions/").json()["results"][0]
        assert result == {
            "id": str(auction.id),
            "item": {
                "id": str(auction.item.id),
                "name": auction.item.name,
                "description": auction.item.description,
                "category": None,
                "images": [],
            },
            "status": "active",
            "starting_price": "10.00",
            "current_price": "10.00",
            "min_next_bid": "10.00",
            "min_increment": "1.00",
            "increments": None,
            "buy_now_price": None,
            "reserve_met": True,
            "bid_count": 0,
            "highest_bidder": None,
            "start_time": result["start_time"],
            "end_time": result["end_time"],
            "seq": 0,
            "winner": None,
        }
        assert result["end_time"].endswith("Z")

    def test_status_filter_returns_only_auctions_of_that_status(self, alice_api, seller):
        active = AuctionFactory(item__owner=seller)
        pending_auction(seller)
        body = alice_api.get("/api/auctions/?status=active").json()
        assert [a["id"] for a in body["results"]] == [str(active.id)]
        assert body["count"] == 1

    def test_active_auctions_are_listed_ending_soonest_first(self, alice_api, seller):
        now = timezone.now()
        later = AuctionFactory(item__owner=seller, end_time=now + timedelta(hours=3))
        sooner = AuctionFactory(item__owner=seller, end_time=now + timedelta(minutes=5))
        results = alice_api.get("/api/auctions/?status=active").json()["results"]
        assert [a["id"] for a in results] == [str(sooner.id), str(later.id)]

    def test_unknown_status_is_a_bad_request(self, alice_api):
        response = alice_api.get("/api/auctions/?status=sold")
        assert response.status_code == 400
        assert response.json()["code"] == "validation_error"
        assert response.json()["message"].startswith("status:")

    def test_next_is_an_absolute_url_to_the_following_page(self, alice_api, seller):
        for _ in range(3):
            AuctionFactory(item__owner=seller)
        first = alice_api.get("/api/auctions/?status=active&limit=2").json()
        assert first["count"] == 3
        assert len(first["results"]) == 2
        assert first["next"].startswith("http://testserver/api/auctions/?")
        assert "status=active" in first["next"]
        assert "limit=2" in first["next"]
        assert "offset=2" in first["next"]
        second = alice_api.get(first["next"]).json()
        assert len(second["results"]) == 1
        assert second["next"] is None
        ids = {a["id"] for a in first["results"] + second["results"]}
        assert len(ids) == 3

    def test_offset_skips_results(self, alice_api, seller):
        now = timezone.now()
        auctions = [
            AuctionFactory(item__owner=seller, end_time=now + timedelta(hours=h)) for h in (1, 2, 3)
        ]
        body = alice_api.get("/api/auctions/?status=active&offset=1&limit=1").json()
        assert [a["id"] for a in body["results"]] == [str(auctions[1].id)]
        assert body["count"] == 3

    def test_offset_past_the_end_gives_an_empty_page(self, alice_api, auction):
        body = alice_api.get("/api/auctions/?offset=10").json()
        assert body == {"count": 1, "next": None, "results": []}

    def test_limit_defaults_to_50(self, alice_api, seller):
        for _ in range(51):
            AuctionFactory(item__owner=seller)
        body = alice_api.get("/api/auctions/").json()
        assert len(body["results"]) == 50
        assert "offset=50" in body["next"]

    def test_limit_of_500_is_accepted(self, alice_api):
        assert alice_api.get("/api/auctions/?limit=500").status_code == 200

    @pytest.mark.parametrize("limit", ["501", "0", "-1", "ten"])
    def test_limit_outside_1_to_500_is_rejected_with_400(self, alice_api, limit):
        response = alice_api.get(f"/api/auctions/?limit={limit}")
        assert response.status_code == 400
        body = response.json()
        assert body["code"] == "validation_error"
        assert body["message"].startswith("limit:")
        assert body["data"]["errors"][0]["field"] == "limit"

    def test_negative_offset_is_rejected_with_400(self, alice_api):
        response = alice_api.get("/api/auctions/?offset=-1")
        assert response.status_code == 400
        assert response.json()["code"] == "validation_error"


class TestCreateAuction:
    def test_create_with_a_new_item_returns_201_and_the_snapshot(self, alice_api, alice):
        response = alice_api.post_json(
            "/api/auctions/",
            {
                "item": {"name": "Lamp", "description": "Brass."},
                "starting_price": "25.50",
                "duration_seconds": 3600,
            },
        )
        assert response.status_code == 201
        body = response.json()
        auction = Auction.objects.get(id=body["id"])
        assert auction.creator == alice
        assert auction.item.owner == alice
        assert body["item"]["name"] == "Lamp"
        assert body["item"]["description"] == "Brass."
        assert body["status"] == "active"
        assert body["starting_price"] == "25.50"
        assert body["min_increment"] == "0.01"
        assert body["seq"] == 0

    def test_amounts_given_as_json_numbers_are_exact(self, alice_api):
        response = alice_api.post_json(
            "/api/auctions/",
            '{"item": {"name": "Vase"}, "starting_price": 150.10, "reserve_price": 200.20,'
            ' "min_increment": 0.10, "duration_seconds": 600}',
        )
        assert response.status_code == 201
        auction = Auction.objects.get(id=response.json()["id"])
        assert auction.starting_price == Decimal("150.10")
        assert auction.reserve_price == Decimal("200.20")
        assert auction.min_increment == Decimal("0.10")
        assert response.json()["reserve_met"] is False

    def test_create_with_an_existing_item_of_yours(self, alice_api, alice):
        item = ItemFactory(owner=alice)
        response = alice_api.post_json(
            "/api/auctions/",
            {"item_id": str(item.id), "starting_price": 5, "duration_seconds": 60},
        )
        assert response.status_code == 201
        assert response.json()["item"]["id"] == str(item.id)

    def test_auctioning_someone_elses_item_is_forbidden(self, alice_api, bob):
        item = ItemFactory(owner=bob)
        response = alice_api.post_json(
            "/api/auctions/",
            {"item_id": str(item.id), "starting_price": 5, "duration_seconds": 60},
        )
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"

    def test_unknown_item_id_is_not_found(self, alice_api):
        response = alice_api.post_json(
            "/api/auctions/",
            {"item_id": str(uuid4()), "starting_price": 5, "duration_seconds": 60},
        )
        assert response.status_code == 404
        assert response.json() == {"code": "not_found", "message": "No such item."}

    def test_item_already_on_sale_is_a_conflict(self, seller_api, auction):
        response = seller_api.post_json(
            "/api/auctions/",
            {"item_id": str(auction.item.id), "starting_price": 5, "duration_seconds": 60},
        )
        assert response.status_code == 409
        assert response.json()["code"] == "item_unavailable"

    def test_future_start_time_makes_a_pending_auction(self, alice_api):
        start = timezone.now() + timedelta(days=1)
        response = alice_api.post_json(
            "/api/auctions/",
            {
                "item": {"name": "Clock"},
                "starting_price": "1",
                "start_time": start.isoformat(),
                "end_time": (start + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
            },
        )
        assert response.status_code == 201
        assert response.json()["status"] == "pending"

    def test_start_time_without_a_time_zone_is_rejected_with_422(self, alice_api):
        response = alice_api.post_json(
            "/api/auctions/",
            {
                "item": {"name": "Clock"},
                "starting_price": "1",
                "start_time": "2030-01-01T10:00:00",
                "duration_seconds": 60,
            },
        )
        assert response.status_code == 422
        body = response.json()
        assert body["code"] == "validation_error"
        assert body["data"]["errors"][0]["field"] == "start_time"

    def test_end_time_without_a_time_zone_is_rejected_with_422(self, alice_api):
        response = alice_api.post_json(
            "/api/auctions/",
            {"item": {"name": "Clock"}, "starting_price": "1", "end_time": "2030-01-01T10:00:00"},
        )
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"

    def test_end_time_as_a_number_is_rejected_with_422(self, alice_api):
        response = alice_api.post_json(
            "/api/auctions/",
            {"item": {"name": "Clock"}, "starting_price": "1", "end_time": 1900000000},
        )
        assert response.status_code == 422
        assert "ISO 8601" in response.json()["message"]

    def test_both_end_time_and_duration_is_a_validation_error(self, alice_api):
        response = alice_api.post_json(
            "/api/auctions/",
            {
                "item": {"name": "Clock"},
                "starting_price": "1",
                "end_time": (timezone.now() + timedelta(hours=1)).isoformat(),
                "duration_seconds": 60,
            },
        )
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"

    @pytest.mark.parametrize("price", ["0", "-5", "1.001", "abc", 0.001, None])
    def test_bad_starting_price_is_a_validation_error(self, alice_api, price):
        response = alice_api.post_json(
            "/api/auctions/",
            {"item": {"name": "Clock"}, "starting_price": price, "duration_seconds": 60},
        )
        assert response.status_code == 422
        body = response.json()
        assert body["code"] == "validation_error"
        assert body["data"] == {"field": "starting_price"}

    def test_missing_starting_price_is_a_validation_error(self, alice_api):
        response = alice_api.post_json(
            "/api/auctions/", {"item": {"name": "Clock"}, "duration_seconds": 60}
        )
        assert response.status_code == 422
        assert response.json()["message"] == "starting_price: Field required"

    def test_neither_item_nor_item_id_is_a_validation_error(self, alice_api):
        response = alice_api.post_json(
            "/api/auctions/", {"starting_price": "1", "duration_seconds": 60}
        )
        assert response.status_code == 422
        assert response.json()["data"] == {"field": "item"}

    def test_boolean_duration_is_a_validation_error(self, alice_api):
        response = alice_api.post_json(
            "/api/auctions/",
            {"item": {"name": "Clock"}, "starting_price": "1", "duration_seconds": True},
        )
        assert response.status_code == 422

    def test_empty_body_is_a_validation_error(self, alice_api):
        response = alice_api.post_json("/api/auctions/", "")
        assert response.status_code == 422
        assert response.json()["message"] == "A JSON body is required."

    def test_body_that_is_not_an_object_is_a_validation_error(self, alice_api):
        response = alice_api.post_json("/api/auctions/", "[1, 2]")
        assert response.status_code == 422
        assert response.json() == {
            "code": "validation_error",
            "message": "The request body must be a JSON object.",
        }

    def test_malformed_json_is_rejected_with_400_invalid_json(self, alice_api):
        response = alice_api.post_json("/api/auctions/", '{"item": ')
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_json"


class TestGetAuction:
    def test_get_returns_the_snapshot(self, alice_api, auction, alice):
        bid_place(auction_id=auction.id, bidder=alice, amount="12")
        response = alice_api.get(f"/api/auctions/{auction.id}/")
        assert response.status_code == 200
        body = response.json()
        assert body["id"] == str(auction.id)
        assert body["current_price"] == "12.00"
        assert body["min_next_bid"] == "13.00"
        assert body["bid_count"] == 1
        assert body["highest_bidder"] == {"id": str(alice.id), "name": "alice"}
        assert body["seq"] == 1

    def test_ended_auction_shows_its_winner(self, alice_api, alice, seller):
        auction = AuctionFactory(item__owner=seller)
        bid_place(auction_id=auction.id, bidder=alice, amount="12")
        auction_close(auction_id=auction.id, early=True)
        body = alice_api.get(f"/api/auctions/{auction.id}/").json()
        assert body["status"] == "ended"
        assert body["winner"] == {"id": str(alice.id), "name": "alice"}

    def test_unknown_auction_is_404_not_found(self, alice_api):
        response = alice_api.get(f"/api/auctions/{uuid4()}/")
        assert response.status_code == 404
        assert response.json() == {"code": "not_found", "message": "No such auction."}

    def test_malformed_auction_id_is_404_not_found(self, alice_api):
        response = alice_api.get("/api/auctions/not-a-uuid/")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


class TestPlaceBid:
    def test_accepted_bid_returns_201_with_the_bid_accepted_data(self, alice_api, auction):
        response = alice_api.post_json(bids_url(auction), {"amount": "10.00", "request_id": "r-1"})
        assert response.status_code == 201
        body = response.json()
        bid = Bid.objects.get()
        auction.refresh_from_db()
        assert body == {
            "auction_id": str(auction.id),
            "request_id": "r-1",
            "bid_id": str(bid.id),
            "amount": "10.00",
            "seq": 1,
            "current_price": "10.00",
            "min_next_bid": "11.00",
            "end_time": body["end_time"],
            "leading": True,
            "max_amount": "10.00",
            "bought": False,
        }
        assert body["end_time"].endswith("Z")

    def test_bid_without_request_id_echoes_null(self, alice_api, auction):
        response = alice_api.post_json(bids_url(auction), {"amount": 10})
        assert response.status_code == 201
        assert response.json()["request_id"] is None

    def test_amount_as_a_json_number_is_parsed_exactly(self, alice_api, auction):
        response = alice_api.post_json(bids_url(auction), '{"amount": 150.10}')
        assert response.status_code == 201
        assert response.json()["amount"] == "150.10"
        assert Bid.objects.get().amount == Decimal("150.10")

    def test_amount_with_hidden_extra_decimals_is_not_rounded_by_float(self, alice_api, auction):
        # As a binary float this would be 150.1; parsed exactly it has 15 decimals.
        response = alice_api.post_json(bids_url(auction), '{"amount": 150.100000000000001}')
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_amount"
        assert not Bid.objects.exists()

    def test_amount_in_exponent_notation_is_accepted(self, alice_api, auction):
        response = alice_api.post_json(bids_url(auction), '{"amount": 1.5e2}')
        assert response.status_code == 201
        assert response.json()["amount"] == "150.00"

    def test_amount_too_large_for_a_float_is_rejected_as_invalid_amount(self, alice_api, auction):
        response = alice_api.post_json(bids_url(auction), '{"amount": 1e309}')
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_amount"

    def test_nan_literal_is_rejected_as_invalid_json(self, alice_api, auction):
        response = alice_api.post_json(bids_url(auction), '{"amount": NaN}')
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_json"
        assert not Bid.objects.exists()

    def test_infinity_literal_is_rejected_as_invalid_json(self, alice_api, auction):
        response = alice_api.post_json(bids_url(auction), '{"amount": -Infinity}')
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_json"

    @pytest.mark.parametrize(
        "amount",
        ['"NaN"', '"Infinity"', "0", "-10", "10.001", '"abc"', "true", "null", "[10]", '""'],
    )
    def test_bad_amount_is_rejected_with_422_invalid_amount(self, alice_api, auction, amount):
        response = alice_api.post_json(bids_url(auction), f'{{"amount": {amount}}}')
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_amount"
        assert not Bid.objects.exists()

    def test_missing_amount_is_rejected_with_422_invalid_amount(self, alice_api, auction):
        response = alice_api.post_json(bids_url(auction), {})
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_amount"

    def test_bid_below_min_next_bid_is_rejected_with_409(self, alice_api, auction):
        response = alice_api.post_json(bids_url(auction), {"amount": "9.99"})
        assert response.status_code == 409
        assert response.json() == {
            "code": "bid_too_low",
            "message": "Your bid is too low: the next bid must be at least 10.00.",
            "data": {"current_price": "10.00", "min_next_bid": "10.00"},
        }

    def test_bid_on_own_auction_is_rejected_with_409(self, seller_api, auction):
        response = seller_api.post_json(bids_url(auction), {"amount": "10"})
        assert response.status_code == 409
        assert response.json()["code"] == "own_auction"

    def test_outbidding_yourself_is_rejected_with_409(self, alice_api, auction):
        alice_api.post_json(bids_url(auction), {"amount": "10"})
        response = alice_api.post_json(bids_url(auction), {"amount": "20"})
        assert response.status_code == 409
        assert response.json()["code"] == "already_highest"
        assert response.json()["data"] == {"current_price": "10.00", "min_next_bid": "11.00"}

    def test_bid_on_a_pending_auction_is_rejected_with_409(self, alice_api, seller):
        auction = pending_auction(seller)
        response = alice_api.post_json(bids_url(auction), {"amount": "10"})
        assert response.status_code == 409
        assert response.json()["code"] == "auction_not_active"

    def test_bid_after_the_end_time_is_rejected_with_409(self, alice_api, seller):
        auction = ended_auction(seller)
        response = alice_api.post_json(bids_url(auction), {"amount": "10"})
        assert response.status_code == 409
        assert response.json()["code"] == "auction_ended"

    def test_bid_on_an_unknown_auction_is_404_not_found(self, alice_api):
        response = alice_api.post_json(f"/api/auctions/{uuid4()}/bids/", {"amount": "10"})
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"

    def test_bid_on_a_malformed_auction_id_is_404_not_found(self, alice_api):
        response = alice_api.post_json("/api/auctions/123/bids/", {"amount": "10"})
        assert response.status_code == 404

    @pytest.mark.parametrize("request_id", ['"' + "x" * 65 + '"', "42", "[]", "true"])
    def test_request_id_that_is_not_a_short_string_is_rejected_with_422(
        self, alice_api, auction, request_id
    ):
        response = alice_api.post_json(
            bids_url(auction), f'{{"amount": "10", "request_id": {request_id}}}'
        )
        assert response.status_code == 422
        body = response.json()
        assert body["code"] == "validation_error"
        assert body["data"] == {"field": "request_id"}
        assert not Bid.objects.exists()

    def test_request_id_of_64_characters_is_accepted(self, alice_api, auction):
        response = alice_api.post_json(bids_url(auction), {"amount": "10", "request_id": "x" * 64})
        assert response.status_code == 201

    def test_replayed_request_id_returns_the_same_201_and_creates_no_second_bid(
        self, alice_api, auction
    ):
        first = alice_api.post_json(bids_url(auction), {"amount": "10", "request_id": "same"})
        again = alice_api.post_json(bids_url(auction), {"amount": "10", "request_id": "same"})
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again["Idempotent-Replayed"] == "true"
        assert "Idempotent-Replayed" not in first
        assert Bid.objects.count() == 1
        auction.refresh_from_db()
        assert auction.last_seq == 1

    def test_replayed_rejected_bid_gets_the_same_rejection(self, alice_api, auction):
        first = alice_api.post_json(bids_url(auction), {"amount": "5", "request_id": "low"})
        again = alice_api.post_json(bids_url(auction), {"amount": "5", "request_id": "low"})
        assert first.status_code == again.status_code == 409
        assert again.json() == first.json()


class TestBidHistory:
    def test_history_lists_bids_newest_first(self, alice_api, auction, alice, bob):
        bid_place(auction_id=auction.id, bidder=alice, amount="10")
        bid_place(auction_id=auction.id, bidder=bob, amount="11.50")
        response = alice_api.get(bids_url(auction))
        assert response.status_code == 200
        body = response.json()
        assert body["count"] == 2
        assert body["next"] is None
        assert [(b["amount"], b["seq"]) for b in body["results"]] == [("11.50", 2), ("10.00", 1)]

    def test_a_bid_shows_id_amount_bidder_created_at_and_seq(self, alice_api, auction, bob):
        accepted = bid_place(auction_id=auction.id, bidder=bob, amount="10")
        bid = alice_api.get(bids_url(auction)).json()["results"][0]
        assert bid == {
            "id": str(accepted.bid_id),
            "amount": "10.00",
            "bidder": {"id": str(bob.id), "name": "bob"},
            "auto": False,
            "created_at": bid["created_at"],
            "seq": 1,
        }
        assert bid["created_at"].endswith("Z")

    def test_history_is_paginated(self, alice_api, auction, alice, bob):
        for amount, bidder in (("10", alice), ("11", bob), ("12", alice)):
            bid_place(auction_id=auction.id, bidder=bidder, amount=amount)
        first = alice_api.get(bids_url(auction) + "?limit=2").json()
        assert [b["amount"] for b in first["results"]] == ["12.00", "11.00"]
        assert first["count"] == 3
        second = alice_api.get(first["next"]).json()
        assert [b["amount"] for b in second["results"]] == ["10.00"]
        assert second["next"] is None

    def test_history_of_an_unknown_auction_is_404(self, alice_api):
        response = alice_api.get(f"/api/auctions/{uuid4()}/bids/")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


class TestEvents:
    @pytest.fixture
    def three_events(self, auction, alice, bob):
        bid_place(auction_id=auction.id, bidder=alice, amount="10")
        bid_place(auction_id=auction.id, bidder=bob, amount="11")
        auction_close(auction_id=auction.id, early=True)
        return auction

    def test_events_are_listed_in_seq_order_as_messages(self, alice_api, three_events):
        auction = three_events
        body = alice_api.get(f"/api/auctions/{auction.id}/events/").json()
        assert body["count"] == 3
        assert [(e["seq"], e["type"]) for e in body["results"]] == [
            (1, "bid_placed"),
            (2, "bid_placed"),
            (3, "auction_ended"),
        ]
        first = body["results"][0]
        assert first["auction_id"] == str(auction.id)
        assert isinstance(first["timestamp"], float)
        assert first["data"]["amount"] == "10.00"

    def test_since_seq_returns_only_later_events(self, alice_api, three_events):
        body = alice_api.get(f"/api/auctions/{three_events.id}/events/?since_seq=1").json()
        assert [e["seq"] for e in body["results"]] == [2, 3]
        assert body["count"] == 2

    def test_since_seq_at_the_latest_seq_returns_nothing(self, alice_api, three_events):
        body = alice_api.get(f"/api/auctions/{three_events.id}/events/?since_seq=3").json()
        assert body == {"count": 0, "next": None, "results": []}

    def test_since_seq_beyond_the_latest_seq_returns_nothing(self, alice_api, three_events):
        body = alice_api.get(f"/api/auctions/{three_events.id}/events/?since_seq=99").json()
        assert body == {"count": 0, "next": None, "results": []}

    def test_events_are_paginated_after_since_seq(self, alice_api, three_events):
        url = f"/api/auctions/{three_events.id}/events/?since_seq=0&limit=2"
        first = alice_api.get(url).json()
        assert [e["seq"] for e in first["results"]] == [1, 2]
        assert "since_seq=0" in first["next"]
        second = alice_api.get(first["next"]).json()
        assert [e["seq"] for e in second["results"]] == [3]
        assert second["next"] is None

    @pytest.mark.parametrize("since_seq", ["-1", "one", "1.5", str(2**63)])
    def test_since_seq_that_is_not_a_non_negative_int_is_rejected_with_400(
        self, alice_api, auction, since_seq
    ):
        response = alice_api.get(f"/api/auctions/{auction.id}/events/?since_seq={since_seq}")
        assert response.status_code == 400
        assert response.json()["code"] == "validation_error"

    def test_events_of_an_unknown_auction_are_404(self, alice_api):
        response = alice_api.get(f"/api/auctions/{uuid4()}/events/")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"

    def test_events_of_a_malformed_auction_id_are_404(self, alice_api):
        assert alice_api.get("/api/auctions/xyz/events/").status_code == 404


class TestCancel:
    def test_creator_cancels_an_auction_without_bids(self, seller_api, auction):
        response = seller_api.post_json(
            f"/api/auctions/{auction.id}/cancel/", {"reason": "Changed my mind"}
        )
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "cancelled"
        assert body["seq"] == 1
        event = auction.events.get()
        assert event.payload == {"status": "cancelled", "reason": "Changed my mind"}

    def test_cancel_without_a_body_is_allowed(self, seller_api, auction):
        response = seller_api.post_json(f"/api/auctions/{auction.id}/cancel/")
        assert response.status_code == 200
        assert response.json()["status"] == "cancelled"

    def test_staff_can_cancel_anyones_auction(self, client_for, auction):
        staff = UserFactory(is_staff=True)
        response = client_for(staff).post_json(f"/api/auctions/{auction.id}/cancel/", {})
        assert response.status_code == 200

    def test_someone_else_cannot_cancel_with_403(self, alice_api, auction):
        response = alice_api.post_json(f"/api/auctions/{auction.id}/cancel/", {})
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
        auction.refresh_from_db()
        assert auction.status == AuctionStatus.ACTIVE

    def test_auction_with_bids_is_not_cancellable_with_409(self, seller_api, auction, alice):
        bid_place(auction_id=auction.id, bidder=alice, amount="10")
        response = seller_api.post_json(f"/api/auctions/{auction.id}/cancel/", {})
        assert response.status_code == 409
        assert response.json()["code"] == "not_cancellable"

    def test_cancelling_an_unknown_auction_is_404(self, seller_api):
        response = seller_api.post_json(f"/api/auctions/{uuid4()}/cancel/", {})
        assert response.status_code == 404

    def test_reason_that_is_not_text_is_a_validation_error(self, seller_api, auction):
        response = seller_api.post_json(f"/api/auctions/{auction.id}/cancel/", {"reason": 5})
        assert response.status_code == 422
        assert response.json()["data"]["errors"][0]["field"] == "reason"


class TestErrors:
    def test_every_domain_code_has_an_http_status(self):
        assert set(Code) <= set(STATUS_BY_CODE)
        # The client's mistakes are 4xx; only "we could not" is 5xx (spec §10).
        ours = {Code.UNAVAILABLE: 503, Code.INTERNAL_ERROR: 500}
        assert {code: STATUS_BY_CODE[code] for code in ours} == ours
        assert all(400 <= s < 500 for c, s in STATUS_BY_CODE.items() if c not in ours)

    def test_rejection_codes_map_to_409_except_amount_not_found_and_rate_limit(self):
        assert STATUS_BY_CODE[Code.INVALID_AMOUNT] == 422
        assert STATUS_BY_CODE[Code.NOT_FOUND] == 404
        assert STATUS_BY_CODE[Code.RATE_LIMITED] == 429
        for code in (
            Code.BID_TOO_LOW,
            Code.AUCTION_NOT_ACTIVE,
            Code.AUCTION_ENDED,
            Code.OWN_AUCTION,
            Code.ALREADY_HIGHEST,
        ):
            assert STATUS_BY_CODE[code] == 409

    def test_rate_limited_rejection_is_answered_429(self):
        request = RequestFactory().post("/api/auctions/x/bids/")
        error = BidRejected(Code.RATE_LIMITED, "Too many bids.", {"retry_after": 1})
        response = api.on_exception(request, error)
        assert response.status_code == 429
        assert json.loads(response.content) == {
            "code": "rate_limited",
            "message": "Too many bids.",
            "data": {"retry_after": 1},
        }

    def test_wrong_method_is_405_in_json(self, alice_api, auction):
        response = alice_api.delete(f"/api/auctions/{auction.id}/")
        assert response.status_code == 405
        assert response.json()["code"] == "method_not_allowed"
        assert set(response["Allow"].split(", ")) == {"GET", "PATCH"}

    def test_unknown_api_path_is_404_in_json(self, alice_api):
        response = alice_api.get("/api/nothing/here/")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"

    def test_api_root_is_404_in_json(self, alice_api):
        response = alice_api.get("/api/")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"

    def test_path_without_trailing_slash_gets_a_hint(self, alice_api):
        response = alice_api.get("/api/auctions")
        assert response.status_code == 404
        assert "end with a slash" in response.json()["message"]

    def test_deeply_nested_json_is_rejected_as_invalid_json(self, alice_api, auction):
        body = '{"amount": ' + "[" * 100_000 + "]" * 100_000 + "}"
        response = alice_api.post_json(bids_url(auction), body)
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_json"

    @override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100)
    def test_body_larger_than_the_upload_limit_is_413(self, alice_api, auction):
        response = alice_api.post_json(bids_url(auction), {"amount": "10", "pad": "x" * 200})
        assert response.status_code == 413
        assert response.json()["code"] == "request_too_large"


def test_a_database_that_cannot_be_reached_is_a_503_to_retry(alice_api, monkeypatch):
    from django.db import OperationalError

    import api.auctions

    def unreachable(**_: object) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(api.auctions, "auction_list", unreachable)
    response = alice_api.get("/api/auctions/")
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response.json()["code"] == "unavailable"
