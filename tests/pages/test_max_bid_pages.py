"""The auction page without JavaScript (spec §7): the bid form's maximum, the viewer's own
standing, the buy-it-now button and form, and the increment."""

import json
import re
from decimal import Decimal

import pytest
from django.test import Client

from auctions.models import Auction, AuctionStatus
from bidding.models import Bid
from bidding.rejections import REJECTION_TEXT
from bidding.services import bid_place
from tests.factories import AuctionFactory
from tests.pages.conftest import element

pytestmark = pytest.mark.django_db


def page_url(auction: Auction) -> str:
    return f"/auctions/{auction.id}/"


def post_form(client: Client, auction: Auction, action: str, **fields: str) -> list[tuple]:
    """Post a form of the auction page, follow the redirect back, return its messages."""
    response = client.post(f"/auctions/{auction.id}/{action}/", fields, follow=True)
    assert response.redirect_chain == [(page_url(auction), 302)]
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


def page(client: Client, auction: Auction) -> str:
    response = client.get(page_url(auction))
    assert response.status_code == 200
    return response.content.decode()


def standing(html: str) -> tuple[bool, str]:
    """(shown, text) of the viewer's own standing, #my-standing."""
    found = element(html, "my-standing")
    assert found is not None
    attrs, text = found
    return "hidden" not in attrs, text


def page_data(html: str) -> dict:
    found = element(html, "auction-page")
    assert found is not None
    return json.loads(found[1])


@pytest.fixture
def offered(seller) -> Auction:
    return AuctionFactory(item__owner=seller, buy_now_price=Decimal("100.00"))


class TestMaxBidForm:
    def test_an_amount_and_a_max_place_a_max_bid(self, alice_client, auction, alice):
        messages = post_form(alice_client, auction, "bid", amount="12", max_amount="87.65")
        assert messages == [
            ("success", "You are the highest bidder at 12.00; we will bid for you up to 87.65.")
        ]
        auction.refresh_from_db()
        assert (auction.current_price, auction.leader_max) == (Decimal("12.00"), Decimal("87.65"))
        assert Bid.objects.get().bidder == alice

    def test_the_bidder_then_sees_they_lead_with_their_max(self, alice_client, auction):
        post_form(alice_client, auction, "bid", amount="12", max_amount="87.65")
        html = page(alice_client, auction)
        assert standing(html) == (True, "You are leading with your max of 87.65.")
        assert element(html, "my-max")[1] == "87.65"
        assert page_data(html)["my_max"] == "87.65"

    def test_another_users_page_shows_no_max(self, alice_client, bob_client, auction):
        post_form(alice_client, auction, "bid", amount="12", max_amount="87.65")
        html = page(bob_client, auction)
        assert standing(html) == (False, "")
        assert element(html, "my-max") is None
        assert page_data(html)["my_max"] is None
        assert "87.65" not in html
        assert element(html, "current-price")[1] == "12.00"

    def test_an_anonymous_page_shows_no_max(self, alice_client, auction):
        post_form(alice_client, auction, "bid", amount="12", max_amount="87.65")
        html = page(Client(), auction)
        assert "87.65" not in html
        assert standing(html) == (False, "")

    def test_only_a_max_bids_the_minimum_next_bid(self, alice_client, auction, bob):
        bid_place(auction_id=auction.id, bidder=bob, amount="20")
        messages = post_form(alice_client, auction, "bid", amount="", max_amount="40")
        assert messages == [
            ("success", "You are the highest bidder at 21.00; we will bid for you up to 40.00.")
        ]
        assert Bid.objects.latest("seq").amount == Decimal("21.00")

    def test_only_a_max_without_the_amount_field_works_too(self, alice_client, auction):
        post_form(alice_client, auction, "bid", max_amount="40")
        auction.refresh_from_db()
        assert (auction.current_price, auction.leader_max) == (Decimal("10.00"), Decimal("40.00"))

    def test_a_lower_max_is_placed_and_the_bidder_told_they_were_outbid(
        self, alice_client, bob_client, auction
    ):
        post_form(alice_client, auction, "bid", max_amount="87.65")
        messages = post_form(bob_client, auction, "bid", amount="", max_amount="30")
        assert messages == [
            (
                "success",
                "Your bid of 30.00 was placed, but another bidder's maximum is higher: "
                "the price is now 31.00.",
            )
        ]
        html = page(bob_client, auction)
        assert standing(html) == (True, "You have been outbid: your highest bid was 30.00.")
        assert "87.65" not in html
        assert standing(page(alice_client, auction)) == (
            True,
            "You are leading with your max of 87.65.",
        )

    def test_the_history_marks_automatic_bids(self, alice_client, bob_client, auction):
        post_form(alice_client, auction, "bid", max_amount="87.65")
        post_form(bob_client, auction, "bid", max_amount="30")
        rows = re.findall(
            r'<td class="amount">([^<]+)</td><td>([^<\s]+)( <span class="auto")?',
            page(bob_client, auction),
        )
        assert [(amount, name, bool(auto)) for amount, name, auto in rows] == [
            ("31.00", "alice", True),
            ("30.00", "bob", False),
            ("10.00", "alice", False),
        ]

    def test_raising_ones_max_from_the_form(self, alice_client, auction):
        post_form(alice_client, auction, "bid", max_amount="40")
        messages = post_form(alice_client, auction, "bid", amount="", max_amount="60")
        assert messages == [
            ("success", "You are the highest bidder at 10.00; we will bid for you up to 60.00.")
        ]
        assert standing(page(alice_client, auction)) == (
            True,
            "You are leading with your max of 60.00.",
        )
        assert Bid.objects.count() == 1

    def test_a_leader_raising_with_the_prefilled_amount_left_in_place(self, alice_client, auction):
        post_form(alice_client, auction, "bid", max_amount="40")
        # The form shows min_next_bid (11.00) in the amount field; a raise ignores it.
        messages = post_form(alice_client, auction, "bid", amount="11.00", max_amount="60")
        assert messages[0][0] == "success"
        auction.refresh_from_db()
        assert (auction.current_price, auction.leader_max) == (Decimal("10.00"), Decimal("60.00"))

    @pytest.mark.parametrize(
        ("amount", "max_amount"), [("30", "20"), ("", "abc"), ("", "0"), ("", "1.001")]
    )
    def test_a_malformed_max_is_rejected_in_plain_words(
        self, alice_client, auction, amount, max_amount
    ):
        messages = post_form(alice_client, auction, "bid", amount=amount, max_amount=max_amount)
        assert messages == [("error", REJECTION_TEXT["invalid_amount"])]
        assert not Bid.objects.exists()

    def test_the_form_has_a_max_field(self, alice_client, auction):
        html = page(alice_client, auction)
        max_field = element(html, "bid-max")
        assert max_field is not None
        assert max_field[0]["name"] == "max_amount"
        assert element(html, "bid-form")[0]["action"] == f"/auctions/{auction.id}/bid/"


class TestBuyNowForm:
    def test_the_button_is_shown_while_buy_it_now_is_offered(self, alice_client, offered):
        html = page(alice_client, offered)
        form = element(html, "buy-form")
        assert form is not None
        assert "hidden" not in form[0]
        assert form[0]["action"] == f"/auctions/{offered.id}/buy/"
        assert element(html, "buy-button")[1] == "Buy it now for 100.00"

    def test_no_button_once_the_auction_has_a_bid(self, alice_client, offered, bob):
        bid_place(auction_id=offered.id, bidder=bob, amount="10")
        assert element(page(alice_client, offered), "buy-form") is None

    def test_no_button_without_a_buy_it_now_price(self, alice_client, auction):
        assert element(page(alice_client, auction), "buy-form") is None

    def test_no_button_for_the_seller_or_a_visitor(self, client, offered, seller):
        assert element(page(client, offered), "buy-form") is None
        client.force_login(seller)
        assert element(page(client, offered), "buy-form") is None

    def test_buying_from_the_form_ends_the_auction(self, alice_client, bob_client, offered, alice):
        messages = post_form(alice_client, offered, "buy", request_id="buy-form-1")
        assert messages == [("success", "You bought it for 100.00.")]
        offered.refresh_from_db()
        assert offered.status == AuctionStatus.ENDED
        assert (offered.winner, offered.final_price) == (alice, Decimal("100.00"))
        after = page(bob_client, offered)
        assert element(after, "winner")[1] == "Won by alice for 100.00."
        assert element(after, "buy-form") is None
        assert element(after, "status")[1] == "Ended"

    def test_a_purchase_shows_as_won_in_my_bids(self, alice_client, offered):
        post_form(alice_client, offered, "buy")
        (row,) = alice_client.get("/bids/mine/").context["rows"]
        assert (row.auction.id, row.standing, row.my_highest) == (
            offered.id,
            "won",
            Decimal("100.00"),
        )

    def test_buying_twice_from_the_same_form_buys_once(self, alice_client, offered):
        first = post_form(alice_client, offered, "buy", request_id="buy-form-1")
        again = post_form(alice_client, offered, "buy", request_id="buy-form-1")
        assert first == again == [("success", "You bought it for 100.00.")]
        assert Bid.objects.count() == 1

    def test_a_second_buyer_is_told_the_auction_ended(self, alice_client, bob_client, offered):
        post_form(alice_client, offered, "buy")
        assert post_form(bob_client, offered, "buy") == [("error", REJECTION_TEXT["auction_ended"])]
        assert Bid.objects.count() == 1

    def test_buying_after_a_bid_is_refused_in_plain_words(self, alice_client, offered, bob):
        bid_place(auction_id=offered.id, bidder=bob, amount="10")
        assert post_form(alice_client, offered, "buy") == [
            ("error", REJECTION_TEXT["buy_now_unavailable"])
        ]
        offered.refresh_from_db()
        assert offered.status == AuctionStatus.ACTIVE

    def test_the_seller_cannot_buy(self, client, offered, seller):
        client.force_login(seller)
        assert post_form(client, offered, "buy") == [("error", REJECTION_TEXT["own_auction"])]
        assert not Bid.objects.exists()

    def test_buying_needs_login_and_post(self, client, offered, alice):
        response = client.post(f"/auctions/{offered.id}/buy/")
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
        client.force_login(alice)
        assert client.get(f"/auctions/{offered.id}/buy/").status_code == 405
        assert not Bid.objects.exists()


class TestIncrement:
    def test_a_fixed_increment_is_shown(self, client, auction):
        html = page(client, auction)
        assert element(html, "increment")[1] == "1.00"
        assert element(html, "min-next-bid")[1] == "10.00"

    def test_a_tables_increment_at_the_current_price_is_shown(self, client, seller, alice):
        auction = AuctionFactory(
            item__owner=seller,
            starting_price=Decimal("30.00"),
            increments=[["0.00", "1.00"], ["100.00", "2.50"]],
        )
        assert element(page(client, auction), "increment")[1] == "1.00 (table)"
        bid_place(auction_id=auction.id, bidder=alice, amount="100")
        html = page(client, auction)
        assert element(html, "increment")[1] == "2.50 (table)"
        assert element(html, "min-next-bid")[1] == "102.50"
