"""Live viewer counts across real daphne processes (spec §8): they converge after connects,
disconnects and unsubscribes, and a killed process's connections stop counting."""

import asyncio
import itertools
import json
import os
import signal
import time
import urllib.request
from typing import Any

import pytest

from tests.e2e.conftest import (
    WsClient,
    auction_open,
    clients_close,
    users_with_tokens,
    wait_for,
)
from tests.servers import Server, spawn_daphne

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# The servers run the default settings: a tick a second, a heartbeat TTL of 3 seconds.
CONVERGE_TIMEOUT = 10.0
# After a kill: the TTL, a tick, and room for a loaded machine.
DEATH_TIMEOUT = 12.0


def viewers_seen(client: WsClient, auction_id: str) -> list[dict[str, Any]]:
    return [
        message
        for message in client.log
        if message.get("type") == "viewers" and message.get("auction_id") == auction_id
    ]


def count_known(client: WsClient, auction_id: str) -> int | None:
    """The count the client last learned: from its snapshot or a `viewers` message."""
    for message in reversed(client.log):
        if message.get("auction_id") != auction_id:
            continue
        if message.get("type") == "viewers":
            return int(message["count"])
        if message.get("type") == "subscribed":
            return int(message["data"]["viewers"])
    return None


async def all_know(clients: list[WsClient], auction_id: str, count: int) -> None:
    converged = await wait_for(
        lambda: all(count_known(client, auction_id) == count for client in clients),
        timeout=CONVERGE_TIMEOUT,
    )
    assert converged, [(client.label, count_known(client, auction_id)) for client in clients]


def http_viewers(server: Server, token: str, auction_id: str) -> Any:
    request = urllib.request.Request(
        f"{server.url}/api/auctions/{auction_id}/", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)["viewers"]


async def http_says(server: Server, token: str, auction_id: str, count: int) -> None:
    deadline = time.monotonic() + CONVERGE_TIMEOUT
    while (seen := await asyncio.to_thread(http_viewers, server, token, auction_id)) != count:
        assert time.monotonic() < deadline, f"{server.name} says {seen}, not {count}"
        await asyncio.sleep(0.1)


def check_once_a_second(clients: list[WsClient], auction_id: str) -> None:
    """Consecutive counts a connection got are a tick apart (by the server's timestamps)."""
    for client in clients:
        stamps = [message["timestamp"] for message in viewers_seen(client, auction_id)]
        gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
        assert all(gap >= 0.9 for gap in gaps), (client.label, gaps)


async def test_counts_converge_across_two_instances(daphnes):
    a, b = daphnes
    seller, *people = await users_with_tokens(8)
    auction_id = await auction_open(seller[0])
    tokens = [token for _, token in people]
    clients = [
        await WsClient.open((a, b)[i % 2], token, label=f"v{i}")
        for i, token in enumerate(tokens[:6])
    ]
    snapshots = [(await client.subscribe(auction_id))["data"]["viewers"] for client in clients]
    # A join is reported before its snapshot is sent: each counts everyone before it.
    assert snapshots == [1, 2, 3, 4, 5, 6]
    await all_know(clients, auction_id, 6)
    for server in daphnes:
        await http_says(server, tokens[0], auction_id, 6)

    # One disconnects from each instance.
    leaving = [clients[0], clients[1]]
    await clients_close(leaving)
    staying = clients[2:]
    await all_know(staying, auction_id, 4)

    # One unsubscribes: it is counted no more and hears no more counts.
    quitter = staying.pop(0)
    reply = await quitter.request({"type": "unsubscribe", "auction_id": auction_id})
    assert reply["type"] == "unsubscribed"
    await all_know(staying, auction_id, 3)

    # A newcomer's snapshot counts itself and everyone on both instances.
    newcomer = await WsClient.open(b, tokens[6], label="new")
    assert (await newcomer.subscribe(auction_id))["data"]["viewers"] == 4
    await all_know([*staying, newcomer], auction_id, 4)
    for server in daphnes:
        await http_says(server, tokens[0], auction_id, 4)

    after_unsubscribe = quitter.log[quitter.log.index(reply) + 1 :]
    assert not [m for m in after_unsubscribe if m.get("type") == "viewers"], after_unsubscribe
    check_once_a_second([*clients, newcomer], auction_id)
    assert (await newcomer.request({"type": "ping"}))["type"] == "pong"
    await clients_close([*clients[2:], newcomer])


async def test_a_killed_instance_stops_counting_within_seconds(daphnes, server_env, tmp_path):
    survivor = daphnes[0]
    doomed = spawn_daphne("daphne-doomed", server_env, tmp_path)
    try:
        doomed.wait_serving()
        seller, *people = await users_with_tokens(5)
        auction_id = await auction_open(seller[0])
        tokens = [token for _, token in people]
        on_doomed = [
            await WsClient.open(doomed, token, label=f"d{i}") for i, token in enumerate(tokens[:2])
        ]
        on_survivor = [
            await WsClient.open(survivor, token, label=f"s{i}")
            for i, token in enumerate(tokens[2:])
        ]
        for client in on_doomed + on_survivor:
            await client.subscribe(auction_id)
        await all_know(on_doomed + on_survivor, auction_id, 4)

        os.killpg(doomed.process.pid, signal.SIGKILL)
        doomed.process.wait(timeout=10)
        killed_at = time.monotonic()
        dropped = await wait_for(
            lambda: all(count_known(client, auction_id) == 2 for client in on_survivor),
            timeout=DEATH_TIMEOUT,
        )
        print(
            f"\n[e2e viewers] the count dropped {time.monotonic() - killed_at:.1f}s after the kill"
        )
        assert dropped, [(client.label, count_known(client, auction_id)) for client in on_survivor]
        await http_says(survivor, tokens[0], auction_id, 2)
        check_once_a_second(on_survivor, auction_id)
        await clients_close(on_doomed + on_survivor)
    finally:
        doomed.stop()
