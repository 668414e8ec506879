"""The channel layer over two Redis servers (CHANNEL_REDIS_URLS, spec §10): auctions are
spread over both by the layer's hash, the publish path follows it, and every subscriber
gets every event once, in order, whichever instance bid and whichever it watches from."""

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis
from django.conf import settings

from realtime.internals import group_channel_name, shard_of
from realtime.publish import auction_group
from tests.e2e.conftest import WsClient, auction_open, two_daphnes, users_with_tokens, wait_for
from tests.servers import Server, free_port

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

AUCTIONS_PER_SHARD = 3
BIDS_PER_AUCTION = 4


@pytest.fixture
def second_redis(tmp_path) -> Iterator[str]:
    """Another Redis server of the test run's own, on a free port."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_timeout=2)
    try:
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def sharded_daphnes(server_env, second_redis, tmp_path) -> Iterator[tuple[Server, Server]]:
    urls = [settings.REDIS_URL, second_redis]
    env = {**server_env, "CHANNEL_REDIS_URLS": ",".join(urls)}
    with two_daphnes(env, tmp_path, ("shard-a", "shard-b")) as both:
        yield both


def channel_of(auction_id: str) -> str:
    return group_channel_name(settings.CHANNEL_LAYER_PREFIX, auction_group(auction_id))


async def test_auctions_spread_over_two_layer_servers_lose_nothing(sharded_daphnes, second_redis):
    a, b = sharded_daphnes
    (seller, _), (_, watcher_token), *bidders = await users_with_tokens(4)
    by_shard: dict[int, list[str]] = {0: [], 1: []}
    while min(len(ids) for ids in by_shard.values()) < AUCTIONS_PER_SHARD:
        auction_id = await auction_open(seller)
        by_shard[shard_of(channel_of(auction_id), 2)].append(auction_id)
    auctions = [auction_id for ids in by_shard.values() for auction_id in ids]

    watcher = await WsClient.open(a, watcher_token, label="watcher")
    for auction_id in auctions:
        await watcher.subscribe(auction_id)
    servers = [redis.Redis.from_url(url) for url in (settings.REDIS_URL, second_redis)]
    for shard, ids in by_shard.items():  # each auction's group lives on its own shard
        for auction_id in ids:
            subscribed = dict(servers[shard].pubsub_numsub(channel_of(auction_id)))
            assert subscribed[channel_of(auction_id).encode()] == 1
            other = dict(servers[1 - shard].pubsub_numsub(channel_of(auction_id)))
            assert other[channel_of(auction_id).encode()] == 0

    clients = [
        await WsClient.open(b, token, label=f"bidder-{n}") for n, (_, token) in enumerate(bidders)
    ]
    for round_ in range(BIDS_PER_AUCTION):
        client = clients[round_ % len(clients)]
        replies = await asyncio.gather(
            *(
                client.request(
                    {"type": "place_bid", "auction_id": auction_id, "amount": f"{11 + round_}.00"}
                )
                for auction_id in auctions
            )
        )
        assert all(reply["type"] == "bid_accepted" for reply in replies), replies

    expected = list(range(1, BIDS_PER_AUCTION + 1))
    assert await wait_for(
        lambda: all(watcher.seqs(auction_id) == expected for auction_id in auctions), 20
    ), {auction_id: watcher.seqs(auction_id) for auction_id in auctions}
    for client in [watcher, *clients]:
        await client.close()
