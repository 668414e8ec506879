"""Redis stopped while bids are accepted: PostgreSQL stays the source of truth, and once
Redis is back every subscriber still gets every event once, in order."""

import asyncio
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest
import websockets
from channels.db import database_sync_to_async

from auctions.models import Auction, AuctionEvent
from bidding.services import bid_place
from tests.e2e.conftest import (
    WsClient,
    auction_open,
    clients_close,
    delivery_problems,
    group_subscribers,
    nothing_else_arrives,
    specific_channels,
    stored_events,
    users_with_tokens,
    wait_for,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

OBSERVERS = 6
DELIVERY_TIMEOUT = 20.0
PUBLISH_FAILED = "event(s) failed; the sweep will retry"
OUTAGE_BIDS = 5
# Long enough for every Redis client to give up retrying and see the outage.
OUTAGE_SECONDS = 4.0


@database_sync_to_async
def bids_place(auction_id: str, bidders: list, count: int) -> list[float]:
    """`count` bids through the service, each by a bidder who is not the highest.

    Returns how long each took (s)."""
    took = []
    for _ in range(count):
        auction = Auction.objects.get(id=auction_id)
        bidder = next(b for b in bidders if b.id != auction.highest_bidder_id)
        started = time.monotonic()
        accepted = bid_place(
            auction_id=auction_id, bidder=bidder, amount=auction.current_price + Decimal(1)
        )
        took.append(time.monotonic() - started)
        assert accepted.seq > 0
    return took


@database_sync_to_async
def unpublished_count(auction_id: str) -> int:
    return AuctionEvent.objects.filter(auction_id=auction_id, published_at__isnull=True).count()


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


async def subscribed_observers(daphnes, auction_id: str, tokens: list[str]) -> list[WsClient]:
    observers = []
    for i, token in enumerate(tokens):
        observer = await WsClient.open(daphnes[i % 2], token, label=f"o{i}")
        await observer.subscribe(auction_id)
        observers.append(observer)
    return observers


async def all_delivered(observers: list[WsClient], auction_id: str, final: int) -> bool:
    return await wait_for(
        lambda: all(o.last_seq(auction_id) >= final for o in observers), DELIVERY_TIMEOUT
    )


async def outage(
    redis_server,
    auction_id: str,
    bidders: list,
    caplog,
    during: Callable[[], Awaitable[None]] | None = None,
) -> tuple[list[float], float]:
    """Stop Redis, place bids (all accepted, their publishing fails and is logged), run
    `during`, start Redis again. Returns how long each bid took and the outage (s)."""
    started = time.monotonic()
    redis_server.stop()
    took: list[float] = []
    with caplog.at_level(logging.WARNING, logger="realtime.publish"):
        for _ in range(OUTAGE_BIDS):
            took += await bids_place(auction_id, bidders, 1)
            await asyncio.sleep(OUTAGE_SECONDS / OUTAGE_BIDS)
    assert sum(PUBLISH_FAILED in r.getMessage() for r in caplog.records) == OUTAGE_BIDS
    if during is not None:
        await during()
    redis_server.start()
    return took, time.monotonic() - started


async def test_after_a_redis_restart_the_next_live_bid_brings_every_missed_event(
    daphnes, redis_server, caplog
):
    seller, *people = await users_with_tokens(3 + OBSERVERS + 1)
    auction_id = await auction_open(seller[0])
    bidders = [user for user, _ in people[:2]]
    tokens = [token for _, token in people[2:]]
    observers = await subscribed_observers(daphnes, auction_id, tokens[:OBSERVERS])
    await bids_place(auction_id, bidders, 3)
    assert await all_delivered(observers, auction_id, 3)
    dropped = observers.pop()
    probed: dict[str, object] = {}

    async def while_redis_is_down() -> None:
        # A client's connection drops; it will resume with since_seq.
        await dropped.close()
        for path in ("healthz", "readyz"):
            probed[path] = await asyncio.to_thread(
                http_status, f"http://127.0.0.1:{daphnes[0].port}/{path}"
            )
        try:
            newcomer = await WsClient.open(daphnes[1], tokens[-1], label="new", open_timeout=10)
        except websockets.InvalidStatus as refused:
            probed["handshake"] = refused.response.status_code
        else:
            probed["handshake"] = 101
            await newcomer.close()

    took, seconds = await outage(redis_server, auction_id, bidders, caplog, while_redis_is_down)
    # Both instances follow the auction again: their pub/sub connections resubscribed.
    resubscribed = await wait_for(lambda: group_subscribers(auction_id) == 2, DELIVERY_TIMEOUT)
    await bids_place(auction_id, bidders, 1)
    delivered = await all_delivered(observers, auction_id, 9)
    resumed = await WsClient.open(daphnes[0], tokens[OBSERVERS - 1], label="resumed")
    await resumed.subscribe(auction_id, since_seq=dropped.last_seq(auction_id))
    resumed.events[:0] = dropped.events
    fresh = await WsClient.open(daphnes[1], tokens[-1], label="fresh")
    await fresh.subscribe(auction_id, since_seq=0)
    clients = [*observers, resumed, fresh]
    await nothing_else_arrives(clients, auction_id)

    expected = await stored_events(auction_id)
    print(
        f"\n[e2e redis restart] outage {seconds:.1f}s; bids during it took at most "
        f"{max(took) * 1000:.0f}ms; while down: {probed}; group resubscribed on both "
        f"instances={resubscribed}; next live bid completed every observer={delivered}"
    )
    assert [seq for seq, _, _ in expected] == list(range(1, 11))  # 9, and the sentinel
    # Liveness holds while readiness reports Redis away. (A handshake meanwhile is refused
    # with a 500: the consumer cannot subscribe its channel; the spec says nothing.)
    assert (probed["healthz"], probed["readyz"]) == (200, 503)
    assert resubscribed
    problems = [p for client in clients for p in delivery_problems(client, auction_id, expected)]
    assert not problems, problems
    await clients_close(clients)


async def test_after_a_redis_restart_the_sweep_alone_brings_every_missed_event(
    daphnes, redis_server, celery_worker_beat, caplog
):
    seller, *people = await users_with_tokens(3 + OBSERVERS)
    auction_id = await auction_open(seller[0])
    bidders = [user for user, _ in people[:2]]
    observers = await subscribed_observers(daphnes, auction_id, [t for _, t in people[2:]])
    await bids_place(auction_id, bidders, 3)
    assert await all_delivered(observers, auction_id, 3)

    await outage(redis_server, auction_id, bidders, caplog)
    # No further bid: the worker and beat find their broker again, the sweep republishes
    # the auction's latest event, and each subscriber fills the gap before it.
    back = time.monotonic()
    delivered = await all_delivered(observers, auction_id, 8)
    waited = time.monotonic() - back
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while (unpublished := await unpublished_count(auction_id)) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    await nothing_else_arrives(observers, auction_id)

    expected = await stored_events(auction_id)
    print(
        f"\n[e2e redis restart, sweep only] every observer complete={delivered} "
        f"{waited:.1f}s after Redis was back; events left unmarked={unpublished}"
    )
    assert delivered
    assert unpublished == 0
    problems = [p for o in observers for p in delivery_problems(o, auction_id, expected)]
    assert not problems, problems
    await clients_close(observers)


# Not strict: when the leaver's UNSUBSCRIBE happens to go out before the layer's connection
# has noticed Redis is gone, nothing is left behind and the test passes (CI saw both).
@pytest.mark.xfail(
    strict=False,
    reason=(
        "channels_redis 4.3.0 pub/sub layer: an UNSUBSCRIBE that fails while Redis is down "
        "(RedisSingleShardConnection.unsubscribe) leaves the channel in redis-py's "
        "PubSub.channels, and redis-py resubscribes it on reconnect: subscriptions of "
        "connections that ended during the outage live on for the life of the process"
    ),
)
async def test_connections_that_end_during_a_redis_outage_leave_no_subscription_behind(
    daphnes, redis_server
):
    (seller, _), (_, token), (_, other_token) = await users_with_tokens(3)
    auction_id = await auction_open(seller)
    quiet_auction = await auction_open(seller)
    baseline = specific_channels()
    leaver = await WsClient.open(daphnes[0], token, label="leaver")
    await leaver.subscribe(auction_id)
    prober = await WsClient.open(daphnes[1], other_token, label="prober")
    assert group_subscribers(auction_id) == 1

    redis_server.stop()
    # The only subscriber of the auction goes away; another client subscribes meanwhile.
    await leaver.close()
    with pytest.raises(ConnectionError):
        await prober.request({"type": "subscribe", "auction_id": quiet_auction}, timeout=10)
    closed_with = prober.close_code
    await asyncio.sleep(1.0)  # Redis stays away a while
    redis_server.start()

    # New clients on both instances prove their pub/sub connections are back.
    for server in daphnes:
        witness = await WsClient.open(server, token, label="witness")
        assert (await witness.request({"type": "ping"}))["type"] == "pong"
        await witness.close()
    clean = await wait_for(
        lambda: (
            group_subscribers(auction_id) == 0
            and group_subscribers(quiet_auction) == 0
            and specific_channels() <= baseline
        ),
        timeout=5,
    )
    print(
        f"\n[e2e redis restart, leftovers] subscribe during the outage closed the connection "
        f"with {closed_with}; after it: group subscribers {group_subscribers(auction_id)}, "
        f"per-connection channels left {len(specific_channels() - baseline)}"
    )
    assert clean
