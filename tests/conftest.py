"""Shared fixtures. The test command starts a real PostgreSQL and Redis for them."""

import os

import pytest
from django.db import connection
from django.test import override_settings

from tests.factories import AuctionFactory, UserFactory


@pytest.fixture(scope="session", autouse=True)
def _media_root(tmp_path_factory):
    """Uploaded photos go to a folder of this run's own, for the servers it starts too."""
    media = tmp_path_factory.mktemp("media")
    os.environ["MEDIA_ROOT"] = str(media)
    with override_settings(MEDIA_ROOT=media):
        yield media


@pytest.fixture(scope="session", autouse=True)
def _no_session_outlives_the_test_database(django_db_setup, django_db_blocker):
    """Before the test database is dropped, end the sessions still open on it: worker
    threads' connections (Django keeps one per thread) and stopped servers' leftovers."""
    yield
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture
def seller(db):
    return UserFactory(username="seller")


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


@pytest.fixture
def bob(db):
    return UserFactory(username="bob")


@pytest.fixture
def auction(seller):
    """An active auction by `seller`: starting price 10.00, increment 1.00, ends in an hour."""
    return AuctionFactory(item__owner=seller)
