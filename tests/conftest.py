"""Shared fixtures. The test command starts a real PostgreSQL and Redis for them."""

import pytest

from tests.factories import AuctionFactory, UserFactory


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
