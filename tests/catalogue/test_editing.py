"""Editing a pending auction (spec §9): PATCH with ETag / If-Match, the seller's edit page,
`auction_updated` with the changed fields, and no lost update under real concurrency.
"""

import io
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.db import connection, connections, transaction
from django.test import Client
from django.utils import timezone

from accounts.services import api_token_create
from auctions.errors import Code, DomainError
from auctions.formats import iso
from auctions.models import Auction, AuctionEvent, AuctionStatus
from auctions.schedule_index import schedule_key
from auctions.services import (
    Upload,
    auction_cancel,
    auction_start,
    auction_update,
    item_images_add,
)
from bidding.services import bid_place
from infra.redis import redis_client
from tests.api.conftest import ApiClient
from tests.catalogue import imaging
from tests.catalogue.conftest import pending_auction, stored_files
from tests.factories import AuctionFactory, UserFactory

MAX_WAIT_SECONDS = 30  # a bound on waiting for another thread, never a timing assertion
RACE_ROUNDS = 8


def url(auction: Auction) -> str:
    return f"/api/auctions/{auction.id}/"


def etag_of(api, auction: Auction) -> str:
    response = api.get(url(auction))
    assert response.status_code == 200
    return response["ETag"]


def patch(api, auction: Auction, body: dict, if_match: str | None = None):
    headers = {} if if_match is None else {"If-Match": if_match}
    return api.patch(url(auction), body, content_type="application/json", headers=headers)


def events_of(auction: Auction) -> list[AuctionEvent]:
    return list(AuctionEvent.objects.filter(auction=auction).order_by("seq"))


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.mark.django_db
class TestETag:
    def test_the_get_carries_the_version_as_etag(self, alice_api, pending):
        assert etag_of(alice_api, pending) == f'"{pending.version}"'

    def test_an_accepted_patch_answers_the_new_snapshot_and_etag(self, seller_api, pending):
        etag = etag_of(seller_api, pending)
        response = patch(seller_api, pending, {"item": {"name": "Copper lamp"}}, etag)

        assert response.status_code == 200, response.content
        assert response["ETag"] == f'"{pending.version + 1}"' != etag
        assert response.json()["item"]["name"] == "Copper lamp"
        fresh = seller_api.get(url(pending))
        patched = response.json()
        assert {key: value for key, value in fresh.json().items() if key in patched} == patched
        assert fresh["ETag"] == response["ETag"]

    def test_a_weak_etag_is_accepted_too(self, seller_api, pending):
        response = patch(seller_api, pending, {"starting_price": "11"}, f'W/"{pending.version}"')
        assert response.status_code == 200

    def test_a_stale_etag_is_412_and_nothing_is_overwritten(self, seller_api, pending):
        etag = etag_of(seller_api, pending)
        assert patch(seller_api, pending, {"item": {"name": "First"}}, etag).status_code == 200

        response = patch(seller_api, pending, {"item": {"name": "Second"}}, etag)

        assert response.status_code == 412
        body = response.json()
        assert body["code"] == "version_conflict"
        assert "Nothing was saved" in body["message"]
        assert body["data"] == {"version": pending.version + 1}
        pending.refresh_from_db()
        assert pending.item.name == "First"
        assert [e.type for e in events_of(pending)] == ["auction_updated"]

    def test_without_if_match_it_is_428(self, seller_api, pending):
        response = patch(seller_api, pending, {"item": {"name": "Renamed"}})
        assert response.status_code == 428
        assert response.json()["code"] == "precondition_required"
        assert "If-Match" in response.json()["message"]
        pending.refresh_from_db()
        assert (pending.item.name, pending.version, pending.last_seq) == ("Brass lamp", 0, 0)

    def test_if_match_star_edits_whatever_the_version(self, seller_api, pending):
        response = patch(seller_api, pending, {"item": {"name": "Renamed"}}, "*")
        assert response.status_code == 200
        pending.refresh_from_db()
        assert (pending.item.name, pending.version) == ("Renamed", 1)

    def test_an_edit_that_changes_nothing_writes_nothing(self, seller_api, pending):
        etag = f'"{pending.version}"'
        response = patch(seller_api, pending, {"item": {"name": pending.item.name}}, etag)
        assert response.status_code == 200
        assert response["ETag"] == etag
        pending.refresh_from_db()
        assert (pending.version, pending.last_seq) == (0, 0)
        assert events_of(pending) == []

    @pytest.mark.parametrize("header", ["0", '"abc"', '"0', '"0", "1"', ""])
    def test_an_if_match_that_names_no_version_is_412(self, seller_api, pending, header):
        response = patch(seller_api, pending, {"item": {"name": "Renamed"}}, header)
        assert response.status_code == 412
        assert response.json()["code"] == "version_conflict"
        pending.refresh_from_db()
        assert pending.item.name == "Brass lamp"

    @pytest.mark.parametrize("how", ["started", "cancelled"])
    def test_once_not_pending_it_is_409(self, seller_api, seller, pending, how):
        if how == "started":
            Auction.objects.filter(id=pending.id).update(start_time=timezone.now())
            assert auction_start(auction_id=pending.id)
        else:
            auction_cancel(auction_id=pending.id, actor=seller)
        etag = etag_of(seller_api, pending)

        response = patch(seller_api, pending, {"item": {"name": "Renamed"}}, etag)

        assert response.status_code == 409
        assert response.json()["code"] == "not_editable"
        pending.refresh_from_db()
        assert pending.item.name == "Brass lamp"
        assert "auction_updated" not in [e.type for e in events_of(pending)]

    def test_an_active_auction_is_409(self, seller_api, auction):
        response = patch(seller_api, auction, {"starting_price": "1"}, etag_of(seller_api, auction))
        assert response.status_code == 409
        assert response.json()["code"] == "not_editable"


@pytest.mark.django_db
class TestWhoMayEdit:
    def test_someone_else_is_403(self, alice_api, pending):
        response = patch(alice_api, pending, {"item": {"name": "Mine now"}}, '"0"')
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
        pending.refresh_from_db()
        assert pending.item.name == "Brass lamp"

    def test_staff_may_edit(self, client_for, staff, pending):
        response = patch(client_for(staff), pending, {"item": {"name": "Fixed typo"}}, '"0"')
        assert response.status_code == 200
        assert response.json()["item"]["name"] == "Fixed typo"

    def test_no_such_auction_is_404(self, seller_api):
        for auction_id in ("00000000-0000-0000-0000-000000000000", "nope"):
            response = seller_api.patch(
                f"/api/auctions/{auction_id}/",
                {"starting_price": "1"},
                content_type="application/json",
                headers={"If-Match": '"0"'},
            )
            assert response.status_code == 404
            assert response.json()["code"] == "not_found"

    def test_anonymous_is_401(self, pending):
        response = patch(ApiClient(), pending, {"starting_price": "1"}, '"0"')
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"


@pytest.mark.django_db
class TestValidation:
    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"starting_price": "ten"}, "starting_price"),
            ({"starting_price": "0"}, "starting_price"),
            ({"starting_price": "1.001"}, "starting_price"),
            ({"reserve_price": "5"}, "reserve_price"),  # below the starting price
            ({"buy_now_price": "9.99"}, "buy_now_price"),
            ({"min_increment": "-1"}, "min_increment"),
            ({"increments": "no-such-table"}, "increments"),
            ({"extension_seconds": -5}, "extension_seconds"),
            ({"start_time": "2001-01-01T00:00:00Z"}, "start_time"),
            ({"end_time": "2001-01-01T00:00:00Z"}, "end_time"),  # before the start
            ({"item": {"name": "   "}}, "item.name"),
            ({"item": {"name": "x" * 201}}, "item.name"),
            ({"item": {"category": "no-such-category"}}, "category"),
        ],
        ids=repr,
    )
    def test_a_bad_value_is_422_and_nothing_changes(self, seller_api, pending, body, field):
        response = patch(seller_api, pending, body, '"0"')
        assert response.status_code == 422, response.content
        error = response.json()
        assert error["code"] == "validation_error"
        assert error["data"] == {"field": field}
        pending.refresh_from_db()
        assert (pending.version, pending.last_seq, pending.starting_price) == (
            0,
            0,
            Decimal("10.00"),
        )
        assert pending.item.name == "Brass lamp"

    @pytest.mark.parametrize(
        "body",
        [
            {"starting_price": {"amount": 1}},
            {"start_time": 1767225600},
            {"end_time": "tomorrow"},
            {"extension_seconds": "60"},
            {"item": "a name"},
            {"item": 5},
            # A field the edit does not know would otherwise be dropped unsaved, with a 200.
            {"status": "ended"},
            {"strating_price": "5"},
            {"item": {"nmae": "Typo"}},
        ],
        ids=repr,
    )
    def test_a_wrongly_typed_or_unknown_field_is_422(self, seller_api, pending, body):
        response = patch(seller_api, pending, body, '"0"')
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"
        pending.refresh_from_db()
        assert (pending.version, pending.status) == (0, AuctionStatus.PENDING)

    def test_a_body_that_is_not_json_is_400(self, seller_api, pending):
        response = seller_api.patch(
            url(pending), "{nope", content_type="application/json", headers={"If-Match": '"0"'}
        )
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_json"


@pytest.mark.django_db
class TestAuctionUpdatedEvent:
    @pytest.mark.parametrize(
        ("body", "changed"),
        [
            ({"item": {"name": "Copper lamp"}}, {"item"}),
            ({"item": {"description": "Dented."}}, {"item"}),
            ({"starting_price": "12.50"}, {"starting_price", "current_price", "min_next_bid"}),
            ({"buy_now_price": "99"}, {"buy_now_price"}),
            ({"min_increment": "2.00"}, {"min_increment"}),
            ({"increments": "standard"}, {"min_increment", "increments"}),
            ({"end_time": iso(timezone.now() + timedelta(days=3))}, {"end_time"}),
            ({"reserve_price": "500"}, {"reserve_met"}),  # the reserve itself is private
        ],
        ids=repr,
    )
    def test_the_event_carries_only_what_changed(self, seller_api, pending, body, changed):
        response = patch(seller_api, pending, body, '"0"')
        assert response.status_code == 200, response.content
        [event] = events_of(pending)
        assert (event.type, event.seq) == ("auction_updated", 1)
        assert set(event.payload) == changed
        snapshot = response.json()
        for key in changed:
            assert event.payload[key] == snapshot[key]

    def test_the_category_is_part_of_the_item(self, seller_api, pending, lamps):
        patch(seller_api, pending, {"item": {"category": "lamps"}}, '"0"')
        [event] = events_of(pending)
        assert event.payload["item"]["category"] == {"slug": "lamps", "name": "Lamps"}
        patch(seller_api, pending, {"item": {"category": None}}, '"1"')
        assert events_of(pending)[1].payload["item"]["category"] is None

    def test_each_edit_is_the_next_event_and_the_version_moves_with_it(self, seller_api, pending):
        for version, price in enumerate(["11", "12", "13"]):
            response = patch(seller_api, pending, {"starting_price": price}, f'"{version}"')
            assert response.status_code == 200
        assert [(e.seq, e.payload["starting_price"]) for e in events_of(pending)] == [
            (1, "11.00"),
            (2, "12.00"),
            (3, "13.00"),
        ]
        pending.refresh_from_db()
        assert (pending.version, pending.last_seq) == (3, 3)

    def test_the_event_is_replayed_like_any_other(self, seller_api, alice_api, pending):
        patch(seller_api, pending, {"item": {"name": "Copper lamp"}}, '"0"')
        [event] = alice_api.get(f"{url(pending)}events/").json()["results"]
        assert event["type"] == "auction_updated"
        assert event["data"]["item"]["name"] == "Copper lamp"

    def test_new_times_move_the_schedule(
        self, seller_api, pending, django_capture_on_commit_callbacks
    ):
        start = timezone.now().replace(microsecond=0) + timedelta(hours=5)
        end = start + timedelta(hours=2)
        with django_capture_on_commit_callbacks(execute=True):
            response = patch(
                seller_api, pending, {"start_time": iso(start), "end_time": iso(end)}, '"0"'
            )
        assert response.status_code == 200
        [event] = events_of(pending)
        assert event.payload == {"start_time": iso(start), "end_time": iso(end)}
        redis = redis_client()
        assert redis.zscore(schedule_key("start"), str(pending.id)) == start.timestamp()
        assert redis.zscore(schedule_key("end"), str(pending.id)) == end.timestamp()


# --- the seller's edit page --------------------------------------------------------------


def edit_url(auction: Auction) -> str:
    return f"/auctions/{auction.id}/edit/"


def as_drawn(response) -> dict[str, str]:
    """What a browser posts back from the drawn form, unchanged."""
    form = response.context["form"]
    data = {}
    for name in form.fields:
        if name in ("photos", "remove_photos"):
            continue
        value = form[name].value()
        if isinstance(value, datetime):
            value = value.strftime("%Y-%m-%dT%H:%M")
        data[name] = "" if value is None else str(value)
    return data


@pytest.mark.django_db
class TestEditPage:
    def test_the_form_is_drawn_with_the_version(self, seller_client, pending):
        response = seller_client.get(edit_url(pending))
        assert response.status_code == 200
        html = response.content.decode()
        assert f'name="version" value="{pending.version}"' in html
        assert as_drawn(response)["item_name"] == "Brass lamp"

    def test_renaming_changes_the_name_and_nothing_else(self, seller_client, pending):
        before = Auction.objects.get(id=pending.id)
        data = {**as_drawn(seller_client.get(edit_url(pending))), "item_name": "Copper lamp"}

        response = seller_client.post(edit_url(pending), data)

        assert response.status_code == 302
        assert response["Location"] == f"/auctions/{pending.id}/"
        assert messages_of(response) == ["Your changes are saved."]
        after = Auction.objects.select_related("item").get(id=pending.id)
        assert after.item.name == "Copper lamp"
        # The times as they were, to the microsecond, though the form shows minutes.
        assert (after.start_time, after.end_time) == (before.start_time, before.end_time)
        assert (after.starting_price, after.min_increment, after.increments) == (
            before.starting_price,
            before.min_increment,
            before.increments,
        )
        [event] = events_of(pending)
        assert set(event.payload) == {"item"}

    def test_a_custom_increment_table_survives_an_edit_of_the_text(self, seller, seller_client):
        table = [["0.00", "0.50"], ["100.00", "5.00"]]
        auction = pending_auction(seller, increments=table)
        data = {**as_drawn(seller_client.get(edit_url(auction))), "item_description": "New."}

        assert seller_client.post(edit_url(auction), data).status_code == 302

        auction.refresh_from_db()
        assert auction.item.description == "New."
        assert auction.increments == table

    def test_a_site_table_can_be_chosen_and_given_up(self, seller_client, pending):
        data = {**as_drawn(seller_client.get(edit_url(pending))), "increments": "standard"}
        assert seller_client.post(edit_url(pending), data).status_code == 302
        pending.refresh_from_db()
        assert pending.increments[0] == ["0.00", "0.05"]

        drawn = as_drawn(seller_client.get(edit_url(pending)))
        assert drawn["increments"] == "standard"
        data = {**drawn, "increments": "", "min_increment": "0.25"}
        assert seller_client.post(edit_url(pending), data).status_code == 302
        pending.refresh_from_db()
        assert (pending.increments, pending.min_increment) == (None, Decimal("0.25"))

    def test_new_times_are_read_as_utc(self, seller_client, pending):
        start = (timezone.now() + timedelta(days=2)).replace(second=0, microsecond=0)
        data = {
            **as_drawn(seller_client.get(edit_url(pending))),
            "start_time": start.strftime("%Y-%m-%dT%H:%M"),
            "end_time": (start + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"),
        }
        assert seller_client.post(edit_url(pending), data).status_code == 302
        pending.refresh_from_db()
        assert pending.start_time == start.astimezone(UTC)
        assert pending.end_time == start + timedelta(hours=3)

    def test_a_stale_form_is_refused_with_a_message_and_drawn_again(
        self, seller_client, client_for, staff, pending
    ):
        drawn = as_drawn(seller_client.get(edit_url(pending)))
        response = patch(client_for(staff), pending, {"item": {"name": "Staff's name"}}, '"0"')
        assert response.status_code == 200

        response = seller_client.post(edit_url(pending), {**drawn, "item_name": "Seller's name"})

        assert response.status_code == 200
        [message] = messages_of(response)
        assert message.startswith("The auction changed since you opened it")
        assert "Nothing was saved" in message
        pending.refresh_from_db()
        assert pending.item.name == "Staff's name"
        assert as_drawn(response) == as_drawn(seller_client.get(edit_url(pending)))
        assert as_drawn(response)["version"] == "1"
        assert as_drawn(response)["item_name"] == "Staff's name"

    def test_a_bad_value_is_shown_by_its_field_and_nothing_is_saved(self, seller_client, pending):
        drawn = as_drawn(seller_client.get(edit_url(pending)))
        response = seller_client.post(edit_url(pending), {**drawn, "reserve_price": "2"})
        assert response.status_code == 200
        assert response.context["form"].errors == {
            "reserve_price": ["The reserve price cannot be below the starting price."]
        }
        pending.refresh_from_db()
        assert (pending.reserve_price, pending.version) == (None, 0)

    def test_photos_are_added_and_removed_in_one_go(
        self, seller_client, pending, media, django_capture_on_commit_callbacks
    ):
        drawn = as_drawn(seller_client.get(edit_url(pending)))
        photos = [imaging.photo_upload("JPEG"), imaging.photo_upload("PNG")]
        assert seller_client.post(edit_url(pending), {**drawn, "photos": photos}).status_code == 302
        first, second = pending.item.images.order_by("position")
        assert len(stored_files(media)) == 4

        drawn = as_drawn(seller_client.get(edit_url(pending)))
        with django_capture_on_commit_callbacks(execute=True):
            response = seller_client.post(
                edit_url(pending),
                {**drawn, "remove_photos": [str(first.id)], "photos": [imaging.photo_upload()]},
            )
        assert response.status_code == 302
        remaining = list(pending.item.images.order_by("position"))
        assert second in remaining and first not in remaining
        assert len(remaining) == 2
        assert first.image.name not in stored_files(media)
        assert len(stored_files(media)) == 4

    def test_a_bad_photo_refuses_the_whole_edit(self, seller_client, pending, media):
        drawn = as_drawn(seller_client.get(edit_url(pending)))
        bad = imaging.upload(b"GIF89a not really", "x.jpg")
        response = seller_client.post(
            edit_url(pending), {**drawn, "item_name": "Renamed", "photos": [bad]}
        )
        assert response.status_code == 200
        assert response.context["form"].errors["photos"]
        pending.refresh_from_db()
        assert (pending.item.name, pending.version) == ("Brass lamp", 0)
        assert stored_files(media) == []

    def test_someone_else_gets_a_404(self, pending, alice):
        browser = Client()
        browser.force_login(alice)
        assert browser.get(edit_url(pending)).status_code == 404
        assert browser.post(edit_url(pending), {"item_name": "Mine"}).status_code == 404

    def test_staff_may_edit_on_the_site_too(self, pending, staff):
        browser = Client()
        browser.force_login(staff)
        data = {**as_drawn(browser.get(edit_url(pending))), "item_name": "Fixed"}
        assert browser.post(edit_url(pending), data).status_code == 302
        pending.refresh_from_db()
        assert pending.item.name == "Fixed"

    def test_anonymous_is_sent_to_log_in(self, client, pending):
        response = client.get(edit_url(pending))
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")

    def test_a_started_auction_cannot_be_edited(self, seller_client, seller, auction):
        response = seller_client.get(edit_url(auction))
        assert response.status_code == 302
        assert response["Location"] == f"/auctions/{auction.id}/"
        assert messages_of(response) == ["This auction has started: it can no longer be edited."]

    def test_the_auction_page_offers_the_edit_only_while_pending(self, seller_client, pending):
        html = seller_client.get(f"/auctions/{pending.id}/").content.decode()
        assert edit_url(pending) in html
        Auction.objects.filter(id=pending.id).update(start_time=timezone.now())
        auction_start(auction_id=pending.id)
        html = seller_client.get(f"/auctions/{pending.id}/").content.decode()
        assert edit_url(pending) not in html


# --- concurrency: real threads, real PostgreSQL, each with its own connection --------------


def due_pending(**fields: Any) -> Auction:
    """A pending auction whose start time has just come: the start task is about to run."""
    now = timezone.now()
    return AuctionFactory(
        status=AuctionStatus.PENDING,
        start_time=now - timedelta(seconds=1),
        end_time=now + timedelta(hours=1),
        max_end_time=now + timedelta(hours=1),
        item__name="Lamp",
        **fields,
    )


class Worker(threading.Thread):
    """Runs `work` on a connection of its own; with `hold`, keeps its transaction (and the
    row locks it took) open until `release()`."""

    def __init__(self, work: Callable[[], Any], hold: bool = False) -> None:
        super().__init__(daemon=True)
        self.work, self.hold = work, hold
        self.worked = threading.Event()
        self._released = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with transaction.atomic():
                try:
                    self.result = self.work()
                except DomainError as exc:
                    self.error = exc
                self.worked.set()
                if self.hold:
                    self._released.wait(MAX_WAIT_SECONDS)
        finally:
            self.worked.set()
            connections.close_all()

    def release(self) -> None:
        self._released.set()

    def finish(self) -> "Worker":
        self.release()
        self.join(MAX_WAIT_SECONDS)
        assert not self.is_alive()
        return self


def wait_until_someone_waits_for_a_lock() -> None:
    """Until another session of this database is blocked on a row lock."""
    deadline = threading.Event()
    timer = threading.Timer(MAX_WAIT_SECONDS, deadline.set)
    timer.start()
    try:
        while not deadline.is_set():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
                if cursor.fetchone()[0]:
                    return
            deadline.wait(0.01)
        raise AssertionError("nobody ever waited for the row lock")
    finally:
        timer.cancel()


def edit(auction: Auction, version: int = 0) -> Callable[[], Auction]:
    changes = {"item_name": "Edited lamp", "starting_price": "12.00"}
    seller = auction.creator
    return lambda: auction_update(
        auction_id=auction.id, actor=seller, version=version, changes=changes
    )


def start(auction: Auction) -> Callable[[], bool]:
    return lambda: auction_start(auction_id=auction.id)


def assert_consistent(auction: Auction) -> str:
    """The auction is either "edited, then started" or "started, edit refused"; which one."""
    auction.refresh_from_db()
    events = events_of(auction)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert auction.version == auction.last_seq == len(events)
    assert auction.status == AuctionStatus.ACTIVE
    types = [e.type for e in events]
    if types == ["auction_updated", "auction_started"]:
        assert auction.item.name == "Edited lamp"
        assert auction.starting_price == Decimal("12.00")
        # The start announced the edited terms: subscribers never saw the old ones go live.
        assert events[1].payload["current_price"] == "12.00"
        return "edited first"
    assert types == ["auction_started"], types
    assert auction.item.name == "Lamp"
    assert auction.starting_price == Decimal("10.00")
    assert events[0].payload["current_price"] == "10.00"
    return "started first"


@pytest.mark.django_db(transaction=True)
class TestNoLostUpdate:
    def test_two_editors_with_the_same_etag_one_wins(self, seller, staff):
        auction = pending_auction(seller)
        clients = {}
        for name, user in (("seller", seller), ("staff", staff)):
            _, token = api_token_create(user=user)
            clients[name] = ApiClient(HTTP_AUTHORIZATION=f"Bearer {token}")
        gate = threading.Barrier(2)
        statuses: dict[str, int] = {}

        def editor(name: str) -> None:
            try:
                gate.wait(MAX_WAIT_SECONDS)
                response = patch(clients[name], auction, {"item": {"name": f"By {name}"}}, '"0"')
                statuses[name] = response.status_code
            finally:
                connections.close_all()

        threads = [threading.Thread(target=editor, args=(name,)) for name in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(MAX_WAIT_SECONDS)

        assert sorted(statuses.values()) == [200, 412]
        [winner] = [name for name, status in statuses.items() if status == 200]
        auction.refresh_from_db()
        assert auction.item.name == f"By {winner}"
        assert [e.type for e in events_of(auction)] == ["auction_updated"]
        assert events_of(auction)[0].payload["item"]["name"] == f"By {winner}"

    def test_a_form_drawn_before_another_edit_cannot_overwrite_it(self, seller, staff):
        auction = pending_auction(seller)
        browser = Client()
        browser.force_login(seller)
        drawn = as_drawn(browser.get(edit_url(auction)))

        other = Worker(
            lambda: auction_update(
                auction_id=auction.id,
                actor=staff,
                version=0,
                changes={"starting_price": "20.00", "item_name": "Staff's name"},
            )
        )
        other.start()
        other.finish()
        assert other.error is None

        response = browser.post(
            edit_url(auction), {**drawn, "item_name": "Seller's name", "starting_price": "15"}
        )

        assert response.status_code == 200
        assert "changed since you opened it" in messages_of(response)[0]
        auction.refresh_from_db()
        assert (auction.item.name, auction.starting_price) == ("Staff's name", Decimal("20.00"))
        assert [e.type for e in events_of(auction)] == ["auction_updated"]

    def test_a_form_drawn_before_the_start_and_a_bid_cannot_change_the_auction(self, seller, alice):
        auction = due_pending(item__owner=seller)
        browser = Client()
        browser.force_login(seller)
        drawn = as_drawn(browser.get(edit_url(auction)))

        def start_and_bid() -> None:
            assert auction_start(auction_id=auction.id)

        for work in (
            start_and_bid,
            lambda: bid_place(auction_id=auction.id, bidder=alice, amount="10"),
        ):
            worker = Worker(work)
            worker.start()
            worker.finish()
            assert worker.error is None

        response = browser.post(
            edit_url(auction), {**drawn, "item_name": "Renamed", "starting_price": "99"}
        )

        assert response.status_code == 302
        assert messages_of(response) == ["This auction has started: it can no longer be edited."]
        auction.refresh_from_db()
        assert (auction.item.name, auction.starting_price) == ("Lamp", Decimal("10.00"))
        assert (auction.current_price, auction.highest_bidder) == (Decimal("10.00"), alice)
        assert [e.type for e in events_of(auction)] == ["auction_started", "bid_placed"]

    def test_an_edit_holding_the_row_makes_the_start_wait_and_announce_it(self):
        auction = due_pending()
        editor = Worker(edit(auction), hold=True)
        editor.start()
        assert editor.worked.wait(MAX_WAIT_SECONDS)
        starter = Worker(start(auction))
        starter.start()
        wait_until_someone_waits_for_a_lock()
        assert not starter.worked.is_set()  # it is waiting for the edit's row lock

        editor.finish()
        starter.finish()

        assert editor.error is None and starter.error is None
        assert starter.result is True
        assert assert_consistent(auction) == "edited first"

    def test_a_start_holding_the_row_makes_the_edit_wait_and_refuses_it(self):
        auction = due_pending()
        starter = Worker(start(auction), hold=True)
        starter.start()
        assert starter.worked.wait(MAX_WAIT_SECONDS)
        editor = Worker(edit(auction))
        editor.start()
        wait_until_someone_waits_for_a_lock()
        assert not editor.worked.is_set()

        starter.finish()
        editor.finish()

        assert starter.result is True
        assert isinstance(editor.error, DomainError)
        assert editor.error.code == Code.NOT_EDITABLE
        assert assert_consistent(auction) == "started first"

    def test_an_edit_racing_the_start_ends_consistent_either_way(self):
        outcomes = []
        for _ in range(RACE_ROUNDS):
            auction = due_pending()
            gate = threading.Barrier(2)

            def after_gate(work: Callable[[], Any], gate=gate) -> Callable[[], Any]:
                def run() -> Any:
                    gate.wait(MAX_WAIT_SECONDS)
                    return work()

                return run

            editor = Worker(after_gate(edit(auction)))
            starter = Worker(after_gate(start(auction)))
            editor.start()
            starter.start()
            editor.finish()
            starter.finish()

            outcome = assert_consistent(auction)
            outcomes.append(outcome)
            assert starter.result is True
            if outcome == "edited first":
                assert editor.error is None
            else:
                assert editor.error is not None and editor.error.code == Code.NOT_EDITABLE
        print(f"\nedit vs start, {RACE_ROUNDS} rounds: {Counter(outcomes)}")


@pytest.mark.django_db
class TestServiceRefusals:
    def test_a_user_who_is_not_staff_and_not_the_seller_cannot_edit_by_service(self, pending):
        with pytest.raises(DomainError) as refused:
            auction_update(
                auction_id=pending.id, actor=UserFactory(), version=0, changes={"item_name": "X"}
            )
        assert refused.value.code == Code.PERMISSION_DENIED

    def test_unknown_fields_are_refused_by_the_service(self, pending, seller):
        with pytest.raises(DomainError) as refused:
            auction_update(
                auction_id=pending.id, actor=seller, version=0, changes={"status": "ended"}
            )
        assert refused.value.code == Code.VALIDATION_ERROR
        pending.refresh_from_db()
        assert (pending.status, pending.version) == (AuctionStatus.PENDING, 0)

    def test_the_service_refuses_an_edit_once_a_bid_has_landed(self, seller, alice):
        auction = due_pending(item__owner=seller)
        assert auction_start(auction_id=auction.id)
        bid_place(auction_id=auction.id, bidder=alice, amount="10")
        with pytest.raises(DomainError) as refused:
            auction_update(
                auction_id=auction.id, actor=seller, version=0, changes={"starting_price": "1"}
            )
        assert refused.value.code == Code.NOT_EDITABLE
        auction.refresh_from_db()
        assert auction.starting_price == Decimal("10.00")

    def test_photos_added_by_another_editor_refuse_a_stale_edit(self, seller):
        auction = pending_auction(seller)
        data = imaging.photo_bytes()
        item_images_add(
            item_id=auction.item_id,
            actor=seller,
            uploads=[Upload(file=io.BytesIO(data), size=len(data))],
        )
        with pytest.raises(DomainError) as refused:
            auction_update(
                auction_id=auction.id, actor=seller, version=0, changes={"item_name": "Stale"}
            )
        assert refused.value.code == Code.VERSION_CONFLICT
        auction.refresh_from_db()
        assert auction.item.name == "Brass lamp"
        assert auction.item.images.count() == 1
