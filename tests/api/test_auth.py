"""Who may use the HTTP API: API tokens, the session (with CSRF), and nobody else."""

import pytest

from accounts.services import api_token_create, api_token_revoke
from bidding.models import Bid
from tests.api.conftest import ApiClient
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

# A CSRF secret as Django stores it in the cookie: 32 characters of [a-zA-Z0-9].
CSRF_SECRET = "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6"


def bids_url(auction) -> str:
    return f"/api/auctions/{auction.id}/bids/"


class TestUnauthenticated:
    @pytest.mark.parametrize(
        "path",
        [
            "/api/auctions/",
            "/api/auctions/{id}/",
            "/api/auctions/{id}/bids/",
            "/api/auctions/{id}/events/",
        ],
    )
    def test_reads_without_credentials_are_401(self, anonymous_api, auction, path):
        response = anonymous_api.get(path.format(id=auction.id))
        assert response.status_code == 401
        assert response.json() == {
            "code": "not_authenticated",
            "message": "Authentication required.",
        }
        assert response["WWW-Authenticate"].startswith("Bearer")

    @pytest.mark.parametrize(
        "path", ["/api/auctions/", "/api/auctions/{id}/bids/", "/api/auctions/{id}/cancel/"]
    )
    def test_writes_without_credentials_are_401(self, anonymous_api, auction, path):
        response = anonymous_api.post_json(path.format(id=auction.id), {"amount": "10"})
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"

    def test_unauthenticated_bid_creates_nothing(self, anonymous_api, auction):
        anonymous_api.post_json(bids_url(auction), {"amount": "10"})
        assert not Bid.objects.exists()


class TestBearerToken:
    def test_valid_token_authenticates_the_bid_as_its_user(self, auction, alice):
        _, token = api_token_create(user=alice)
        client = ApiClient(HTTP_AUTHORIZATION=f"Bearer {token}")
        response = client.post_json(bids_url(auction), {"amount": "10"})
        assert response.status_code == 201
        assert Bid.objects.get().bidder == alice

    def test_scheme_name_is_case_insensitive(self, auction, alice):
        _, token = api_token_create(user=alice)
        client = ApiClient(HTTP_AUTHORIZATION=f"bearer {token}")
        assert client.get("/api/auctions/").status_code == 200

    @pytest.mark.parametrize("token", ["not-a-token", "", "x" * 500])
    def test_unknown_token_is_401(self, auction, token):
        client = ApiClient(HTTP_AUTHORIZATION=f"Bearer {token}")
        response = client.get("/api/auctions/")
        assert response.status_code == 401
        assert response.json() == {
            "code": "not_authenticated",
            "message": "The API token is invalid or has been revoked.",
        }

    def test_revoked_token_is_401(self, alice):
        record, token = api_token_create(user=alice)
        api_token_revoke(user=alice, token_id=str(record.id))
        client = ApiClient(HTTP_AUTHORIZATION=f"Bearer {token}")
        assert client.get("/api/auctions/").status_code == 401

    def test_token_of_an_inactive_user_is_401(self):
        user = UserFactory(is_active=False)
        _, token = api_token_create(user=user)
        client = ApiClient(HTTP_AUTHORIZATION=f"Bearer {token}")
        assert client.get("/api/auctions/").status_code == 401

    def test_bad_token_is_401_even_with_a_logged_in_session(self, alice):
        client = ApiClient(HTTP_AUTHORIZATION="Bearer wrong")
        client.force_login(alice)
        assert client.get("/api/auctions/").status_code == 401

    def test_token_posts_need_no_csrf_token(self, auction, alice):
        _, token = api_token_create(user=alice)
        client = ApiClient(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Bearer {token}")
        response = client.post_json(bids_url(auction), {"amount": "10"})
        assert response.status_code == 201


class TestSession:
    def test_logged_in_session_can_read(self, alice, auction):
        client = ApiClient(enforce_csrf_checks=True)
        client.force_login(alice)
        response = client.get(f"/api/auctions/{auction.id}/")
        assert response.status_code == 200

    def test_session_post_without_csrf_token_is_403(self, alice, auction):
        client = ApiClient(enforce_csrf_checks=True)
        client.force_login(alice)
        response = client.post_json(bids_url(auction), {"amount": "10"})
        assert response.status_code == 403
        body = response.json()
        assert body["code"] == "permission_denied"
        assert body["message"].startswith("CSRF check failed")
        assert not Bid.objects.exists()

    def test_session_post_with_a_wrong_csrf_token_is_403(self, alice, auction):
        client = ApiClient(enforce_csrf_checks=True)
        client.force_login(alice)
        client.cookies["csrftoken"] = CSRF_SECRET
        response = client.post_json(bids_url(auction), {"amount": "10"}, HTTP_X_CSRFTOKEN="b" * 32)
        assert response.status_code == 403
        assert not Bid.objects.exists()

    def test_session_post_with_the_csrf_token_is_accepted(self, alice, auction):
        client = ApiClient(enforce_csrf_checks=True)
        client.force_login(alice)
        client.cookies["csrftoken"] = CSRF_SECRET
        response = client.post_json(
            bids_url(auction), {"amount": "10"}, HTTP_X_CSRFTOKEN=CSRF_SECRET
        )
        assert response.status_code == 201
        assert Bid.objects.get().bidder == alice

    def test_other_authorization_schemes_fall_back_to_the_session(self, alice):
        client = ApiClient(HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")
        client.force_login(alice)
        assert client.get("/api/auctions/").status_code == 200

    def test_without_a_session_a_post_is_401_not_a_csrf_failure(self, auction):
        client = ApiClient(enforce_csrf_checks=True)
        response = client.post_json(bids_url(auction), {"amount": "10"})
        assert response.status_code == 401
