"""The home page, the auction page, creating an auction and "my auctions"."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from auctions.models import Auction, AuctionStatus
from auctions.services import auction_cancel, auction_close
from bidding.services import bid_place
from tests.factories import AuctionFactory

pytestmark = pytest.mark.django_db


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_home_lists_live_auctions_ending_soonest_first_then_upcoming_and_ended(client, seller):
    later = AuctionFactory(item__owner=seller, item__name="Later lamp")
    sooner = AuctionFactory(
        item__owner=seller, item__name="Sooner sofa", end_time=timezone.now() + timedelta(minutes=5)
    )
    AuctionFactory(
        item__owner=seller,
        item__name="Future fan",
        status=AuctionStatus.PENDING,
        start_time=timezone.now() + timedelta(hours=1),
        end_time=timezone.now() + timedelta(hours=2),
    )
    ended = AuctionFactory(item__owner=seller, item__name="Old oven")
    auction_close(auction_id=ended.id, early=True)

    response = client.get("/")

    assert response.status_code == 200
    assert [a.id for a in response.context["live"]] == [sooner.id, later.id]
    html = response.content.decode()
    assert html.index("Sooner sofa") < html.index("Later lamp") < html.index("Future fan")
    assert html.index("Future fan") < html.index("Old oven")


def test_home_says_so_when_nothing_runs(client, db):
    response = client.get("/")
    assert "No auctions are running right now." in response.content.decode()


def test_auction_page_shows_item_prices_history_and_bid_form(client, auction, alice, bob):
    bid_place(auction_id=auction.id, bidder=alice, amount="12.50")
    bid_place(auction_id=auction.id, bidder=bob, amount="14")
    client.force_login(alice)

    response = client.get(f"/auctions/{auction.id}/")

    html = response.content.decode()
    assert response.status_code == 200
    assert auction.item.name in html
    assert '<span class="price" id="current-price">14.00</span>' in html
    assert '<dd id="min-next-bid">15.00</dd>' in html
    assert html.index(">bob<") < html.index(">alice<")  # newest first
    assert 'id="bid-form"' in html and 'name="request_id"' in html
    assert response.context["snapshot"]["seq"] == 2
    assert 'id="auction-page"' in html  # data for auction.js


def test_auction_page_escapes_text_from_users(client, seller):
    auction = AuctionFactory(item__owner=seller, item__name="<script>alert(1)</script>")
    html = client.get(f"/auctions/{auction.id}/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_auction_page_of_an_ended_auction_shows_the_winner(client, auction, alice, bob):
    bid_place(auction_id=auction.id, bidder=alice, amount="20")
    auction_close(auction_id=auction.id, early=True)
    client.force_login(bob)

    html = client.get(f"/auctions/{auction.id}/").content.decode()

    assert '<strong id="winner-name">alice</strong>' in html
    assert '<strong id="final-price">20.00</strong>' in html
    assert f'action="/auctions/{auction.id}/bid/" hidden>' in html  # no bidding any more


def test_auction_page_of_a_cancelled_auction_says_so(client, auction, seller):
    auction_cancel(auction_id=auction.id, actor=seller, reason="changed my mind")
    html = client.get(f"/auctions/{auction.id}/").content.decode()
    assert "Cancelled: changed my mind." in html


def test_anonymous_visitor_is_asked_to_log_in_to_bid(client, auction):
    html = client.get(f"/auctions/{auction.id}/").content.decode()
    assert "Log in to bid" in html
    assert 'id="bid-form"' not in html


def test_the_seller_sees_no_bid_form(client, auction, seller):
    client.force_login(seller)
    html = client.get(f"/auctions/{auction.id}/").content.decode()
    assert "This is your auction" in html
    assert 'id="bid-form"' not in html


def test_unknown_auction_is_404(client, db):
    assert client.get("/auctions/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert client.get("/auctions/not-a-uuid/").status_code == 404


def test_create_auction_needs_login(client, db):
    response = client.get("/auctions/new/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/auctions/new/")


def test_create_auction_form_creates_item_and_auction(alice_client, alice):
    response = alice_client.post(
        "/auctions/new/",
        {
            "item_name": "Blue bike",
            "item_description": "Barely ridden.",
            "starting_price": "100.50",
            "reserve_price": "150",
            "min_increment": "5",
            "duration_minutes": "90",
            "extension_seconds": "30",
        },
    )

    auction = Auction.objects.get(item__name="Blue bike")
    assert response.status_code == 302
    assert response["Location"] == f"/auctions/{auction.id}/"
    assert messages_of(response) == ["Your auction of “Blue bike” is open for bids."]
    assert auction.creator == alice
    assert auction.status == AuctionStatus.ACTIVE
    assert auction.starting_price == Decimal("100.50")
    assert auction.reserve_price == Decimal("150")
    assert auction.min_increment == Decimal("5")
    assert auction.extension_seconds == 30
    assert auction.end_time - auction.start_time == timedelta(minutes=90)


def test_create_auction_with_a_future_start_is_pending(alice_client):
    start = (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = alice_client.post(
        "/auctions/new/",
        {
            "item_name": "Clock",
            "starting_price": "5",
            "start_time": start,
            "duration_minutes": "10",
        },
    )
    auction = Auction.objects.get(item__name="Clock")
    assert auction.status == AuctionStatus.PENDING
    assert "starts at" in messages_of(response)[0]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("starting_price", "abc", "The amount must be a number such as 150 or 150.10."),
        ("starting_price", "1.234", "The amount can have at most 2 decimal places."),
        ("starting_price", "0", "The amount must be greater than zero."),
        ("reserve_price", "1", "The reserve price cannot be below the starting price."),
        ("item_name", "   ", "This field is required."),
        ("duration_minutes", "0", "Ensure this value is greater than or equal to 1."),
    ],
)
def test_create_auction_shows_validation_messages(alice_client, field, value, message):
    data = {"item_name": "Lamp", "starting_price": "10", "duration_minutes": "60", field: value}

    response = alice_client.post("/auctions/new/", data)

    assert response.status_code == 200
    assert message in response.context["form"].errors[field]
    assert message in response.content.decode()
    assert not Auction.objects.exists()


def test_my_auctions_lists_only_my_auctions(alice_client, alice, seller):
    AuctionFactory(item__owner=alice, item__name="Alice's armchair")
    AuctionFactory(item__owner=seller, item__name="Seller's stool")

    html = alice_client.get("/auctions/mine/").content.decode()

    assert "Alice&#x27;s armchair" in html
    assert "Seller&#x27;s stool" not in html


def test_my_auctions_needs_login(client, db):
    assert client.get("/auctions/mine/").status_code == 302
