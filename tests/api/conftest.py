"""Fixtures for the HTTP API: clients that authenticate with an API token."""

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from accounts.services import api_token_create


class ApiClient(Client):
    """A test client that sends JSON bodies as given (text) or encoded (anything else)."""

    def post_json(self, path: str, body: Any = None, **extra: Any):
        text = body if isinstance(body, str) else ("" if body is None else json.dumps(body))
        return self.post(path, text, content_type="application/json", **extra)


@pytest.fixture
def client_for(db) -> Callable[[User], ApiClient]:
    """A client that authenticates as `user` with a fresh API token."""

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
def bob_api(client_for, bob) -> ApiClient:
    return client_for(bob)


@pytest.fixture
def anonymous_api() -> ApiClient:
    return ApiClient()
