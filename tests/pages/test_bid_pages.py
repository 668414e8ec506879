"""Bidding without JavaScript (the form posts and redirects with a message), and "my bids"."""

from decimal import Decimal

import pytest

from auctions.services import auction_close
from bidding.models import Bid
from bidding.rejections import REJECTION_TEXT, rejection_text
from bidding.services import bid_place
from tests.factories import AuctionFactory

pytestmark = pytest.mark.django_db


def post_bid(client, auction, amount, **extra):
    """Post the bid form, follow the redirect to the auction page, return its messages."""
    response = client.post(f"/auctions/{auction.id}/bid/", {"amount": amount, **extra}, follow=True)
    assert response.redirect_chain == [(f"/auctions/{auction.id}/", 302)]
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


def test_a_bid_from_the_form_is_placed_and_confirmed(alice_client, auction, alice):
    assert post_bid(alice_client, auction, "12.50") == [
        ("success", "Your bid of 12.50 is the highest bid now.")
    ]
    assert Bid.objects.get().bidder == alice


def test_the_confirmation_shows_on_the_page_after_the_redirect(alice_client, auction):
    response = alice_client.post(f"/auctions/{auction.id}/bid/", {"amount": "11"}, follow=True)
    html = response.content.decode()
    assert "Your bid of 11.00 is the highest bid now." in html
    assert "You are the highest bidder." in html


def test_a_bid_below_min_next_bid_is_rejected_in_plain_words(alice_client, auction, bob):
    bid_place(auction_id=auction.id, bidder=bob, amount="20")
    assert post_bid(alice_client, auction, "20.50") == [
        ("error", "Your bid is too low: the next bid must be at least 21.00.")
    ]


@pytest.mark.parametrize(
    ("amount", "code"),
    [("abc", "invalid_amount"), ("1.001", "invalid_amount"), ("", "invalid_amount")],
)
def test_a_malformed_amount_is_rejected(alice_client, auction, amount, code):
    assert post_bid(alice_client, auction, amount) == [("error", REJECTION_TEXT[code])]
    assert not Bid.objects.exists()


def test_the_seller_cannot_bid(client, auction, seller):
    client.force_login(seller)
    assert post_bid(client, auction, "50") == [("error", "You cannot bid on your own auction.")]


def test_the_highest_bidder_cannot_outbid_themselves(alice_client, auction):
    post_bid(alice_client, auction, "12")
    assert post_bid(alice_client, auction, "13") == [
        ("error", "You are already the highest bidder.")
    ]


def test_a_bid_on_an_ended_auction_is_rejected(alice_client, auction):
    auction_close(auction_id=auction.id, early=True)
    assert post_bid(alice_client, auction, "50") == [
        ("error", "Sorry, this auction has already ended.")
    ]


def test_submitting_the_same_form_twice_places_one_bid(alice_client, auction):
    first = post_bid(alice_client, auction, "12", request_id="form-abc")
    second = post_bid(alice_client, auction, "12", request_id="form-abc")
    assert first == second == [("success", "Your bid of 12.00 is the highest bid now.")]
    assert Bid.objects.count() == 1


def test_bidding_needs_login_and_post(client, auction):
    assert client.post(f"/auctions/{auction.id}/bid/", {"amount": "50"}).status_code == 302
    assert not Bid.objects.exists()
    client.force_login(auction.creator)
    assert client.get(f"/auctions/{auction.id}/bid/").status_code == 405


def test_every_rejection_code_has_plain_words():
    from auctions.errors import BID_REJECTION_CODES

    assert set(REJECTION_TEXT) == set(BID_REJECTION_CODES)
    assert rejection_text("bid_too_low", {"min_next_bid": "3.00"}).endswith("3.00.")


def test_my_bids_shows_winning_outbid_won_and_lost(alice_client, alice, bob, seller):
    winning = AuctionFactory(item__owner=seller, item__name="Winning watch")
    outbid = AuctionFactory(item__owner=seller, item__name="Outbid oar")
    won = AuctionFactory(item__owner=seller, item__name="Won wok")
    lost = AuctionFactory(item__owner=seller, item__name="Lost lute")
    AuctionFactory(item__owner=seller, item__name="Untouched urn")
    bid_place(auction_id=winning.id, bidder=alice, amount="11")
    bid_place(auction_id=outbid.id, bidder=alice, amount="11")
    bid_place(auction_id=outbid.id, bidder=bob, amount="12")
    bid_place(auction_id=won.id, bidder=alice, amount="30")
    bid_place(auction_id=lost.id, bidder=alice, amount="11")
    bid_place(auction_id=lost.id, bidder=bob, amount="40")
    bid_place(auction_id=lost.id, bidder=alice, amount="41.5")
    bid_place(auction_id=lost.id, bidder=bob, amount="50")
    for auction in (won, lost):
        auction_close(auction_id=auction.id, early=True)

    response = alice_client.get("/bids/mine/")

    rows = {row.auction.item.name: row for row in response.context["rows"]}
    assert {name: row.standing for name, row in rows.items()} == {
        "Winning watch": "winning",
        "Outbid oar": "outbid",
        "Won wok": "won",
        "Lost lute": "lost",
    }
    assert rows["Lost lute"].my_highest == Decimal("41.50")
    assert rows["Lost lute"].my_bid_count == 2
    # Open auctions come before ended ones.
    names = list(rows)
    assert set(names[:2]) == {"Winning watch", "Outbid oar"}
    html = response.content.decode()
    for label in ("Winning", "Outbid", "Won", "Lost"):
        assert f">{label}</span>" in html
    assert "Untouched urn" not in html


def test_my_bids_without_bids_says_so(alice_client):
    assert "You have not bid on anything yet." in alice_client.get("/bids/mine/").content.decode()
