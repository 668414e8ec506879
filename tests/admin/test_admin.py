"""The staff admin (spec §4): pages render, bids are read-only, actions go through services."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.messages import get_messages
from django.db import connection
from django.db.models import Model
from django.test.client import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiToken, User
from accounts.services import api_token_create, api_token_user
from auctions.models import Auction, AuctionEvent, AuctionStatus, Item
from auctions.services import auction_create
from bidding.models import Bid, BidRequest
from bidding.services import bid_place
from tests.factories import AuctionFactory, UserFactory

pytestmark = pytest.mark.django_db

ALL_MODELS = (User, ApiToken, Item, Auction, AuctionEvent, Bid, BidRequest)


def url(model: type[Model], view: str, *args: object) -> str:
    meta = model._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}", args=args)


def message_texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def records(auction, alice, bob):
    """An active auction with two bids (one sent with a request id) and a token."""
    bid_place(auction_id=auction.id, bidder=alice, amount="10.00", request_id="req-1")
    bid_place(auction_id=auction.id, bidder=bob, amount="11.00")
    api_token_create(user=alice, name="laptop")
    auction.refresh_from_db()
    return auction


@pytest.fixture
def pending(seller):
    start = timezone.now() + timedelta(minutes=10)
    return auction_create(
        creator=seller,
        item_name="Clock",
        starting_price="5",
        start_time=start,
        duration_seconds=600,
    )


def run_action(client, action: str, *auctions: Auction):
    selected = [str(auction.id) for auction in auctions]
    return client.post(
        url(Auction, "changelist"), {"action": action, "_selected_action": selected}, follow=True
    )


class TestPagesRender:
    @pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m.__name__)
    def test_changelist(self, admin_client, records, model):
        assert admin_client.get(url(model, "changelist")).status_code == 200

    @pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m.__name__)
    def test_change_page(self, admin_client, records, model):
        obj = model.objects.first()
        assert admin_client.get(url(model, "change", obj.pk)).status_code == 200

    @pytest.mark.parametrize("model", [User, Item], ids=lambda m: m.__name__)
    def test_add_page(self, admin_client, model):
        assert admin_client.get(url(model, "add")).status_code == 200

    @pytest.mark.parametrize(
        "model", [ApiToken, AuctionEvent, Bid, BidRequest], ids=lambda m: m.__name__
    )
    def test_no_add_page_where_a_service_creates_the_records(self, admin_client, model):
        assert admin_client.get(url(model, "add")).status_code == 403

    def test_the_auction_add_page_is_the_services_form(self, admin_client):
        response = admin_client.get(url(Auction, "add"))
        assert response.status_code == 200
        assert 'name="seller"' in response.content.decode()

    @pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m.__name__)
    def test_search_by_text_and_by_uuid(self, admin_client, records, model):
        obj = model.objects.first()
        for term in ("alice", str(obj.pk), "not-a-uuid"):
            response = admin_client.get(url(model, "changelist"), {"q": term})
            assert response.status_code == 200
        response = admin_client.get(url(model, "changelist"), {"q": str(obj.pk)})
        assert list(response.context["cl"].result_list) == [obj]

    @pytest.mark.parametrize("model", [Auction, AuctionEvent, Bid, BidRequest, ApiToken, Item])
    def test_changelist_queries_do_not_grow_with_rows(self, admin_client, model):
        def queries() -> int:
            with CaptureQueriesContext(connection) as captured:
                assert admin_client.get(url(model, "changelist")).status_code == 200
            return len(captured)

        def add_rows() -> None:
            auction = AuctionFactory()
            bidder = UserFactory()
            bid_place(auction_id=auction.id, bidder=bidder, amount="10", request_id=str(auction.id))
            api_token_create(user=bidder)

        add_rows()
        few = queries()
        for _ in range(4):
            add_rows()
        assert queries() == few


class TestUsersAndTokens:
    def test_staff_can_add_a_user_with_a_password(self, admin_client):
        response = admin_client.post(
            url(User, "add"),
            {
                "username": "dave",
                "usable_password": "true",
                "password1": "a-long-pass-phrase-42",
                "password2": "a-long-pass-phrase-42",
            },
        )
        assert response.status_code == 302
        assert User.objects.get(username="dave").check_password("a-long-pass-phrase-42")

    def test_token_action_shows_a_working_token_once(self, admin_client, alice):
        response = admin_client.post(
            url(User, "changelist"),
            {"action": "create_api_token", "_selected_action": [str(alice.id)]},
            follow=True,
        )
        [message] = message_texts(response)
        token = message.rsplit(" ", 1)[-1]
        assert api_token_user(token=token) == alice
        assert not ApiToken.objects.filter(key_hash__contains=token).exists()

    def test_tokens_cannot_be_edited_but_can_be_revoked(self, admin_client, alice):
        record, token = api_token_create(user=alice)
        change = admin_client.post(url(ApiToken, "change", record.pk), {"name": "renamed"})
        assert change.status_code == 403
        response = admin_client.post(url(ApiToken, "delete", record.pk), {"post": "yes"})
        assert response.status_code == 302
        assert api_token_user(token=token) is None


class TestItems:
    def test_staff_can_add_an_item_for_a_user(self, admin_client, alice):
        data = {"name": "Teapot", "description": "Blue.", "owner": str(alice.id)}
        assert admin_client.post(url(Item, "add"), data).status_code == 302
        assert Item.objects.get(name="Teapot").owner == alice

    def test_an_items_owner_cannot_be_changed(self, admin_client, alice, bob):
        item = Item.objects.create(owner=alice, name="Never on sale")
        data = {"name": "Renamed", "description": "", "owner": str(bob.id)}
        post = _with_inline(_with_inline(data, "images", 0), "auctions", 0)
        response = admin_client.post(url(Item, "change", item.pk), post)
        assert response.status_code == 302
        item.refresh_from_db()
        assert (item.name, item.owner) == ("Renamed", alice)

    def test_an_item_that_is_or_was_on_sale_is_read_only(self, admin_client, records, bob):
        item = records.item
        data = {"name": "Renamed", "description": "", "owner": str(bob.id)}
        post = _with_inline(_with_inline(data, "images", 0), "auctions")
        admin_client.post(url(Item, "change", item.pk), post)
        item.refresh_from_db()
        assert item.name != "Renamed"


def _with_inline(data: dict, prefix: str, count: int = 1) -> dict:
    """Add the management form a browser posts along with a read-only inline."""
    management = {"TOTAL_FORMS": count, "INITIAL_FORMS": count, "MIN_NUM_FORMS": 0}
    return {**data, **{f"{prefix}-{key}": value for key, value in management.items()}}


class TestBidsAreReadOnly:
    def test_permissions_allow_viewing_only(self, admin_user):
        request = RequestFactory().get("/")
        request.user = admin_user
        for model in (Bid, BidRequest, AuctionEvent):
            model_admin = admin.site._registry[model]
            assert model_admin.has_view_permission(request)
            assert not model_admin.has_add_permission(request)
            assert not model_admin.has_change_permission(request)
            assert not model_admin.has_delete_permission(request)
            assert "delete_selected" not in model_admin.get_actions(request)

    def test_posts_to_add_change_and_delete_are_refused(self, admin_client, records):
        bid = Bid.objects.get(amount=Decimal("11.00"))
        data = {"auction": str(records.id), "bidder": str(bid.bidder_id), "amount": "999.00"}
        assert admin_client.post(url(Bid, "add"), {**data, "seq": 9}).status_code == 403
        assert admin_client.post(url(Bid, "change", bid.pk), data).status_code == 403
        assert admin_client.post(url(Bid, "delete", bid.pk), {"post": "yes"}).status_code == 403
        bid.refresh_from_db()
        assert bid.amount == Decimal("11.00")
        assert Bid.objects.count() == 2

    def test_auction_money_state_cannot_be_posted(self, admin_client, records):
        response = admin_client.post(
            url(Auction, "change", records.pk), {"current_price": "1.00", "status": "ended"}
        )
        assert response.status_code == 403
        records.refresh_from_db()
        assert (records.current_price, records.status) == (Decimal("11.00"), AuctionStatus.ACTIVE)

    def test_auction_page_lists_bids_highest_first_without_forms(self, admin_client, records):
        content = admin_client.get(url(Auction, "change", records.pk)).content.decode()
        bids = content[content.index('id="bids-group"') :]
        assert bids.index("<p>11.00</p>") < bids.index("<p>10.00</p>")
        assert 'name="bids-0-amount"' not in content
        assert f"auction__id__exact={records.id}" in content

    def test_bids_filter_by_auction_from_the_auction_page_link(self, admin_client, records):
        AuctionFactory()
        response = admin_client.get(url(Bid, "changelist"), {"auction__id__exact": records.id})
        assert response.context["cl"].result_count == 2

    def test_event_payload_is_pretty_printed(self, admin_client, records):
        event = records.events.get(seq=1)
        content = admin_client.get(url(AuctionEvent, "change", event.pk)).content.decode()
        assert re.search(r"<pre>\{\n  &quot;amount&quot;: &quot;10.00&quot;", content)


class TestCloseNow:
    def test_closes_an_active_auction_with_an_ended_event(self, admin_client, records, bob):
        response = run_action(admin_client, "close_now", records)
        records.refresh_from_db()
        assert records.status == AuctionStatus.ENDED
        assert (records.winner, records.final_price) == (bob, Decimal("11.00"))
        assert records.events.order_by("-seq").first().type == "auction_ended"
        assert message_texts(response) == [f"“{records.item.name}” ({records.id}): closed."]

    def test_a_pending_auction_is_refused_with_a_message(self, admin_client, pending):
        response = run_action(admin_client, "close_now", pending)
        pending.refresh_from_db()
        assert pending.status == AuctionStatus.PENDING
        [message] = message_texts(response)
        assert "can be cancelled, not closed" in message

    def test_an_ended_auction_is_left_as_it_was(self, admin_client, records):
        run_action(admin_client, "close_now", records)
        response = run_action(admin_client, "close_now", records)
        assert records.events.filter(type="auction_ended").count() == 1
        assert "not active" in message_texts(response)[0]


class TestCancel:
    def test_cancels_a_pending_auction(self, admin_client, pending):
        response = run_action(admin_client, "cancel", pending)
        pending.refresh_from_db()
        assert pending.status == AuctionStatus.CANCELLED
        event = pending.events.get()
        assert event.type == "auction_cancelled"
        assert event.payload["reason"] == "cancelled by staff"
        assert message_texts(response) == [f"“Clock” ({pending.id}): cancelled."]

    def test_refuses_an_active_auction_with_bids_and_reports_each(
        self, admin_client, records, pending
    ):
        seq = records.last_seq
        response = run_action(admin_client, "cancel", records, pending)
        records.refresh_from_db()
        assert (records.status, records.last_seq) == (AuctionStatus.ACTIVE, seq)
        messages = message_texts(response)
        assert len(messages) == 2
        assert any("without bids, can be cancelled" in m and str(records.id) in m for m in messages)
        assert any(m.endswith("cancelled.") and str(pending.id) in m for m in messages)
