"""The pages in a real browser: live bidding between two users, the end, and the no-JS path."""

import json
import re
import time
from datetime import timedelta
from decimal import Decimal

import pytest

from auctions.models import Auction, AuctionStatus
from auctions.services import auction_create
from bidding.models import Bid
from bidding.services import bid_place
from tests.browser.conftest import browser_user, screenshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def people():
    return browser_user("seller"), browser_user("alice"), browser_user("bob")


def make_auction(seller, *, name="Vintage camera", seconds=3600, **options) -> Auction:
    return auction_create(
        creator=seller,
        item_name=name,
        item_description="A 1970s rangefinder <b>with</b> its case.",
        starting_price="100",
        min_increment="5",
        duration_seconds=seconds,
        **options,
    )


def wait_live(page) -> None:
    """The page's WebSocket is subscribed (the live marker shows)."""
    page.wait_for_selector("#live", state="visible")


def bid_via_page(page, amount: str) -> None:
    page.fill("#bid-amount", amount)
    page.click("#bid-button")


def test_a_bid_shows_up_in_the_other_browser_without_reloading(new_page, people):
    seller, alice, bob = people
    auction = make_auction(seller)
    alice_page, bob_page = new_page(alice), new_page(bob)
    for page in (alice_page, bob_page):
        page.goto(f"/auctions/{auction.id}/")
        wait_live(page)
    assert bob_page.text_content("#current-price") == "100.00"

    clicked = time.perf_counter()
    bid_via_page(alice_page, "120")
    bob_page.wait_for_function(
        "() => document.getElementById('current-price').textContent === '120.00'", polling="raf"
    )
    delay_ms = (time.perf_counter() - clicked) * 1000
    print(f"\n[browser] alice's bid reached bob's page in {delay_ms:.0f} ms")

    assert bob_page.text_content("#min-next-bid") == "125.00"
    assert bob_page.text_content("#bid-count") == "1"
    assert bob_page.text_content("#highest-bidder") == "alice"
    first_row = bob_page.locator("#bid-history tr").first
    assert first_row.locator("td").nth(0).text_content() == "120.00"
    assert first_row.locator("td").nth(1).text_content() == "alice"
    assert bob_page.input_value("#bid-amount") == "125.00"
    # Alice's button went pending → accepted.
    alice_page.wait_for_selector("#bid-button[data-state=accepted]")
    # The accept and alice's own bid_placed event both say so, in either order.
    assert "highest bid" in alice_page.text_content("#bid-feedback")
    screenshot(bob_page, "auction_page")


def test_the_outbid_bidder_is_told(new_page, people):
    seller, alice, bob = people
    auction = make_auction(seller)
    alice_page, bob_page = new_page(alice), new_page(bob)
    for page in (alice_page, bob_page):
        page.goto(f"/auctions/{auction.id}/")
        wait_live(page)

    bid_via_page(alice_page, "110")
    alice_page.wait_for_selector("#bid-button[data-state=accepted]")
    bob_page.wait_for_function(
        "() => document.getElementById('current-price').textContent === '110.00'"
    )
    assert bob_page.is_hidden("#outbid-notice")  # bob was not the highest: nothing to tell

    bid_via_page(bob_page, "130")
    alice_page.wait_for_selector("#outbid-notice", state="visible")
    assert "You have been outbid" in alice_page.text_content("#outbid-notice")
    assert "135.00" in alice_page.text_content("#outbid-notice")
    assert bob_page.is_hidden("#outbid-notice")
    assert [
        row.text_content() for row in alice_page.locator("#bid-history tr td:nth-child(2)").all()
    ] == [
        "bob",
        "alice",
    ]
    screenshot(alice_page, "auction_page_outbid")


def test_a_rejected_bid_shows_its_reason(new_page, people):
    seller, alice, bob = people
    auction = make_auction(seller)
    bid_place(auction_id=auction.id, bidder=bob, amount="150")
    page = new_page(alice)
    page.goto(f"/auctions/{auction.id}/")
    wait_live(page)

    bid_via_page(page, "152")
    page.wait_for_selector("#bid-button[data-state=rejected]")
    assert page.text_content("#bid-feedback") == (
        "Your bid is too low: the next bid must be at least 155.00."
    )
    bid_via_page(page, "12.345")
    page.wait_for_function(
        "() => document.getElementById('bid-feedback')"
        ".textContent.startsWith('Please enter an amount')"
    )
    assert Bid.objects.count() == 1


def test_the_seller_gets_no_bid_form(new_page, people):
    seller, _, _ = people
    auction = make_auction(seller)
    page = new_page(seller)
    page.goto(f"/auctions/{auction.id}/")
    assert "This is your auction" in page.text_content("#bid-disabled-reason")
    assert page.locator("#bid-form").count() == 0


def test_the_countdown_reaches_zero_and_the_page_shows_the_winner(
    new_page, people, celery_worker_beat
):
    seller, alice, bob = people
    auction = make_auction(seller, name="Quick sale", seconds=6)
    alice_page, bob_page = new_page(alice), new_page(bob)
    for page in (alice_page, bob_page):
        page.goto(f"/auctions/{auction.id}/")
        wait_live(page)
    assert bob_page.text_content("#countdown").startswith("Ends in 0m 0")

    bid_via_page(alice_page, "100")
    alice_page.wait_for_selector("#bid-button[data-state=accepted]")

    # The real worker + beat end it at its end time; the page learns it from auction_ended.
    for page in (alice_page, bob_page):
        page.wait_for_selector("#winner", state="visible", timeout=20_000)
        assert page.text_content("#countdown") == "Ended"
        assert page.text_content("#winner-name") == "alice"
        assert page.text_content("#final-price") == "100.00"
        assert page.text_content("#status") == "Ended"
        assert page.is_hidden("#bid-form")
    auction.refresh_from_db()
    assert auction.status == AuctionStatus.ENDED
    assert auction.winner == alice
    # A reload draws the same from the server.
    bob_page.reload()
    assert bob_page.text_content("#winner-name") == "alice"


def test_soft_close_shows_extended(new_page, people):
    seller, alice, bob = people
    auction = make_auction(seller, seconds=20, extension_seconds=60)
    page = new_page(alice)
    page.goto(f"/auctions/{auction.id}/")
    wait_live(page)

    bid_place(auction_id=auction.id, bidder=bob, amount="100")

    page.wait_for_selector("#extended", state="visible")
    page.wait_for_function(
        "() => document.getElementById('countdown').textContent.includes('extended')"
    )
    assert page.text_content("#countdown").startswith("Ends in 0m 5") or "1m" in page.text_content(
        "#countdown"
    )


def test_the_page_resumes_after_reconnect_with_since_seq(new_page, people):
    seller, alice, bob = people
    carol = browser_user("carol")
    auction = make_auction(seller)
    page = new_page(alice)
    # Sit between the page and the server, to see what it sends and to cut the connection.
    connections, subscribes = [], []

    def relay(socket) -> None:
        server = socket.connect_to_server()

        def to_server(message) -> None:
            if '"subscribe"' in message:
                subscribes.append(json.loads(message))
            server.send(message)

        socket.on_message(to_server)
        connections.append((socket, server))

    page.route_web_socket(re.compile(r"/ws/$"), relay)
    page.goto(f"/auctions/{auction.id}/")
    wait_live(page)
    bid_place(auction_id=auction.id, bidder=bob, amount="105")
    page.wait_for_function("() => document.getElementById('bid-count').textContent === '1'")

    socket, server = connections[-1]
    server.close()
    socket.close(code=4000, reason="test cut")
    page.wait_for_selector("#live", state="hidden")
    # Missed while disconnected: the page must fetch these on resume.
    bid_place(auction_id=auction.id, bidder=carol, amount="110")
    bid_place(auction_id=auction.id, bidder=bob, amount="115")

    page.wait_for_function(
        "() => document.getElementById('current-price').textContent === '115.00'", timeout=20_000
    )
    assert len(connections) == 2
    assert [m.get("since_seq") for m in subscribes] == [0, 1]
    assert page.locator("#bid-history tr td:nth-child(2)").all_text_contents() == [
        "bob",
        "carol",
        "bob",
    ]
    assert page.text_content("#bid-count") == "3"


def test_bidding_works_without_javascript(new_page, people):
    seller, alice, bob = people
    auction = make_auction(seller)
    page = new_page(alice, javascript=False)
    page.goto(f"/auctions/{auction.id}/")
    assert page.text_content("#countdown").strip().startswith("Ends in")

    page.fill("#bid-amount", "100")
    page.click("#bid-button")
    page.wait_for_selector("text=Your bid of 100.00 is the highest bid now.")
    assert page.text_content("#current-price") == "100.00"
    assert page.locator("#bid-history tr td:nth-child(2)").first.text_content() == "alice"

    page.fill("#bid-amount", "101")
    page.click("#bid-button")
    page.wait_for_selector("text=You are already the highest bidder.")
    bid_place(auction_id=auction.id, bidder=bob, amount="200")
    page.goto(f"/auctions/{auction.id}/")
    page.fill("#bid-amount", "201")
    page.click("#bid-button")
    page.wait_for_selector("text=Your bid is too low: the next bid must be at least 205.00.")
    assert Bid.objects.filter(bidder=alice).count() == 1
    screenshot(page, "auction_page_no_js")


def test_main_pages_render_for_screenshots(new_page, people):
    seller, alice, bob = people
    live = make_auction(seller, name="Vintage camera")
    soon = make_auction(seller, name="Oak writing desk", seconds=600)
    make_auction(
        seller,
        name="Signed first edition",
        start_time=Auction.objects.get(id=soon.id).end_time + timedelta(days=1),
    )
    ended = make_auction(seller, name="Mountain bike", seconds=3600)
    bid_place(auction_id=live.id, bidder=alice, amount="100")
    bid_place(auction_id=live.id, bidder=bob, amount="115.50")
    bid_place(auction_id=ended.id, bidder=alice, amount="250")
    bid_place(auction_id=soon.id, bidder=alice, amount="100")
    from auctions.services import auction_close

    auction_close(auction_id=ended.id, early=True)

    page = new_page(alice)
    page.goto("/")
    assert page.locator("#live-auctions .card-title").all_text_contents() == [
        "Oak writing desk",
        "Vintage camera",
    ]
    screenshot(page, "home")

    page.goto("/bids/mine/")
    assert [
        row.get_attribute("data-standing") for row in page.locator("#my-bids tbody tr").all()
    ] == [
        "winning",
        "outbid",
        "won",
    ]
    screenshot(page, "my_bids")

    page.goto("/auctions/new/")
    page.fill("#id_item_name", "Lamp")
    page.fill("#id_starting_price", "1.234")
    page.fill("#id_reserve_price", "1")
    page.click("form.card-form button[type=submit]")
    page.wait_for_selector("text=The amount can have at most 2 decimal places.")
    screenshot(page, "create_form_errors")
    page.fill("#id_starting_price", "20")
    page.fill("#id_reserve_price", "")
    page.click("form.card-form button[type=submit]")
    page.wait_for_selector("text=Your auction of “Lamp” is open for bids.")
    assert Auction.objects.filter(item__name="Lamp", starting_price=Decimal("20")).exists()

    page.goto("/accounts/tokens/")
    page.fill("#id_name", "trading bot")
    page.click("text=Create token")
    token = page.text_content("#new-token")
    assert len(token) > 30
    screenshot(page, "tokens")
    page.reload()
    assert page.locator("#new-token").count() == 0
    assert token not in page.content()
    page.click("text=Revoke")
    page.wait_for_selector("text=Token revoked.")

    mobile = new_page(bob, width=390)
    mobile.goto(f"/auctions/{live.id}/")
    screenshot(mobile, "auction_page_mobile")

    page.click("text=Log out")
    page.wait_for_selector("text=You are logged out.")
