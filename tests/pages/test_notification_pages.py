"""Watchlist and notification pages (spec §8): the watch button, "watching", the
notifications page and its read marking, the header count, e-mail settings, unsubscribe."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from auctions.models import AuctionStatus
from auctions.notices import notice_data
from bidding.services import bid_place
from notifications.email import unsubscribe_token
from notifications.models import EmailSettings, Kind, Notification, Watch
from notifications.services import Notice, email_kinds_off, notices_record
from tests.factories import AuctionFactory
from tests.pages.conftest import element

pytestmark = pytest.mark.django_db


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def notify(user, auction, kinds=(Kind.OUTBID,)) -> list[Notification]:
    data = notice_data(
        auction_id=auction.id, item_name=auction.item.name, price=auction.current_price
    )
    with transaction.atomic():
        return notices_record(
            [Notice(user.id, kind, auction.id, data) for kind in kinds],
            at=timezone.now(),
            auction_id=auction.id,
        )


def unread_in_header(html: str) -> str | None:
    """The header's unread count as shown, or None while it is hidden."""
    found = element(html, "unread-count")
    assert found is not None, "the header has no unread count"
    attrs, text = found
    return None if "hidden" in attrs else text


class TestWatchButton:
    def test_the_auction_page_offers_watch_to_a_signed_in_user(self, alice_client, auction):
        html = alice_client.get(f"/auctions/{auction.id}/").content.decode()
        form = element(html, "watch-form")
        assert form is not None
        assert form[0]["method"] == "post"
        assert form[0]["action"] == f"/auctions/{auction.id}/watch/"
        assert element(html, "watch-button")[1] == "Watch"
        assert 'name="csrfmiddlewaretoken"' in html

    def test_pressing_it_watches_without_javascript(self, alice_client, alice, auction):
        response = alice_client.post(f"/auctions/{auction.id}/watch/", {"watch": "1"})
        assert response.status_code == 302
        assert response["Location"] == f"/auctions/{auction.id}/"
        assert Watch.objects.filter(user=alice, auction=auction).exists()
        assert messages_of(response) == [
            "You are watching this auction: we will tell you before it ends."
        ]
        html = alice_client.get(f"/auctions/{auction.id}/").content.decode()
        assert element(html, "watch-button")[1] == "Stop watching"

    def test_stop_watching(self, alice_client, alice, auction):
        Watch.objects.create(user=alice, auction=auction)
        response = alice_client.post(f"/auctions/{auction.id}/watch/", {"watch": "0"})
        assert response.status_code == 302
        assert not Watch.objects.filter(user=alice).exists()
        html = alice_client.get(f"/auctions/{auction.id}/").content.decode()
        assert element(html, "watch-button")[1] == "Watch"

    def test_a_bid_shows_the_auction_watched(self, alice_client, alice, auction):
        bid_place(auction_id=auction.id, bidder=alice, amount="10")
        html = alice_client.get(f"/auctions/{auction.id}/").content.decode()
        assert element(html, "watch-button")[1] == "Stop watching"

    def test_the_button_needs_the_csrf_token(self, alice, auction):
        browser = Client(enforce_csrf_checks=True)
        browser.force_login(alice)
        response = browser.post(f"/auctions/{auction.id}/watch/", {"watch": "1"})
        assert response.status_code == 403
        assert not Watch.objects.exists()

    def test_nobody_signed_in_sees_no_button_and_cannot_watch(self, client, auction):
        html = client.get(f"/auctions/{auction.id}/").content.decode()
        assert element(html, "watch-form") is None
        response = client.post(f"/auctions/{auction.id}/watch/", {"watch": "1"})
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
        assert not Watch.objects.exists()

    def test_an_unknown_auction_is_404_and_get_is_405(self, alice_client, auction):
        from uuid import uuid4

        assert alice_client.post(f"/auctions/{uuid4()}/watch/", {"watch": "1"}).status_code == 404
        assert alice_client.get(f"/auctions/{auction.id}/watch/").status_code == 405

    def test_it_goes_back_to_a_page_of_the_site_only(self, alice_client, auction):
        back = alice_client.post(
            f"/auctions/{auction.id}/watch/", {"watch": "0", "next": "/watching/"}
        )
        assert back["Location"] == "/watching/"
        away = alice_client.post(
            f"/auctions/{auction.id}/watch/", {"watch": "0", "next": "https://evil.example/"}
        )
        assert away["Location"] == f"/auctions/{auction.id}/"


class TestWatchingPage:
    def test_lists_watched_auctions_open_first_ending_soonest_first(
        self, alice_client, alice, seller
    ):
        now = timezone.now()
        later = AuctionFactory(item__owner=seller, item__name="Later lamp")
        sooner = AuctionFactory(
            item__owner=seller, item__name="Sooner sofa", end_time=now + timedelta(minutes=5)
        )
        ended = AuctionFactory(
            item__owner=seller,
            item__name="Old oven",
            status=AuctionStatus.ENDED,
            start_time=now - timedelta(days=1),
            end_time=now - timedelta(hours=1),
            ended_at=now - timedelta(hours=1),
        )
        AuctionFactory(item__owner=seller, item__name="Unwatched urn")
        for auction in (ended, later, sooner):
            Watch.objects.create(user=alice, auction=auction)
        response = alice_client.get("/watching/")
        assert response.status_code == 200
        assert [a.id for a in response.context["auctions"]] == [sooner.id, later.id, ended.id]
        html = response.content.decode()
        assert html.index("Sooner sofa") < html.index("Later lamp") < html.index("Old oven")
        assert "Unwatched urn" not in html
        assert f'href="/auctions/{sooner.id}/"' in html
        assert html.count("Stop watching") == 3

    def test_stop_watching_from_the_list_comes_back_to_it(self, alice_client, alice, auction):
        Watch.objects.create(user=alice, auction=auction)
        html = alice_client.get("/watching/").content.decode()
        assert 'name="next" value="/watching/"' in html
        response = alice_client.post(
            f"/auctions/{auction.id}/watch/", {"watch": "0", "next": "/watching/"}, follow=True
        )
        assert response.redirect_chain == [("/watching/", 302)]
        assert "You are not watching any auction." in response.content.decode()

    def test_needs_a_login(self, client):
        response = client.get("/watching/")
        assert response.status_code == 302
        assert response["Location"] == "/accounts/login/?next=/watching/"


class TestNotificationsPage:
    def test_lists_the_latest_first_with_links(self, alice_client, alice, seller):
        first = AuctionFactory(item__owner=seller, item__name="Brass lamp")
        second = AuctionFactory(item__owner=seller, item__name="Oak chair")
        notify(alice, first, [Kind.OUTBID])
        notify(alice, second, [Kind.WON])
        response = alice_client.get("/notifications/")
        assert response.status_code == 200
        html = response.content.decode()
        listing = element(html, "notifications")[1]
        assert listing.index("You won Oak chair for 10.00.") < listing.index(
            "You were outbid on Brass lamp: the price is now 10.00."
        )
        assert f'href="/auctions/{first.id}/"' in html
        assert f'href="/auctions/{second.id}/"' in html
        assert listing.count("new") == 2

    def test_every_kind_reads_as_a_sentence(self, alice_client, alice, auction):
        notify(alice, auction, list(Kind))
        listing = element(alice_client.get("/notifications/").content.decode(), "notifications")
        name = auction.item.name
        for sentence in (
            f"You were outbid on {name}",
            f"{name}, which you watch, ends soon.",
            f"You won {name} for 10.00.",
            f"{name} went to another bidder for 10.00.",
            f"You sold {name} for 10.00.",
            f"{name} ended without a sale.",
        ):
            assert sentence in listing[1]

    def test_viewing_marks_them_read(self, alice_client, alice, auction):
        notify(alice, auction, [Kind.OUTBID, Kind.OUTBID])
        html = alice_client.get("/notifications/").content.decode()
        assert not Notification.objects.filter(user=alice, read_at__isnull=True).exists()
        # The page drawn just now already counts them read in its header…
        assert unread_in_header(html) is None
        # …and the next visit shows them as seen.
        again = alice_client.get("/notifications/").content.decode()
        assert "new" not in element(again, "notifications")[1]

    def test_only_the_viewers_own_are_shown_and_marked(self, alice_client, alice, bob, auction):
        notify(bob, auction, [Kind.OUTBID])
        html = alice_client.get("/notifications/").content.decode()
        assert element(html, "notifications") is None
        assert "No notifications yet." in html
        assert Notification.objects.get(user=bob).read_at is None

    def test_needs_a_login(self, client):
        response = client.get("/notifications/")
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


class TestHeaderCount:
    def test_every_page_shows_the_unread_count_linking_to_the_notifications(
        self, alice_client, alice, auction
    ):
        notify(alice, auction, [Kind.OUTBID, Kind.ENDING_SOON, Kind.LOST])
        for path in ("/", f"/auctions/{auction.id}/", "/bids/mine/", "/accounts/tokens/"):
            html = alice_client.get(path).content.decode()
            assert unread_in_header(html) == "3", path
            link = element(html, "nav-notifications")
            assert link[0]["href"] == "/notifications/"

    def test_no_unread_no_number(self, alice_client, alice, auction):
        assert unread_in_header(alice_client.get("/").content.decode()) is None

    def test_it_costs_one_query(self, alice_client, alice, auction):
        notify(alice, auction, [Kind.OUTBID])
        with CaptureQueriesContext(connection) as queries:
            alice_client.get("/bids/mine/")
        counting = [q["sql"] for q in queries if "notifications_notification" in q["sql"]]
        assert len(counting) == 1
        assert "COUNT(" in counting[0] and "MAX(" in counting[0]

    def test_nobody_signed_in_sees_no_count_and_pays_no_query(self, client, auction):
        with CaptureQueriesContext(connection) as queries:
            html = client.get("/").content.decode()
        assert element(html, "unread-count") is None
        assert not [q for q in queries if "notifications_notification" in q["sql"]]

    def test_another_users_notifications_do_not_count(self, alice_client, bob, auction):
        notify(bob, auction, [Kind.OUTBID])
        assert unread_in_header(alice_client.get("/").content.decode()) is None


class TestEmailSettings:
    def test_every_kind_is_on_by_default(self, alice_client):
        response = alice_client.get("/accounts/email/")
        assert response.status_code == 200
        html = response.content.decode()
        for kind in Kind.values:
            assert f'value="{kind}"' in html
        assert html.count("checked") == len(Kind.values)

    def test_saving_keeps_the_checked_kinds_on_and_the_rest_off(self, alice_client, alice):
        response = alice_client.post("/accounts/email/", {"kinds": ["won", "sold"]})
        assert response.status_code == 302
        assert response["Location"] == "/accounts/email/"
        assert messages_of(response) == ["Your e-mail settings are saved."]
        assert email_kinds_off(user=alice) == {"outbid", "ending_soon", "lost", "not_sold"}
        html = alice_client.get("/accounts/email/").content.decode()
        assert html.count("checked") == 2

    def test_nothing_checked_turns_everything_off_and_back_on(self, alice_client, alice):
        alice_client.post("/accounts/email/", {})
        assert email_kinds_off(user=alice) == set(Kind.values)
        alice_client.post("/accounts/email/", {"kinds": Kind.values})
        assert email_kinds_off(user=alice) == set()

    def test_an_unknown_kind_is_refused(self, alice_client, alice):
        response = alice_client.post("/accounts/email/", {"kinds": ["outbid", "spam"]})
        assert response.status_code == 200
        assert "Select a valid choice" in response.content.decode()
        assert not EmailSettings.objects.filter(user=alice).exists()

    def test_says_when_the_account_has_no_address(self, alice_client, alice):
        assert element(alice_client.get("/accounts/email/").content.decode(), "no-address")
        alice.email = "alice@example.com"
        alice.save()
        assert element(alice_client.get("/accounts/email/").content.decode(), "no-address") is None

    def test_needs_a_login(self, client):
        response = client.get("/accounts/email/")
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


class TestUnsubscribe:
    def url(self, user, kind=Kind.OUTBID) -> str:
        return f"/notifications/unsubscribe/{unsubscribe_token(user.id, kind)}/"

    def test_get_shows_what_it_turns_off_and_changes_nothing(self, client, alice):
        response = client.get(self.url(alice))
        assert response.status_code == 200
        html = response.content.decode()
        what = element(html, "unsubscribe-what")[1]
        assert "alice" in what and "when another bidder outbids you" in what
        form = element(html, "unsubscribe-form")
        assert form[0]["method"] == "post"
        assert form[0]["action"] == self.url(alice)
        assert email_kinds_off(user=alice) == set()

    def test_confirming_turns_that_kind_off_without_a_session_or_csrf(self, alice):
        browser = Client(enforce_csrf_checks=True)
        response = browser.post(self.url(alice, Kind.ENDING_SOON))
        assert response.status_code == 200
        done = element(response.content.decode(), "unsubscribed")[1]
        assert "when an auction you watch is about to end" in done
        assert email_kinds_off(user=alice) == {"ending_soon"}

    def test_one_click_post_from_the_mail_client(self, alice):
        """RFC 8058: POST List-Unsubscribe=One-Click, no cookies, no CSRF token."""
        mail_client = Client(enforce_csrf_checks=True)
        response = mail_client.post(
            self.url(alice),
            "List-Unsubscribe=One-Click",
            content_type="application/x-www-form-urlencoded",
        )
        assert response.status_code == 200
        assert email_kinds_off(user=alice) == {"outbid"}
        # Again: still off, once.
        mail_client.post(self.url(alice), "List-Unsubscribe=One-Click",
                         content_type="application/x-www-form-urlencoded")  # fmt: skip
        assert EmailSettings.objects.get(user=alice).kinds_off == ["outbid"]

    def test_other_kinds_and_users_stay_on(self, client, alice, bob):
        client.post(self.url(alice, Kind.LOST))
        assert email_kinds_off(user=alice) == {"lost"}
        assert email_kinds_off(user=bob) == set()

    @pytest.mark.parametrize("method", ["get", "post"])
    @pytest.mark.parametrize(
        "token",
        [
            "nonsense",
            lambda user: unsubscribe_token(user.id, "outbid")[:-2] + "xx",  # tampered
            lambda user: unsubscribe_token(user.id, "spam"),  # a kind that does not exist
        ],
    )
    def test_a_bad_token_gets_a_clear_400_page(self, client, alice, method, token):
        value = token(alice) if callable(token) else token
        response = getattr(client, method)(f"/notifications/unsubscribe/{value}/")
        assert response.status_code == 400
        assert "This unsubscribe link is not valid" in response.content.decode()
        assert not EmailSettings.objects.exists()

    def test_a_token_for_a_deleted_account_is_400(self, client, alice):
        url = self.url(alice)
        alice.delete()
        assert client.post(url).status_code == 400
        assert not EmailSettings.objects.exists()
