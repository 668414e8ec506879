"""The HTTP API of the watchlist and notifications (spec §8): watching and unwatching, the
watchlist's order and pages, notifications after a seq, marking them read, who sees what."""

from datetime import timedelta
from uuid import uuid4

import pytest
from django.db import transaction
from django.utils import timezone

from auctions.models import Auction, AuctionStatus
from auctions.notices import notice_data
from bidding.services import bid_place
from notifications.models import Kind, Notification, Watch
from notifications.services import Notice, notices_record
from tests.api.conftest import ApiClient
from tests.factories import AuctionFactory

pytestmark = pytest.mark.django_db


def watch_url(auction) -> str:
    return f"/api/auctions/{auction.id}/watch/"


def notify(user, auction, kinds=(Kind.OUTBID,)) -> list[Notification]:
    """Record notifications for `user` as the domain does, in a transaction of their own."""
    data = notice_data(
        auction_id=auction.id, item_name=auction.item.name, price=auction.current_price
    )
    with transaction.atomic():
        return notices_record(
            [Notice(user.id, kind, auction.id, data) for kind in kinds],
            at=timezone.now(),
            auction_id=auction.id,
        )


def ids(body) -> list[str]:
    return [result["id"] for result in body["results"]]


class TestWatch:
    def test_put_watches_and_answers_204_with_no_body(self, alice_api, alice, auction):
        response = alice_api.put(watch_url(auction))
        assert response.status_code == 204
        assert response.content == b""
        assert Watch.objects.filter(user=alice, auction=auction).count() == 1

    def test_put_twice_watches_once(self, alice_api, alice, auction):
        assert alice_api.put(watch_url(auction)).status_code == 204
        assert alice_api.put(watch_url(auction)).status_code == 204
        assert Watch.objects.filter(user=alice, auction=auction).count() == 1

    def test_delete_stops_watching_and_is_idempotent(self, alice_api, alice, auction):
        alice_api.put(watch_url(auction))
        assert alice_api.delete(watch_url(auction)).status_code == 204
        assert not Watch.objects.filter(user=alice).exists()
        assert alice_api.delete(watch_url(auction)).status_code == 204

    def test_delete_leaves_other_users_watching(self, alice_api, bob_api, bob, auction):
        bob_api.put(watch_url(auction))
        alice_api.delete(watch_url(auction))
        assert Watch.objects.filter(user=bob, auction=auction).exists()

    @pytest.mark.parametrize("method", ["put", "delete"])
    @pytest.mark.parametrize("auction_id", [lambda: str(uuid4()), lambda: "not-a-uuid"])
    def test_an_unknown_auction_is_404(self, alice_api, method, auction_id):
        response = getattr(alice_api, method)(f"/api/auctions/{auction_id()}/watch/")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
        assert not Watch.objects.exists()

    @pytest.mark.parametrize("method", ["put", "delete"])
    def test_without_credentials_is_401(self, anonymous_api, auction, method):
        response = getattr(anonymous_api, method)(watch_url(auction))
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"
        assert not Watch.objects.exists()

    def test_a_session_put_needs_the_csrf_token(self, alice, auction):
        client = ApiClient(enforce_csrf_checks=True)
        client.force_login(alice)
        response = client.put(watch_url(auction))
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
        assert not Watch.objects.exists()

    def test_bidding_puts_the_auction_on_the_watchlist(self, alice_api, alice, auction):
        alice_api.post_json(f"/api/auctions/{auction.id}/bids/", {"amount": "10"})
        assert ids(alice_api.get("/api/watchlist/").json()) == [str(auction.id)]


class TestWatchlist:
    def test_open_auctions_come_first_ending_soonest_then_the_rest_latest_first(
        self, alice_api, alice, seller
    ):
        now = timezone.now()
        later = AuctionFactory(item__owner=seller, end_time=now + timedelta(hours=5))
        sooner = AuctionFactory(item__owner=seller, end_time=now + timedelta(hours=1))
        pending = AuctionFactory(
            item__owner=seller,
            status=AuctionStatus.PENDING,
            start_time=now + timedelta(hours=1),
            end_time=now + timedelta(hours=3),
        )
        ended_long_ago = AuctionFactory(
            item__owner=seller,
            status=AuctionStatus.ENDED,
            start_time=now - timedelta(days=3),
            end_time=now - timedelta(days=2),
            ended_at=now - timedelta(days=2),
        )
        ended_recently = AuctionFactory(
            item__owner=seller,
            status=AuctionStatus.ENDED,
            start_time=now - timedelta(days=3),
            end_time=now - timedelta(hours=3),
            ended_at=now - timedelta(hours=3),
        )
        AuctionFactory(item__owner=seller)  # not watched
        for auction in (ended_long_ago, later, ended_recently, pending, sooner):
            assert alice_api.put(watch_url(auction)).status_code == 204
        body = alice_api.get("/api/watchlist/").json()
        assert body["count"] == 5
        assert ids(body) == [
            str(a.id) for a in (sooner, pending, later, ended_recently, ended_long_ago)
        ]

    def test_results_are_auction_snapshots(self, alice_api, auction):
        alice_api.put(watch_url(auction))
        [result] = alice_api.get("/api/watchlist/").json()["results"]
        snapshot = alice_api.get(f"/api/auctions/{auction.id}/").json()
        snapshot.pop("viewers")
        assert result == snapshot

    def test_it_is_paginated_like_the_auction_list(self, alice_api, seller):
        now = timezone.now()
        auctions = [
            AuctionFactory(item__owner=seller, end_time=now + timedelta(hours=hours))
            for hours in (1, 2, 3)
        ]
        for auction in auctions:
            alice_api.put(watch_url(auction))
        first = alice_api.get("/api/watchlist/?limit=2").json()
        assert first["count"] == 3
        assert ids(first) == [str(a.id) for a in auctions[:2]]
        assert first["next"].startswith("http://testserver/api/watchlist/?")
        assert "offset=2" in first["next"] and "limit=2" in first["next"]
        second = alice_api.get(first["next"]).json()
        assert ids(second) == [str(auctions[2].id)]
        assert second["next"] is None

    def test_each_user_sees_only_their_own_watchlist(self, alice_api, bob_api, auction):
        alice_api.put(watch_url(auction))
        assert bob_api.get("/api/watchlist/").json() == {"count": 0, "next": None, "results": []}

    @pytest.mark.parametrize("limit", ["0", "501", "x"])
    def test_a_bad_limit_is_400(self, alice_api, limit):
        response = alice_api.get(f"/api/watchlist/?limit={limit}")
        assert response.status_code == 400
        assert response.json()["code"] == "validation_error"

    def test_without_credentials_is_401(self, anonymous_api):
        response = anonymous_api.get("/api/watchlist/")
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"


class TestNotifications:
    def test_an_outbid_appears_with_every_field(self, alice_api, bob_api, alice, auction):
        alice_api.post_json(f"/api/auctions/{auction.id}/bids/", {"amount": "10"})
        bob_api.post_json(f"/api/auctions/{auction.id}/bids/", {"amount": "11"})
        body = alice_api.get("/api/notifications/").json()
        stored = Notification.objects.get(user=alice)
        assert body == {
            "count": 1,
            "next": None,
            "results": [
                {
                    "seq": 1,
                    "kind": "outbid",
                    "auction_id": str(auction.id),
                    "created_at": stored.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "data": {
                        "item_name": auction.item.name,
                        "price": "11.00",
                        "url": f"/auctions/{auction.id}/",
                        "min_next_bid": "12.00",
                    },
                    "read": False,
                }
            ],
        }

    def test_since_seq_gives_those_after_it_in_seq_order(self, alice_api, alice, auction):
        notify(alice, auction, [Kind.OUTBID, Kind.ENDING_SOON, Kind.LOST, Kind.OUTBID])
        body = alice_api.get("/api/notifications/?since_seq=2").json()
        assert [(r["seq"], r["kind"]) for r in body["results"]] == [(3, "lost"), (4, "outbid")]
        assert body["count"] == 2
        assert alice_api.get("/api/notifications/?since_seq=4").json()["results"] == []
        assert alice_api.get("/api/notifications/?since_seq=99").json() == {
            "count": 0,
            "next": None,
            "results": [],
        }

    def test_a_page_at_a_time_with_limit_then_next_or_the_last_seq(self, alice_api, alice, auction):
        notify(alice, auction, [Kind.OUTBID] * 5)
        first = alice_api.get("/api/notifications/?limit=2").json()
        assert [r["seq"] for r in first["results"]] == [1, 2]
        assert first["count"] == 5
        # Following `next`…
        second = alice_api.get(first["next"]).json()
        assert [r["seq"] for r in second["results"]] == [3, 4]
        third = alice_api.get(second["next"]).json()
        assert [r["seq"] for r in third["results"]] == [5]
        assert third["next"] is None
        # …or asking again after the last seq seen.
        after = alice_api.get("/api/notifications/?since_seq=2&limit=2").json()
        assert [r["seq"] for r in after["results"]] == [3, 4]
        assert after["count"] == 3

    def test_the_default_page_is_50(self, alice_api, alice, auction):
        notify(alice, auction, [Kind.OUTBID] * 51)
        body = alice_api.get("/api/notifications/").json()
        assert len(body["results"]) == 50
        assert body["count"] == 51
        assert "offset=50" in body["next"]

    @pytest.mark.parametrize(
        "query", ["since_seq=-1", "since_seq=abc", "since_seq=1.5", "since_seq=", "limit=0"]
    )
    def test_a_bad_query_is_400_in_the_error_shape(self, alice_api, query):
        response = alice_api.get(f"/api/notifications/?{query}")
        assert response.status_code == 400
        body = response.json()
        assert body["code"] == "validation_error"
        assert set(body) == {"code", "message", "data"}
        assert body["message"].split(":")[0] in {"since_seq", "limit"}

    def test_another_users_notifications_are_never_visible(self, alice_api, bob, auction):
        notify(bob, auction, [Kind.OUTBID, Kind.WON])
        assert alice_api.get("/api/notifications/").json() == {
            "count": 0,
            "next": None,
            "results": [],
        }
        # Nor does marking read reach them.
        alice_api.post_json("/api/notifications/read/")
        assert Notification.objects.filter(user=bob, read_at__isnull=True).count() == 2

    def test_each_user_has_their_own_seqs(self, alice_api, bob_api, alice, bob, auction):
        notify(bob, auction, [Kind.OUTBID])
        notify(alice, auction, [Kind.WON])
        assert [r["seq"] for r in alice_api.get("/api/notifications/").json()["results"]] == [1]
        assert [r["kind"] for r in bob_api.get("/api/notifications/").json()["results"]] == [
            "outbid"
        ]

    def test_without_credentials_is_401(self, anonymous_api):
        response = anonymous_api.get("/api/notifications/")
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"
        assert anonymous_api.post_json("/api/notifications/read/").status_code == 401


class TestMarkRead:
    def test_all_are_marked_read(self, alice_api, alice, auction):
        notify(alice, auction, [Kind.OUTBID] * 3)
        response = alice_api.post_json("/api/notifications/read/")
        assert response.status_code == 200
        assert response.json() == {"marked": 3, "unread": 0}
        results = alice_api.get("/api/notifications/").json()["results"]
        assert [r["read"] for r in results] == [True, True, True]
        assert alice_api.post_json("/api/notifications/read/").json() == {"marked": 0, "unread": 0}

    def test_upto_seq_marks_those_up_to_it(self, alice_api, alice, auction):
        notify(alice, auction, [Kind.OUTBID] * 3)
        response = alice_api.post_json("/api/notifications/read/", {"upto_seq": 2})
        assert response.json() == {"marked": 2, "unread": 1}
        results = alice_api.get("/api/notifications/").json()["results"]
        assert [r["read"] for r in results] == [True, True, False]

    @pytest.mark.parametrize("upto", ["2", -1, 1.5, [1]])
    def test_a_bad_upto_seq_is_422(self, alice_api, alice, auction, upto):
        notify(alice, auction, [Kind.OUTBID])
        response = alice_api.post_json("/api/notifications/read/", {"upto_seq": upto})
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"
        assert Notification.objects.get(user=alice).read_at is None


def test_closing_an_auction_is_listed_for_the_winner_and_the_seller(
    alice_api, seller_api, alice, auction
):
    from auctions.services import auction_close

    bid_place(auction_id=auction.id, bidder=alice, amount="10")
    Auction.objects.filter(id=auction.id).update(end_time=timezone.now())
    auction_close(auction_id=auction.id)
    assert [r["kind"] for r in alice_api.get("/api/notifications/").json()["results"]] == ["won"]
    [sold] = seller_api.get("/api/notifications/").json()["results"]
    assert (sold["kind"], sold["data"]["price"]) == ("sold", "10.00")
