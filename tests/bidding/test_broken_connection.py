"""A pooled connection the server dropped (a PostgreSQL restart, a failover, an idle
timeout) costs the bid engine one more round trip, not the bidder an error (issue 14)."""

from decimal import Decimal

import psycopg
import pytest
from django.db import connection
from django.test import override_settings

from auctions.services import auction_create
from bidding.services import bid_place
from tests.factories import UserFactory
from tests.servers import database_url_for_servers

pytestmark = pytest.mark.django_db(transaction=True)


def drop_every_other_connection() -> int:
    """What a restart does to every pooled connection: the server ends them."""
    with psycopg.connect(database_url_for_servers(), autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


@pytest.fixture
def auction(monkeypatch):
    # Connections kept between batches, as in production (the tests' default closes them).
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)
    seller = UserFactory()
    made = auction_create(
        creator=seller, item_name="Lamp", starting_price=Decimal("10.00"), duration_seconds=600
    )
    yield made
    connection.close()  # this thread's connection was dropped too: the flush opens anew


@pytest.mark.parametrize("rate_limit", [0, 50], ids=["no rate limit", "rate limited"])
@pytest.mark.parametrize("request_id", [None, "once"], ids=["no request id", "request id"])
def test_a_bid_on_a_dropped_connection_is_decided_on_a_new_one(auction, rate_limit, request_id):
    first, second = UserFactory(), UserFactory()
    with override_settings(BID_RATE_LIMIT=rate_limit):
        bid_place(auction_id=auction.id, bidder=first, amount=Decimal("11.00"))  # engine warm
        assert drop_every_other_connection() >= 1
        accepted = bid_place(
            auction_id=auction.id, bidder=second, amount=Decimal("12.00"), request_id=request_id
        )
    assert (accepted.seq, accepted.amount) == (2, Decimal("12.00"))
