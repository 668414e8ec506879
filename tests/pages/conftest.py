"""Page tests use Django's test client against the real PostgreSQL and Redis."""

import pytest


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client
