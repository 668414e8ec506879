"""Maximum bids and buy it now on the auction page, in real browsers (spec §7)."""

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


def make_auction(seller, **options) -> Auction:
    options.setdefault("starting_price", "100")
    if "increments" not in options:
        options.setdefault("min_increment", "5")
    return auction_create(
        creator=seller,
        item_name="Vintage camera",
        item_description="A 1970s rangefinder with its case.",
        duration_seconds=3600,
        **options,
    )


def open_live(new_page, user, auction: Auction):
    page = new_page(user)
    page.goto(f"/auctions/{auction.id}/")
    page.wait_for_selector("#live", state="visible")
    return page


def bid_up_to(page, max_amount: str) -> None:
    """A maximum bid from the form: the amount field keeps its suggested minimum next bid."""
    page.fill("#bid-max", max_amount)
    page.click("#bid-button")
    page.wait_for_selector("#bid-button[data-state=accepted]")


def wait_text(page, selector: str, text: str) -> None:
    page.wait_for_function(
        "([selector, text]) => document.querySelector(selector)?.textContent === text",
        arg=[selector, text],
    )


def history(page) -> list[tuple[str, str, bool]]:
    """(amount, bidder, automatic) of each history row, newest first."""
    rows = []
    for row in page.locator("#bid-history tr").all():
        cells = row.locator("td")
        bidder = cells.nth(1)
        name = bidder.evaluate("td => td.firstChild.textContent.trim()")
        rows.append((cells.nth(0).text_content(), name, bidder.locator("span.auto").count() == 1))
    return rows


def shows_nowhere(page, amount: str) -> bool:
    """Neither in what the page shows nor anywhere in its HTML (its scripts' JSON included)."""
    return amount not in page.inner_text("body") and amount not in page.content()


def test_an_outbid_maximum_is_told_live_and_no_page_shows_the_others_max(new_page, people):
    seller, alice, bob = people
    auction = make_auction(seller)
    alice_page = open_live(new_page, alice, auction)
    bob_page = open_live(new_page, bob, auction)

    bid_up_to(alice_page, "173")
    wait_text(alice_page, "#my-standing", "You are leading with your max of 173.00.")
    assert alice_page.text_content("#my-max") == "173.00"
    assert alice_page.text_content("#current-price") == "100.00"
    # Bob sees alice lead at the price it took, never her max.
    wait_text(bob_page, "#highest-bidder", "alice")
    assert bob_page.text_content("#current-price") == "100.00"
    assert bob_page.text_content("#min-next-bid") == "105.00"
    assert bob_page.is_hidden("#my-standing")
    assert shows_nowhere(bob_page, "173.00")
    bob_page.reload()
    bob_page.wait_for_selector("#live", state="visible")
    assert shows_nowhere(bob_page, "173.00")

    bid_up_to(bob_page, "291")
    wait_text(bob_page, "#my-standing", "You are leading with your max of 291.00.")
    # Alice's page learns it live: alice's max was bid for her (auto), then bob's bid at
    # one increment above it (rule 2).
    alice_page.wait_for_selector("#outbid-notice", state="visible")
    assert "You have been outbid" in alice_page.text_content("#outbid-notice")
    wait_text(alice_page, "#current-price", "178.00")
    assert alice_page.text_content("#highest-bidder") == "bob"
    assert alice_page.text_content("#my-standing") == "You have been outbid (your max was 173.00)."
    assert history(alice_page) == [
        ("178.00", "bob", False),
        ("173.00", "alice", True),
        ("100.00", "alice", False),
    ]
    assert history(bob_page) == history(alice_page)
    assert bob_page.is_hidden("#outbid-notice")
    assert shows_nowhere(alice_page, "291.00")
    assert "291" not in alice_page.inner_text("body")
    screenshot(alice_page, "auction_page_max_outbid")

    # Drawn by the server, the same: each sees their own standing only.
    alice_page.reload()
    assert alice_page.text_content("#my-standing") == (
        "You have been outbid: your highest bid was 173.00."
    )
    assert history(alice_page)[1] == ("173.00", "alice", True)
    assert shows_nowhere(alice_page, "291.00")
    bob_page.reload()
    assert bob_page.text_content("#my-max") == "291.00"
    assert Auction.objects.values_list("leader_max", flat=True).get(id=auction.id) == Decimal(
        "291.00"
    )


def test_the_outbid_notice_names_the_minimum_next_bid_after_the_whole_decision(new_page, people):
    seller, alice, bob = people
    auction = make_auction(seller)
    alice_page = open_live(new_page, alice, auction)
    bid_up_to(alice_page, "173")

    # Bob's higher max: alice's automatic bid at 173.00, then bob's at 178.00 (rule 2).
    bid_place(auction_id=auction.id, bidder=bob, max_amount="291")

    alice_page.wait_for_selector("#outbid-notice", state="visible")
    wait_text(alice_page, "#current-price", "178.00")
    assert alice_page.text_content("#min-next-bid") == "183.00"
    # A bid of 178.00, the figure of the intermediate state, would be too low now.
    notice = alice_page.text_content("#outbid-notice")
    assert notice == "You have been outbid! The next bid must be at least 183.00.", notice


def test_a_leader_raising_their_max_changes_nothing_the_others_see(new_page, people):
    seller, alice, bob = people
    auction = make_auction(seller)
    alice_page = open_live(new_page, alice, auction)
    bob_page = open_live(new_page, bob, auction)

    bid_up_to(alice_page, "150")
    wait_text(bob_page, "#highest-bidder", "alice")
    alice_page.fill("#bid-amount", "")
    bid_up_to(alice_page, "190")
    wait_text(alice_page, "#my-standing", "You are leading with your max of 190.00.")
    assert alice_page.text_content("#current-price") == "100.00"

    # Bob bids straight below alice's max: his bid, then alice's automatic answer (rule 3).
    bob_page.fill("#bid-amount", "160")
    bob_page.click("#bid-button")
    bob_page.wait_for_selector("#bid-button[data-state=accepted]")
    wait_text(bob_page, "#current-price", "165.00")
    assert "another bidder's maximum is higher" in bob_page.text_content("#bid-feedback")
    assert bob_page.text_content("#highest-bidder") == "alice"
    expected = [("165.00", "alice", True), ("160.00", "bob", False), ("100.00", "alice", False)]
    assert history(bob_page) == expected  # the raise itself made no row
    wait_text(alice_page, "#current-price", "165.00")
    assert history(alice_page) == expected
    assert alice_page.is_hidden("#outbid-notice")
    assert alice_page.text_content("#my-max") == "190.00"
    for amount in ("150.00", "190.00"):
        assert shows_nowhere(bob_page, amount)


def test_buy_it_now_from_the_page_ends_it_and_the_other_page_shows_the_winner(new_page, people):
    seller, alice, bob = people
    auction = make_auction(seller, buy_now_price="250")
    alice_page = open_live(new_page, alice, auction)
    bob_page = open_live(new_page, bob, auction)
    assert bob_page.text_content("#buy-now-price") == "250.00"

    alice_page.click("#buy-button")

    for page in (bob_page, alice_page):
        page.wait_for_selector("#winner", state="visible")
        assert page.text_content("#winner-name") == "alice"
        assert page.text_content("#final-price") == "250.00"
        wait_text(page, "#status", "Ended")
        assert page.text_content("#countdown") == "Ended"
        assert page.text_content("#highest-bidder") == "alice"
        assert page.is_hidden("#bid-form")
        assert page.is_hidden("#buy-form")
    assert history(bob_page) == [("250.00", "alice", False)]
    screenshot(bob_page, "auction_page_bought")
    auction.refresh_from_db()
    assert (auction.status, auction.winner, auction.final_price) == (
        AuctionStatus.ENDED,
        alice,
        Decimal("250.00"),
    )
    assert Bid.objects.filter(auction=auction).count() == 1
    bob_page.reload()
    assert bob_page.text_content("#winner-name") == "alice"
    assert bob_page.locator("#buy-button").count() == 0
