"""One machine's /metrics adds up all its processes (spec §11): connections opened on one
daphne process show in the other's scrape, and go when they close."""

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import WsClient, auction_open, clients_close, users_with_tokens, wait_for
from tests.servers import Server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def gauge(server: Server, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    raise AssertionError(f"{name} not in the scrape")


async def test_connections_on_one_process_show_in_the_others_scrape(daphnes):
    a, b = daphnes
    (seller, _), (_, token) = await users_with_tokens(2)
    auction_id = await auction_open(seller)
    connections_before = gauge(a, "auction_websocket_connections")
    subscriptions_before = gauge(a, "auction_subscriptions")
    clients = [await WsClient.open(b, token, label=f"on-b-{i}") for i in range(3)]
    for client in clients:
        await client.subscribe(auction_id)
    assert gauge(a, "auction_websocket_connections") == connections_before + 3
    assert gauge(a, "auction_subscriptions") == subscriptions_before + 3
    await clients_close(clients)
    assert await wait_for(
        lambda: gauge(a, "auction_websocket_connections") == connections_before, timeout=10
    )
    assert gauge(a, "auction_subscriptions") == subscriptions_before
