"""Sign up, log in, log out and API tokens (created, listed, revoked; shown once)."""

import pytest
from django.contrib.messages import get_messages

from accounts.models import ApiToken, User
from accounts.services import api_token_create, api_token_user

pytestmark = pytest.mark.django_db


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_signup_creates_the_user_and_logs_them_in(client):
    response = client.post(
        "/accounts/signup/",
        {
            "username": "carol",
            "email": "carol@example.com",
            "password1": "a-long-pass-phrase",
            "password2": "a-long-pass-phrase",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert messages_of(response) == ["Welcome, carol! Your account is ready."]
    user = User.objects.get(username="carol")
    assert user.check_password("a-long-pass-phrase")
    assert client.get("/").context["user"] == user


def test_signup_shows_why_it_failed(client, alice):
    response = client.post(
        "/accounts/signup/",
        {"username": "alice", "password1": "short", "password2": "other"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "A user with that username already exists." in html
    assert "The two password fields didn\u2019t match." in html


def test_login_page_has_username_and_password(client, db):
    html = client.get("/accounts/login/").content.decode()
    assert 'name="username"' in html and 'name="password"' in html


def test_login_logs_in_and_greets(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": "pass-word-123"})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert messages_of(response) == ["Welcome back, alice."]


def test_login_goes_back_to_next(client, alice, auction):
    response = client.post(
        "/accounts/login/",
        {"username": "alice", "password": "pass-word-123", "next": f"/auctions/{auction.id}/"},
    )
    assert response["Location"] == f"/auctions/{auction.id}/"


def test_wrong_password_is_refused_with_a_message(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password." in response.content.decode()


def test_logout_is_a_post_and_says_so(alice_client):
    response = alice_client.post("/accounts/logout/")
    assert response.status_code == 302
    assert messages_of(response) == ["You are logged out."]
    assert not alice_client.get("/").context["user"].is_authenticated
    assert alice_client.get("/accounts/logout/").status_code == 405


def test_nav_shows_account_links_by_login_state(client, alice):
    anonymous = client.get("/").content.decode()
    assert "Log in" in anonymous and "Sign up" in anonymous and "My bids" not in anonymous
    client.force_login(alice)
    logged_in = client.get("/").content.decode()
    assert "My bids" in logged_in and "Log out" in logged_in and "API tokens" in logged_in


def test_token_is_created_and_shown_exactly_once(alice_client, alice):
    response = alice_client.post("/accounts/tokens/new/", {"name": "bot"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/tokens/"

    first = alice_client.get("/accounts/tokens/")
    token = first.context["new_token"]["token"]
    assert api_token_user(token=token) == alice
    assert token in first.content.decode()
    assert first["Cache-Control"] == "no-store"
    assert "Copy it now" in first.content.decode()

    second = alice_client.get("/accounts/tokens/")
    assert token not in second.content.decode()
    assert "bot" in second.content.decode()  # still listed, by name and prefix
    assert f"{token[:8]}…" in second.content.decode()


def test_token_list_shows_only_my_tokens(alice_client, alice, bob):
    api_token_create(user=alice, name="mine")
    api_token_create(user=bob, name="not-mine")
    html = alice_client.get("/accounts/tokens/").content.decode()
    assert "mine" in html and "not-mine" not in html


def test_token_is_revoked(alice_client, alice):
    record, token = api_token_create(user=alice, name="old")
    response = alice_client.post(f"/accounts/tokens/{record.id}/revoke/")
    assert response.status_code == 302
    assert messages_of(response) == ["Token revoked. Clients using it are refused from now on."]
    assert api_token_user(token=token) is None


def test_someone_elses_token_cannot_be_revoked(alice_client, bob):
    record, _ = api_token_create(user=bob)
    response = alice_client.post(f"/accounts/tokens/{record.id}/revoke/")
    assert messages_of(response) == ["No such token (it may have been revoked already)."]
    assert ApiToken.objects.filter(id=record.id).exists()


def test_token_pages_need_login(client, db):
    assert client.get("/accounts/tokens/").status_code == 302
    assert client.post("/accounts/tokens/new/").status_code == 302


def test_api_and_admin_still_answer(client, db):
    assert client.get("/api/auctions/").status_code == 401  # the API answers, in JSON
    assert client.get("/admin/").status_code == 302
    assert client.get("/api/nothing-here").json()["code"] == "not_found"
