"""Notifications on the pages, in a real browser (spec §8): the header's unread count and a
notice appear live on any page of the user, and the notifications page marks them read."""

import pytest

from auctions.services import auction_create
from bidding.services import bid_place
from tests.browser.conftest import browser_user, screenshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def wait_count(page, count: int) -> None:
    page.wait_for_function(
        "n => document.querySelector('#unread-count')?.getAttribute('data-count') === String(n)"
        " && !document.querySelector('#unread-count').hidden",
        arg=count,
    )


def test_an_outbid_shows_live_in_the_header_and_as_a_notice_on_any_page(new_page):
    seller, alice, bob = browser_user("seller"), browser_user("alice"), browser_user("bob")
    auction = auction_create(
        creator=seller,
        item_name="Brass telescope",
        starting_price="100",
        min_increment="5",
        duration_seconds=3600,
    )
    bid_place(auction_id=auction.id, bidder=alice, amount="100")
    page = new_page(alice)
    page.goto("/bids/mine/")  # not the auction's page: the stream follows the user
    assert page.is_hidden("#unread-count")
    page.wait_for_function("() => document.body.dataset.notificationSeq === '0'")

    bid_place(auction_id=auction.id, bidder=bob, amount="105")

    wait_count(page, 1)
    notice = page.wait_for_selector(".live-notice[data-kind=outbid]")
    assert "You were outbid on Brass telescope (105.00)" in notice.text_content()
    assert notice.query_selector("a").get_attribute("href").endswith(f"/auctions/{auction.id}/")
    screenshot(page, "live_notification")

    # A second one while the page is open counts on; a reload draws the same count.
    bid_place(auction_id=auction.id, bidder=alice, amount="110")
    bid_place(auction_id=auction.id, bidder=bob, amount="115")
    wait_count(page, 2)
    page.reload()
    assert page.get_attribute("#unread-count", "data-count") == "2"

    # The notifications page lists them and marks them read: the count goes.
    page.goto("/notifications/")
    assert page.locator("text=Brass telescope").count() >= 2
    page.goto("/bids/mine/")
    assert page.is_hidden("#unread-count")


def test_a_notice_made_while_the_page_loaded_is_not_lost(new_page):
    """The page says where the stream stood when it was drawn; the script asks for what came
    after it, so one committed between the page and the socket still shows."""
    seller, alice, bob = browser_user("seller"), browser_user("alice"), browser_user("bob")
    auction = auction_create(
        creator=seller, item_name="Oak desk", starting_price="10", duration_seconds=3600
    )
    bid_place(auction_id=auction.id, bidder=alice, amount="10")
    page = new_page(alice, javascript=False)
    page.goto("/bids/mine/")
    html = page.content()
    assert 'data-notification-seq="0"' in html
    # Now with the script: the page is drawn at seq 0, then Bob outbids before it connects.
    page = new_page(alice)
    page.route("**/js/notifications*.js", lambda route: route.abort())
    page.goto("/bids/mine/")
    bid_place(auction_id=auction.id, bidder=bob, amount="11")
    page.unroute("**/js/notifications*.js")
    page.add_script_tag(url=page.get_attribute("script[src*=notifications]", "src"))
    wait_count(page, 1)
    assert page.locator(".live-notice[data-kind=outbid]").count() == 1


def test_the_auction_page_carries_them_on_its_own_socket(new_page):
    """The auction page's live socket brings the user's notifications too: one socket."""
    seller, alice, bob = browser_user("seller"), browser_user("alice"), browser_user("bob")
    shown, elsewhere = (
        auction_create(creator=seller, item_name=name, starting_price="10", duration_seconds=3600)
        for name in ("Shown lamp", "Other clock")
    )
    bid_place(auction_id=elsewhere.id, bidder=alice, amount="10")
    page = new_page(alice)
    sockets = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    page.goto(f"/auctions/{shown.id}/")
    page.wait_for_selector("#live", state="visible")

    bid_place(auction_id=elsewhere.id, bidder=bob, amount="11")  # on another auction

    wait_count(page, 1)
    notice = page.wait_for_selector(".live-notice[data-kind=outbid]")
    assert "Other clock" in notice.text_content()
    assert page.text_content("#current-price") == "10.00"  # this auction's figures untouched
    assert len(sockets) == 1, sockets
