"""Liveness and readiness probes: /healthz never touches a backend, /readyz checks both."""

import time

import pytest
from django.db import connection
from django.test import Client, override_settings

# Nothing listens on port 1: connections are refused at once.
CLOSED_PORT = 1


def test_healthz_is_ok_without_touching_the_database(client: Client):
    # No django_db mark: pytest-django makes any database access here raise.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_needs_no_login_and_is_not_cached(client: Client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]


def test_healthz_accepts_only_safe_methods(client: Client):
    assert client.post("/healthz").status_code == 405


@pytest.mark.django_db
def test_readyz_is_ok_when_database_and_redis_answer(client: Client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


@pytest.mark.django_db
@override_settings(REDIS_URL=f"redis://127.0.0.1:{CLOSED_PORT}/0")
def test_readyz_is_503_naming_redis_when_redis_is_unreachable(client: Client):
    started = time.monotonic()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "redis": "unavailable"},
    }
    assert time.monotonic() - started < 5


@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_naming_the_database_when_it_is_unreachable(client: Client):
    port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = CLOSED_PORT
    try:
        response = client.get("/readyz")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = port
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "unavailable", "redis": "ok"},
    }
