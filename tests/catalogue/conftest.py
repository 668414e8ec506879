"""Catalogue fixtures: a media folder of each test's own, API clients, a pending auction."""

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from accounts.services import api_token_create
from auctions.models import Auction, Category
from auctions.services import auction_create
from tests.api.conftest import ApiClient
from tests.factories import UserFactory


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    """Each test stores its photos in a folder of its own, so "nothing stored" is exact."""
    folder = tmp_path / "media"
    folder.mkdir()
    settings.MEDIA_ROOT = folder
    return folder


def stored_files(media: Path) -> list[str]:
    """Every file under the media folder, relative to it."""
    return sorted(str(path.relative_to(media)) for path in media.rglob("*") if path.is_file())


@pytest.fixture
def client_for(db) -> Callable[[User], ApiClient]:
    def make(user: User) -> ApiClient:
        _, token = api_token_create(user=user)
        return ApiClient(HTTP_AUTHORIZATION=f"Bearer {token}")

    return make


@pytest.fixture
def seller_api(client_for, seller) -> ApiClient:
    return client_for(seller)


@pytest.fixture
def alice_api(client_for, alice) -> ApiClient:
    return client_for(alice)


@pytest.fixture
def staff(db) -> User:
    return UserFactory(username="staffer", is_staff=True)


@pytest.fixture
def seller_client(seller) -> Client:
    browser = Client()
    browser.force_login(seller)
    return browser


@pytest.fixture
def lamps(db) -> Category:
    return Category.objects.create(name="Lamps", slug="lamps")


@pytest.fixture
def books(db) -> Category:
    return Category.objects.create(name="Books", slug="books")


def pending_auction(seller: User, **terms: object) -> Auction:
    """A pending auction by `seller`, through the service: starts in an hour, lasts one."""
    arguments: dict[str, object] = {
        "item_name": "Brass lamp",
        "item_description": "Polished, works.",
        "starting_price": "10.00",
        "start_time": timezone.now() + timedelta(hours=1),
        "duration_seconds": 3600,
        **terms,
    }
    return auction_create(creator=seller, **arguments)


@pytest.fixture
def pending(seller) -> Auction:
    return pending_auction(seller)


@pytest.fixture
def anonymous_api() -> ApiClient:
    return ApiClient()
