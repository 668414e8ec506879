"""The HTTP API of spec §7: maximum bids, buy it now, my-bid, increment tables and the
buy-it-now price on create and in the snapshot, and the OpenAPI document describing them."""

from datetime import timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from django.utils import timezone

from auctions.models import Auction, AuctionStatus
from bidding.models import Bid
from bidding.services import bid_place
from tests.factories import AuctionFactory

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


def bids_url(auction: Auction) -> str:
    return f"/api/auctions/{auction.id}/bids/"


def buy_url(auction: Auction) -> str:
    return f"/api/auctions/{auction.id}/buy/"


def my_bid_url(auction: Auction) -> str:
    return f"/api/auctions/{auction.id}/my-bid/"


def ledger(auction: Auction) -> list[tuple[str, str, bool]]:
    bids = Bid.objects.filter(auction=auction).select_related("bidder").order_by("seq")
    return [(b.bidder.username, f"{b.amount}", b.auto) for b in bids]


@pytest.fixture
def offered(seller) -> Auction:
    """An active auction with a buy-it-now price of 200.00."""
    return AuctionFactory(item__owner=seller, buy_now_price=Decimal("200.00"))


def create(api, **fields):
    body = {"item": {"name": "Lamp"}, "starting_price": "10", "duration_seconds": 3600, **fields}
    return api.post_json("/api/auctions/", body)


class TestMaxBids:
    def test_a_max_bid_is_accepted_with_leading_and_its_max(self, alice_api, auction):
        response = alice_api.post_json(
            bids_url(auction), {"amount": "12", "max_amount": "50", "request_id": "m-1"}
        )
        assert response.status_code == 201
        body = response.json()
        assert body == {
            "auction_id": str(auction.id),
            "request_id": "m-1",
            "bid_id": str(Bid.objects.get().id),
            "amount": "12.00",
            "seq": 1,
            "current_price": "12.00",
            "min_next_bid": "13.00",
            "end_time": body["end_time"],
            "leading": True,
            "max_amount": "50.00",
            "bought": False,
        }
        auction.refresh_from_db()
        assert auction.leader_max == Decimal("50.00")

    def test_a_max_as_a_json_number_is_parsed_exactly(self, alice_api, auction):
        response = alice_api.post_json(bids_url(auction), '{"max_amount": 150.10}')
        assert response.status_code == 201
        assert response.json()["max_amount"] == "150.10"

    def test_a_max_without_an_amount_bids_min_next_bid(self, alice_api, auction, bob):
        bid_place(auction_id=auction.id, bidder=bob, amount="20")
        response = alice_api.post_json(bids_url(auction), {"max_amount": "50"})
        assert response.status_code == 201
        body = response.json()
        assert (body["amount"], body["leading"], body["max_amount"]) == ("21.00", True, "50.00")

    def test_a_null_amount_with_a_max_bids_min_next_bid(self, alice_api, auction):
        response = alice_api.post_json(bids_url(auction), {"amount": None, "max_amount": "50"})
        assert response.status_code == 201
        assert response.json()["amount"] == "10.00"

    def test_a_max_below_the_amount_is_422_invalid_amount(self, alice_api, auction):
        response = alice_api.post_json(bids_url(auction), {"amount": "30", "max_amount": "20"})
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_amount"
        assert isinstance(response.json()["message"], str)
        assert not Bid.objects.exists()

    @pytest.mark.parametrize(
        "max_amount", ['"abc"', "0", "-5", "10.001", "10000000000", "true", "[50]", '""']
    )
    def test_a_malformed_max_is_422_invalid_amount(self, alice_api, auction, max_amount):
        response = alice_api.post_json(bids_url(auction), f'{{"max_amount": {max_amount}}}')
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_amount"
        auction.refresh_from_db()
        assert (auction.bid_count, auction.version) == (0, 0)

    def test_a_higher_max_answers_with_the_new_leader_at_one_increment_over(
        self, alice_api, bob_api, auction
    ):
        alice_api.post_json(bids_url(auction), {"max_amount": "50"})
        response = bob_api.post_json(bids_url(auction), {"max_amount": "80"})
        assert response.status_code == 201
        body = response.json()
        assert (body["amount"], body["current_price"], body["seq"]) == ("51.00", "51.00", 3)
        assert body["leading"] is True
        assert ledger(auction) == [
            ("alice", "10.00", False),
            ("alice", "50.00", True),
            ("bob", "51.00", False),
        ]

    def test_a_lower_max_gets_201_with_leading_false(self, alice_api, bob_api, auction):
        alice_api.post_json(bids_url(auction), {"max_amount": "50"})
        response = bob_api.post_json(bids_url(auction), {"max_amount": "30"})
        assert response.status_code == 201
        body = response.json()
        assert body["leading"] is False
        assert (body["amount"], body["max_amount"]) == ("30.00", "30.00")
        assert (body["current_price"], body["min_next_bid"], body["seq"]) == ("31.00", "32.00", 3)
        assert body["bid_id"] == str(Bid.objects.get(bidder__username="bob").id)

    def test_the_leader_raising_their_max_gets_201_and_no_new_bid(self, alice_api, auction):
        first = alice_api.post_json(bids_url(auction), {"max_amount": "50"}).json()
        response = alice_api.post_json(bids_url(auction), {"max_amount": "70"})
        assert response.status_code == 201
        body = response.json()
        assert (body["bid_id"], body["amount"], body["seq"]) == (first["bid_id"], "10.00", 1)
        assert (body["leading"], body["max_amount"]) == (True, "70.00")
        assert Bid.objects.count() == 1

    def test_a_raise_not_above_the_max_is_409_bid_too_low(self, alice_api, auction):
        alice_api.post_json(bids_url(auction), {"max_amount": "50"})
        response = alice_api.post_json(bids_url(auction), {"max_amount": "50"})
        assert response.status_code == 409
        assert response.json()["code"] == "bid_too_low"

    def test_a_straight_bid_by_the_leader_is_409_already_highest(self, alice_api, auction):
        alice_api.post_json(bids_url(auction), {"max_amount": "50"})
        response = alice_api.post_json(bids_url(auction), {"amount": "60"})
        assert response.status_code == 409
        assert response.json()["code"] == "already_highest"

    def test_a_max_below_min_next_bid_is_409_bid_too_low(self, alice_api, auction, bob):
        bid_place(auction_id=auction.id, bidder=bob, amount="20")
        response = alice_api.post_json(bids_url(auction), {"max_amount": "20.50"})
        assert response.status_code == 409
        assert response.json() == {
            "code": "bid_too_low",
            "message": "Your bid is too low: the next bid must be at least 21.00.",
            "data": {"current_price": "20.00", "min_next_bid": "21.00"},
        }

    def test_repeating_a_max_bid_replays_the_same_201_and_bids_nothing_more(
        self, alice_api, bob_api, auction
    ):
        alice_api.post_json(bids_url(auction), {"max_amount": "50"})
        first = bob_api.post_json(bids_url(auction), {"max_amount": "30", "request_id": "b-1"})
        again = bob_api.post_json(bids_url(auction), {"max_amount": "30", "request_id": "b-1"})
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again["Idempotent-Replayed"] == "true"
        assert Bid.objects.count() == 3

    def test_the_bid_history_shows_automatic_bids_but_no_max(self, alice_api, bob_api, auction):
        alice_api.post_json(bids_url(auction), {"max_amount": "87.65"})
        bob_api.post_json(bids_url(auction), {"max_amount": "40"})
        response = alice_api.get(bids_url(auction))
        results = response.json()["results"]
        assert [(b["bidder"]["name"], b["amount"], b["auto"]) for b in results] == [
            ("alice", "41.00", True),
            ("bob", "40.00", False),
            ("alice", "10.00", False),
        ]
        assert "87.65" not in response.content.decode()
        fields = {"id", "amount", "bidder", "auto", "created_at", "seq"}
        assert all(set(b) == fields for b in results)

    def test_events_carry_auto_and_highest_bidder_but_no_max(
        self, alice_api, bob_api, auction, alice
    ):
        alice_api.post_json(bids_url(auction), {"max_amount": "87.65"})
        bob_api.post_json(bids_url(auction), {"max_amount": "40"})
        response = bob_api.get(f"/api/auctions/{auction.id}/events/")
        events = response.json()["results"]
        assert [
            (e["data"]["bidder"]["name"], e["data"]["auto"], e["data"]["highest_bidder"]["name"])
            for e in events
        ] == [("alice", False, "alice"), ("bob", False, "alice"), ("alice", True, "alice")]
        assert events[2]["data"]["highest_bidder"] == {"id": str(alice.id), "name": "alice"}
        assert "87.65" not in response.content.decode()


class TestBuyNow:
    def test_buying_is_201_with_bought_true_and_the_auction_ends(self, alice_api, offered, alice):
        response = alice_api.post_json(buy_url(offered), {"request_id": "buy-1"})
        assert response.status_code == 201
        body = response.json()
        assert body == {
            "auction_id": str(offered.id),
            "request_id": "buy-1",
            "bid_id": str(Bid.objects.get().id),
            "amount": "200.00",
            "seq": 2,
            "current_price": "200.00",
            "min_next_bid": "201.00",
            "end_time": body["end_time"],
            "leading": True,
            "max_amount": "200.00",
            "bought": True,
        }
        snapshot = alice_api.get(f"/api/auctions/{offered.id}/").json()
        assert snapshot["status"] == "ended"
        assert snapshot["winner"] == {"id": str(alice.id), "name": "alice"}
        assert snapshot["buy_now_price"] is None
        events = alice_api.get(f"/api/auctions/{offered.id}/events/").json()["results"]
        assert [e["type"] for e in events] == ["bid_placed", "auction_ended"]
        assert events[1]["data"]["reason"] == "bought"
        assert events[1]["data"]["final_price"] == "200.00"

    def test_buying_with_an_empty_object_body_is_accepted(self, alice_api, offered):
        response = alice_api.post_json(buy_url(offered), {})
        assert response.status_code == 201
        assert response.json()["request_id"] is None

    def test_buying_without_a_body_is_accepted(self, alice_api, offered):
        response = alice_api.post_json(buy_url(offered))
        assert response.status_code == 201, response.content
        assert response.json()["bought"] is True

    def test_a_second_buyer_is_409_auction_ended(self, alice_api, bob_api, offered):
        alice_api.post_json(buy_url(offered), {})
        response = bob_api.post_json(buy_url(offered), {})
        assert response.status_code == 409
        assert response.json()["code"] in {"auction_ended", "buy_now_unavailable"}
        assert Bid.objects.count() == 1

    def test_buying_after_a_bid_is_409_buy_now_unavailable(self, alice_api, bob, offered):
        bid_place(auction_id=offered.id, bidder=bob, amount="10")
        response = alice_api.post_json(buy_url(offered), {})
        assert response.status_code == 409
        assert response.json()["code"] == "buy_now_unavailable"
        assert response.json()["data"] == {"current_price": "10.00", "min_next_bid": "11.00"}

    def test_buying_an_auction_without_a_price_is_409_buy_now_unavailable(self, alice_api, auction):
        response = alice_api.post_json(buy_url(auction), {})
        assert response.status_code == 409
        assert response.json()["code"] == "buy_now_unavailable"
        auction.refresh_from_db()
        assert auction.status == AuctionStatus.ACTIVE

    def test_buy_now_unavailable_without_a_price_does_not_claim_the_auction_has_a_bid(
        self, alice_api, auction
    ):
        body = alice_api.post_json(buy_url(auction), {}).json()
        assert body["code"] == "buy_now_unavailable"
        assert "has a bid" not in body["message"], body["message"]

    def test_buying_ones_own_auction_is_409_own_auction(self, seller_api, offered):
        response = seller_api.post_json(buy_url(offered), {})
        assert response.status_code == 409
        assert response.json()["code"] == "own_auction"

    @pytest.mark.parametrize("request_id", ['"' + "x" * 65 + '"', "42", "[]", "true"])
    def test_buying_with_a_bad_request_id_is_422(self, alice_api, offered, request_id):
        response = alice_api.post_json(buy_url(offered), f'{{"request_id": {request_id}}}')
        assert response.status_code == 422
        body = response.json()
        assert body["code"] == "validation_error"
        assert body["data"] == {"field": "request_id"}
        assert not Bid.objects.exists()

    def test_buying_an_unknown_auction_is_404(self, alice_api):
        response = alice_api.post_json(f"/api/auctions/{uuid4()}/buy/", {})
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"

    def test_buying_needs_credentials(self, anonymous_api, offered):
        response = anonymous_api.post_json(buy_url(offered), {})
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"
        assert not Bid.objects.exists()

    def test_repeating_a_purchase_replays_it(self, alice_api, offered):
        first = alice_api.post_json(buy_url(offered), {"request_id": "buy-1"})
        again = alice_api.post_json(buy_url(offered), {"request_id": "buy-1"})
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again["Idempotent-Replayed"] == "true"


class TestMyBid:
    def test_the_leader_sees_their_max(self, alice_api, auction):
        alice_api.post_json(bids_url(auction), {"max_amount": "50"})
        response = alice_api.get(my_bid_url(auction))
        assert response.status_code == 200
        assert response.json() == {"max_amount": "50.00", "leading": True, "amount": "10.00"}

    def test_an_outbid_bidder_sees_their_highest_bid(self, alice_api, bob_api, auction):
        alice_api.post_json(bids_url(auction), {"max_amount": "50"})
        bob_api.post_json(bids_url(auction), {"max_amount": "30"})
        assert bob_api.get(my_bid_url(auction)).json() == {
            "max_amount": "30.00",
            "leading": False,
            "amount": "30.00",
        }
        assert alice_api.get(my_bid_url(auction)).json() == {
            "max_amount": "50.00",
            "leading": True,
            "amount": "31.00",
        }

    def test_an_old_leader_outbid_by_a_higher_max_sees_their_max_spent(
        self, alice_api, bob_api, auction
    ):
        alice_api.post_json(bids_url(auction), {"max_amount": "50"})
        bob_api.post_json(bids_url(auction), {"max_amount": "80"})
        assert alice_api.get(my_bid_url(auction)).json() == {
            "max_amount": "50.00",
            "leading": False,
            "amount": "50.00",
        }
        assert bob_api.get(my_bid_url(auction)).json() == {
            "max_amount": "80.00",
            "leading": True,
            "amount": "51.00",
        }

    def test_someone_without_a_bid_gets_404(self, alice_api, bob_api, auction):
        alice_api.post_json(bids_url(auction), {"max_amount": "50"})
        response = bob_api.get(my_bid_url(auction))
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
        assert set(response.json()) == {"code", "message"}

    def test_an_unknown_auction_gets_404(self, alice_api):
        response = alice_api.get(f"/api/auctions/{uuid4()}/my-bid/")
        assert response.status_code == 404
        assert response.json() == {"code": "not_found", "message": "No such auction."}

    def test_my_bid_needs_credentials(self, anonymous_api, auction):
        response = anonymous_api.get(my_bid_url(auction))
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"


class TestCreate:
    def test_create_with_the_standard_table_by_name(self, alice_api):
        response = create(alice_api, starting_price="30", increments="standard")
        assert response.status_code == 201
        body = response.json()
        assert body["increments"] == STANDARD_PAIRS
        assert (body["min_increment"], body["min_next_bid"]) == ("1.00", "30.00")
        assert Auction.objects.get(id=body["id"]).increments == STANDARD_PAIRS

    def test_create_with_pairs(self, alice_api):
        response = create(alice_api, starting_price="90", increments=[["0", "1"], [100, 10]])
        assert response.status_code == 201
        body = response.json()
        assert body["increments"] == [["0.00", "1.00"], ["100.00", "10.00"]]
        assert body["min_increment"] == "1.00"

    def test_create_with_a_buy_now_price(self, alice_api):
        response = create(alice_api, reserve_price="50", buy_now_price=150.5)
        assert response.status_code == 201
        assert response.json()["buy_now_price"] == "150.50"
        assert Auction.objects.get().buy_now_price == Decimal("150.50")

    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            ({"increments": "nope"}, "increments"),
            ({"increments": []}, "increments"),
            ({"increments": [["1", "1"]]}, "increments"),
            ({"increments": [["0", "1"], ["0", "2"]]}, "increments"),
            ({"increments": [["0", "0"]]}, "increments"),
            ({"increments": [["0", "1.001"]]}, "increments"),
            ({"increments": [["0"]]}, "increments"),
            ({"increments": 5}, "increments"),
            ({"increments": "standard", "min_increment": "1"}, "increments"),
            ({"buy_now_price": "9.99"}, "buy_now_price"),
            ({"reserve_price": "50", "buy_now_price": "49.99"}, "buy_now_price"),
            ({"buy_now_price": "abc"}, "buy_now_price"),
            ({"buy_now_price": -1}, "buy_now_price"),
        ],
    )
    def test_invalid_increments_or_buy_now_price_is_422_with_the_field(
        self, alice_api, fields, field
    ):
        response = create(alice_api, **fields)
        assert response.status_code == 422
        body = response.json()
        assert body["code"] == "validation_error"
        assert isinstance(body["message"], str) and body["message"]
        assert body["data"] == {"field": field}
        assert not Auction.objects.exists()


class TestSnapshot:
    def test_the_snapshot_shows_the_table_and_the_increment_at_the_current_price(
        self, alice_api, bob_api, seller_api
    ):
        auction_id = create(
            seller_api, starting_price="90", increments=[["0", "1"], ["100", "10"]]
        ).json()["id"]
        url = f"/api/auctions/{auction_id}/"
        before = alice_api.get(url).json()
        assert (before["min_increment"], before["min_next_bid"]) == ("1.00", "90.00")
        alice_api.post_json(f"{url}bids/", {"amount": "99.50"})
        at_99 = alice_api.get(url).json()
        assert (at_99["min_increment"], at_99["min_next_bid"]) == ("1.00", "100.50")
        bob_api.post_json(f"{url}bids/", {"amount": "100.50"})
        at_100 = alice_api.get(url).json()
        assert (at_100["min_increment"], at_100["min_next_bid"]) == ("10.00", "110.50")
        assert at_100["increments"] == [["0.00", "1.00"], ["100.00", "10.00"]]

    def test_buy_now_price_is_shown_until_the_first_bid_then_null(
        self, alice_api, bob_api, offered
    ):
        url = f"/api/auctions/{offered.id}/"
        assert alice_api.get(url).json()["buy_now_price"] == "200.00"
        assert alice_api.get("/api/auctions/").json()["results"][0]["buy_now_price"] == "200.00"
        bob_api.post_json(bids_url(offered), {"max_amount": "50"})
        assert alice_api.get(url).json()["buy_now_price"] is None
        assert alice_api.get("/api/auctions/").json()["results"][0]["buy_now_price"] is None

    def test_the_snapshot_never_shows_the_leaders_max(self, alice_api, bob_api, auction):
        alice_api.post_json(bids_url(auction), {"max_amount": "87.65"})
        for api in (alice_api, bob_api):
            response = api.get(f"/api/auctions/{auction.id}/")
            assert "87.65" not in response.content.decode()
            assert response.json()["current_price"] == "10.00"
        listing = bob_api.get("/api/auctions/")
        assert "87.65" not in listing.content.decode()

    def test_a_pending_auctions_buy_now_price_is_shown(self, alice_api, seller):
        now = timezone.now()
        pending = AuctionFactory(
            item__owner=seller,
            status=AuctionStatus.PENDING,
            start_time=now + timedelta(hours=1),
            end_time=now + timedelta(hours=2),
            max_end_time=now + timedelta(hours=2),
            buy_now_price=Decimal("200.00"),
        )
        assert alice_api.get(f"/api/auctions/{pending.id}/").json()["buy_now_price"] == "200.00"


class TestOpenApi:
    @pytest.fixture
    def schema(self, anonymous_api) -> dict:
        response = anonymous_api.get("/api/openapi.json")
        assert response.status_code == 200
        return response.json()

    def resolve(self, schema: dict, ref: dict) -> dict:
        name = ref["$ref"].rsplit("/", 1)[-1]
        return schema["components"]["schemas"][name]

    def test_the_bid_body_documents_max_amount(self, schema):
        operation = schema["paths"]["/api/auctions/{auction_id}/bids/"]["post"]
        body = self.resolve(
            schema, operation["requestBody"]["content"]["application/json"]["schema"]
        )
        assert {"amount", "max_amount", "request_id"} <= set(body["properties"])
        assert "up to" in body["properties"]["max_amount"]["description"]
        assert "amount" not in body.get("required", [])

    def test_the_bid_reply_documents_leading_max_amount_and_bought(self, schema):
        operation = schema["paths"]["/api/auctions/{auction_id}/bids/"]["post"]
        reply = self.resolve(
            schema, operation["responses"]["201"]["content"]["application/json"]["schema"]
        )
        assert {"leading", "max_amount", "bought"} <= set(reply["required"])

    def test_the_buy_operation_is_documented(self, schema):
        operation = schema["paths"]["/api/auctions/{auction_id}/buy/"]["post"]
        assert operation["operationId"] == "buy_auction"
        assert {"201", "401", "404", "409", "422"} <= set(operation["responses"])
        reply = self.resolve(
            schema, operation["responses"]["201"]["content"]["application/json"]["schema"]
        )
        assert "bought" in reply["properties"]
        assert "buy_now_unavailable" in operation["description"]

    def test_the_my_bid_operation_is_documented(self, schema):
        operation = schema["paths"]["/api/auctions/{auction_id}/my-bid/"]["get"]
        assert operation["operationId"] == "my_bid"
        assert {"200", "401", "404"} <= set(operation["responses"])
        own = self.resolve(
            schema, operation["responses"]["200"]["content"]["application/json"]["schema"]
        )
        assert set(own["properties"]) == {"max_amount", "leading", "amount"}
        assert set(own["required"]) == {"max_amount", "leading", "amount"}

    def test_create_and_the_snapshot_document_increments_and_buy_now_price(self, schema):
        create_op = schema["paths"]["/api/auctions/"]["post"]
        create_in = self.resolve(
            schema, create_op["requestBody"]["content"]["application/json"]["schema"]
        )
        assert {"increments", "buy_now_price", "min_increment"} <= set(create_in["properties"])
        snapshot = self.resolve(
            schema, create_op["responses"]["201"]["content"]["application/json"]["schema"]
        )
        assert {"increments", "buy_now_price", "min_increment"} <= set(snapshot["required"])
