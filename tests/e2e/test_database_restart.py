"""PostgreSQL restarted under live connections (issue 14, spec §10): every request made
during the outage gets an answer clients can act on, never silence or a 500, and the
service recovers by itself, with nothing decided twice."""

import asyncio
import json
import time
import urllib.error
import urllib.request
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from auction_client.client import AuctionClient
from tests.e2e.conftest import WsClient, auction_open, users_with_tokens, wait_for
from tests.servers import database_url_for_servers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# The most a request may wait for its answer while the database is away (seconds).
ANSWER_WITHIN = 10.0


async def bid_with_id(client: WsClient, auction_id: str, amount: str, request_id: str) -> dict:
    """A place_bid with a request_id of ours (a retry sends the same one)."""
    future = asyncio.get_running_loop().create_future()
    client.replies[request_id] = future
    message = {"type": "place_bid", "auction_id": auction_id, "amount": amount}
    try:
        await client.connection.send(json.dumps({**message, "request_id": request_id}))
        return await asyncio.wait_for(future, 30)
    finally:
        del client.replies[request_id]


def http_json(url: str, token: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def bids_for(request_id: str) -> int:
    """Bids stored with this request_id, read on a connection of its own."""
    with psycopg.connect(database_url_for_servers()) as db:
        row = db.execute("SELECT count(*) FROM bidding_bid WHERE request_id = %s", [request_id])
        return int(row.fetchone()[0])


async def test_a_database_restart_is_answered_and_recovered_from(daphnes, postgres_server):
    people = await users_with_tokens(5)
    (seller, _), (_, alice_token), (_, bob_token), (_, carol_token), (_, dave_token) = people
    auction_id, dave_auction = await auction_open(seller), await auction_open(seller)
    # Dave uses the client library, which sends a bid again while it is `unavailable`.
    dave = AuctionClient(daphnes[0].ws_url, dave_token, request_timeout=60)
    await dave.connect()
    # Carol's bid leaves the instance's database connections open and in use.
    carol_ws = await WsClient.open(daphnes[0], carol_token, label="carol")
    warm = await bid_with_id(carol_ws, auction_id, "11.00", "warm-up")
    assert warm["type"] == "bid_accepted", warm
    alice_ws = await WsClient.open(daphnes[0], alice_token, label="alice")
    await alice_ws.subscribe(auction_id)

    postgres_server.stop()
    try:
        dave_bid = asyncio.create_task(dave.place_bid(dave_auction, "15.00"))
        started = time.monotonic()
        during = await bid_with_id(alice_ws, auction_id, "12.00", "during-the-outage")
        answered_in = time.monotonic() - started
        status, body, headers = await asyncio.to_thread(
            http_json, f"{daphnes[1].url}/api/auctions/{auction_id}/", bob_token
        )
        fresh = await WsClient.open(daphnes[1], bob_token, label="fresh")
        closed = await wait_for(lambda: fresh.close_code is not None, ANSWER_WITHIN)
        await asyncio.sleep(1.0)  # Dave's library meets `unavailable` and waits meanwhile
        assert not dave_bid.done()
    finally:
        postgres_server.start()

    # During: an answer within seconds that says "send it again", and the socket stays.
    assert during["type"] == "error", during
    assert (during["code"], during["request_id"]) == ("unavailable", "during-the-outage")
    assert answered_in < ANSWER_WITHIN
    assert alice_ws.close_code is None
    assert (status, body["code"], headers.get("Retry-After")) == (503, "unavailable", "1")
    assert closed and fresh.close_code == 4503  # come back later; not a 500, not 4401

    # After: the same request_id is decided, once, on the connection that stayed open.
    again = await bid_with_id(alice_ws, auction_id, "12.00", "during-the-outage")
    assert again["type"] == "bid_accepted", again
    assert await asyncio.to_thread(bids_for, "during-the-outage") == 1
    # The other instance's pooled connections were cut too: a bid there is decided at once
    # (a broken connection costs the engine one more round trip, not the client an error).
    async with AuctionClient(daphnes[1].ws_url, bob_token) as bob_client:
        await bob_client.subscribe(auction_id)
        result = await bob_client.place_bid(auction_id, "13.00")
        assert result.leading
    # The library's bid went again once the database was back, and was decided once.
    dave_result = await asyncio.wait_for(dave_bid, 60)
    assert dave_result.amount == Decimal("15.00")
    assert await asyncio.to_thread(bids_for, dave_result.request_id) == 1
    await dave.close()
    print(
        f"\n[e2e database restart] bid during the outage answered `unavailable` in "
        f"{answered_in * 1000:.0f} ms; HTTP 503; new handshake closed 4503; recovered alone"
    )
