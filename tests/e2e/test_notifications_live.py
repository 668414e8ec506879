"""Notifications across two real daphne processes (spec §8): an outbid caused on one
instance reaches the outbid user's connections on both, once each; a reconnect with
`notifications` / `since_seq` replays what was missed, then live ones follow."""

import json
import urllib.request
from typing import Any

import pytest

from tests.e2e.conftest import WsClient, auction_open, users_with_tokens, wait_for
from tests.servers import Server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

TIMEOUT = 10.0


def notices(client: WsClient) -> list[dict[str, Any]]:
    return [message for message in client.log if message.get("type") == "notification"]


def notice_seqs(client: WsClient) -> list[int]:
    return [message["seq"] for message in notices(client)]


async def bid(client: WsClient, auction_id: str, amount: str) -> None:
    reply = await client.request({"type": "place_bid", "auction_id": auction_id, "amount": amount})
    assert reply["type"] == "bid_accepted", reply


def api_notifications(server: Server, token: str, since_seq: int) -> list[dict[str, Any]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/api/notifications/?since_seq={since_seq}",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["results"]


async def test_an_outbid_on_one_instance_reaches_the_users_connections_on_both_once(daphnes):
    a, b = daphnes
    (seller, _), (_, alice_token), (_, bob_token) = await users_with_tokens(3)
    auction_id = await auction_open(seller)
    alice_on_a = await WsClient.open(a, alice_token, label="alice-a")
    alice_on_b = await WsClient.open(b, alice_token, label="alice-b")
    bob_on_a = await WsClient.open(a, bob_token, label="bob-a")
    try:
        await bid(alice_on_a, auction_id, "10.00")
        await bid(bob_on_a, auction_id, "11.00")  # on instance A; Alice is outbid
        assert await wait_for(
            lambda: notice_seqs(alice_on_a) == [1] and notice_seqs(alice_on_b) == [1], TIMEOUT
        ), (notice_seqs(alice_on_a), notice_seqs(alice_on_b))
        (notice,) = notices(alice_on_b)
        assert (notice["kind"], notice["auction_id"]) == ("outbid", auction_id)
        assert notice["data"]["price"] == "11.00"
        # Bob led and still does: nothing for him. A last round trip lets repeats show up.
        for client in (alice_on_a, alice_on_b, bob_on_a):
            assert (await client.request({"type": "ping"}))["type"] == "pong"
        assert notice_seqs(alice_on_a) == notice_seqs(alice_on_b) == [1]
        assert notice_seqs(bob_on_a) == []
    finally:
        for client in (alice_on_a, alice_on_b, bob_on_a):
            await client.close()


async def test_a_reconnect_with_since_seq_replays_what_was_missed_then_goes_on_live(daphnes):
    a, b = daphnes
    (seller, _), (_, alice_token), (_, bob_token) = await users_with_tokens(3)
    auction_id = await auction_open(seller)
    alice = await WsClient.open(b, alice_token, label="alice-b")
    bob = await WsClient.open(a, bob_token, label="bob-a")
    try:
        await bid(alice, auction_id, "10.00")
        await bid(bob, auction_id, "11.00")
        assert await wait_for(lambda: notice_seqs(alice) == [1], TIMEOUT)
        await alice.close()
        # While that connection is away, Alice bids again from another one (on A) and is
        # outbid twice more.
        alice_elsewhere = await WsClient.open(a, alice_token, label="alice-a")
        for alices, bobs in (("12.00", "13.00"), ("14.00", "15.00")):
            await bid(alice_elsewhere, auction_id, alices)
            await bid(bob, auction_id, bobs)
        await alice_elsewhere.close()

        alice = await WsClient.open(b, alice_token, label="alice-b-again")
        await alice.connection.send(json.dumps({"type": "notifications", "since_seq": 1}))
        assert await wait_for(lambda: notice_seqs(alice) == [2, 3], TIMEOUT), notice_seqs(alice)
        await bid(alice, auction_id, "16.00")
        await bid(bob, auction_id, "17.00")
        assert await wait_for(lambda: notice_seqs(alice) == [2, 3, 4], TIMEOUT)
        assert (await alice.request({"type": "ping"}))["type"] == "pong"
        assert notice_seqs(alice) == [2, 3, 4]
        # The HTTP list says the same.
        listed = api_notifications(a, alice_token, since_seq=1)
        assert [n["seq"] for n in listed] == [2, 3, 4]
        assert all(n["kind"] == "outbid" for n in listed)
    finally:
        await alice.close()
        await bob.close()
