"""The production profile (spec §6, §11): `check --deploy` clean behind a TLS proxy, a
content security policy on the pages, login throttling in (real) Redis, and static files
that work before `collectstatic` has run."""

import secrets
import uuid

import pytest
from django.test import override_settings

from auction_site.static_storage import ManifestOrPlainStaticFilesStorage
from tests.factories import UserFactory
from tests.ops.conftest import MANAGE, clean_environment, run

PASSWORD = "right-horse-battery-staple"


def production_env(**extra: str) -> dict[str, str]:
    return clean_environment(
        DJANGO_SETTINGS_MODULE="auction_site.settings.production",
        SECRET_KEY=secrets.token_urlsafe(50),
        DEBUG="0",
        ALLOWED_HOSTS="auctions.example.com",
        DATABASE_URL="postgres://nobody:nothing@127.0.0.1:1/none",
        REDIS_URL="redis://127.0.0.1:1/0",
        **extra,
    )


def test_check_deploy_is_clean_behind_a_tls_proxy():
    result = run(
        [*MANAGE, "check", "--deploy", "--fail-level", "WARNING"],
        production_env(BEHIND_TLS_PROXY="1"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_says_what_is_missing_without_the_proxy_setting():
    result = run([*MANAGE, "check", "--deploy", "--fail-level", "WARNING"], production_env())
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stdout + result.stderr


@pytest.mark.django_db
def test_pages_carry_a_content_security_policy_that_allows_their_own_socket(client):
    response = client.get("/")
    policy = response.headers["Content-Security-Policy"]
    directives = dict(
        (part.split()[0], part.split()[1:]) for part in policy.split(";") if part.strip()
    )
    assert directives["script-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "ws://testserver" in directives["connect-src"]
    assert "'unsafe-inline'" not in policy


# Login throttling, counted in the test Redis


@pytest.fixture
def person(db):
    # A fresh username per test: the failure counts live in Redis, not in the database.
    return UserFactory(username=f"throttle-{uuid.uuid4().hex[:8]}", password=PASSWORD)


def log_in(client, username: str, password: str, address: str = "10.0.0.1"):
    return client.post(
        "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address
    )


@pytest.mark.django_db
@override_settings(LOGIN_FAILURE_LIMIT=3, LOGIN_FAILURE_WINDOW_SECONDS=60)
def test_after_the_limit_of_failures_even_the_right_password_is_refused_for_a_while(client, person):
    for _ in range(3):
        assert log_in(client, person.username, "wrong").status_code == 200  # the form again
    refused = log_in(client, person.username, PASSWORD)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert "Too many failed attempts" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    # The same answer for a username nobody has, once it has failed as often.
    for _ in range(3):
        log_in(client, "nobody-at-all-" + person.username, "wrong")
    assert log_in(client, "nobody-at-all-" + person.username, "x").status_code == 429


@pytest.mark.django_db
@override_settings(LOGIN_FAILURE_LIMIT=3, LOGIN_FAILURE_WINDOW_SECONDS=60)
def test_the_limit_is_per_username_and_address_and_a_success_resets_it(client, person):
    for _ in range(2):
        log_in(client, person.username, "wrong")
    assert log_in(client, person.username, PASSWORD).status_code == 302  # still allowed
    client.logout()
    for _ in range(3):
        log_in(client, person.username, "wrong")  # counted from zero again: now at the limit
    assert log_in(client, person.username, PASSWORD).status_code == 429
    # Another address is not held back by these failures.
    assert log_in(client, person.username, PASSWORD, address="10.0.0.2").status_code == 302


@pytest.mark.django_db
@override_settings(LOGIN_FAILURE_LIMIT=0)
def test_a_limit_of_zero_turns_it_off(client, person):
    for _ in range(10):
        log_in(client, person.username, "wrong")
    assert log_in(client, person.username, PASSWORD).status_code == 302


# Static files before collectstatic


def test_a_name_missing_from_the_manifest_keeps_its_plain_url(tmp_path, caplog):
    storage = ManifestOrPlainStaticFilesStorage(location=str(tmp_path), base_url="/static/")
    (tmp_path / "staticfiles.json").write_text('{"paths": {}, "version": "1.1"}')
    assert storage.url("css/site.css") == "/static/css/site.css"
    assert "collectstatic" in caplog.text
