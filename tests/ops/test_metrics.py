"""GET /metrics (spec §11): who may read it, and that it counts what the service does. The
test command runs every process in prometheus_client's multiprocess mode, as the quick start
does; tests/e2e/test_metrics.py reads one web process's view of another's."""

import pytest
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from auctions.errors import BidRejected
from bidding.services import batcher, bid_place
from tests.factories import AuctionFactory, UserFactory

METRIC_NAMES = (
    "auction_bids",
    "auction_bid_decision_seconds",
    "auction_events_published",
    "auction_delivery_lag_seconds",
    "auction_websocket_connections",
    "auction_subscriptions",
    "auction_notification_emails",
    "auction_schedule_lateness_seconds",
)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def scrape(client, **extra) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return samples(response.content.decode())


def test_a_loopback_client_reads_every_metric_the_spec_names(client):
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    text = response.content.decode()
    for name in METRIC_NAMES:
        assert f"# HELP {name}" in text, name


@pytest.mark.parametrize("address", ["10.1.2.3", "192.168.0.7", "2001:db8::1", ""])
def test_without_a_token_other_addresses_are_refused(client, address):
    assert client.get("/metrics", REMOTE_ADDR=address).status_code == 403


@override_settings(METRICS_TOKEN="s3cret-scrape-token")
def test_with_a_token_only_a_scrape_that_sends_it_is_answered(client):
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 401
    wrong = {"HTTP_AUTHORIZATION": "Bearer nope"}
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3", **wrong).status_code == 401
    right = {"HTTP_AUTHORIZATION": "Bearer s3cret-scrape-token"}
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3", **right).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_bids_are_counted_by_outcome_with_their_decision_time(client):
    auction = AuctionFactory()
    alice, bob = UserFactory(), UserFactory()
    accepted = ("auction_bids_total", (("outcome", "accepted"),))
    too_low = ("auction_bids_total", (("outcome", "bid_too_low"),))
    decided = ("auction_bid_decision_seconds_count", ())
    published = ("auction_events_published_total", (("stream", "event"),))
    before = scrape(client)

    bid_place(auction_id=auction.id, bidder=alice, amount=auction.starting_price)
    with pytest.raises(BidRejected):
        bid_place(auction_id=auction.id, bidder=bob, amount=auction.starting_price)
    batcher.wait_for_after()  # the events are published by the batch's after-commit thread

    after = scrape(client)
    assert after[accepted] - before.get(accepted, 0) == 1
    assert after[too_low] - before.get(too_low, 0) == 1
    assert after[decided] - before.get(decided, 0) == 2
    assert after[published] - before.get(published, 0) >= 1


def test_the_grafana_dashboard_reads_only_metrics_the_service_exports(client):
    import json
    import re
    from pathlib import Path

    dashboard = json.loads(
        (Path(__file__).resolve().parents[2] / "deploy" / "grafana-dashboard.json").read_text()
    )
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {
        re.sub(r"_(total|bucket|count|sum)$", "", m)
        for e in exprs
        for m in re.findall(r"auction_[a-z_]+", e)
    }
    assert used and used <= set(METRIC_NAMES), used - set(METRIC_NAMES)
    text = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    for expr_metric in {m for e in exprs for m in re.findall(r"auction_[a-z_]+", e)}:
        assert expr_metric in text, expr_metric
