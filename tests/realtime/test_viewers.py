"""Live viewer counts (spec §8): in the snapshot, and as `viewers` messages when they change.

Against the real Redis: connections through the full ASGI stack (the consumer counts them
in the test loop's own Presence), and Presence objects with stand-in subscribers, each
standing for a web instance. A test asks for a fast tick (the test settings tick once an
hour); waits have timeouts, and rates are judged by counting ticks and messages.
"""

import asyncio
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import Client, override_settings

from infra.presence import INSTANCES_KEY, PresenceStore, viewers_count, viewers_key
from infra.redis import redis_client
from realtime.layers import HAND_OUT_SLICE
from realtime.viewers import Presence
from tests.realtime.conftest import (
    TIMEOUT,
    _closed_port,
    assert_alive,
    assert_quiet,
    disconnect,
    receive_json,
    request,
    subscribe,
)

pytestmark = pytest.mark.django_db(transaction=True)

INTERVAL = 0.1
TTL = 0.5


@pytest.fixture
def fast_ticks() -> Any:
    """The consumers' Presence ticks every INTERVAL (it is made at the first subscribe)."""
    with override_settings(VIEWERS_INTERVAL_SECONDS=INTERVAL, VIEWERS_TTL_SECONDS=TTL):
        yield


async def eventually(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        await asyncio.sleep(0.01)


def consumer_presence() -> Presence:
    """The Presence of the test's event loop, where the communicators run the consumers."""
    return Presence.current()


async def ticks_pass(presence: Presence, count: int) -> None:
    """Wait until `count` more ticks ran (each reports, then hands out)."""
    target = presence.ticks + count
    await eventually(lambda: presence.ticks >= target)


def check_viewers_message(message: dict[str, Any], auction_id: str) -> None:
    assert set(message) == {"type", "auction_id", "count", "timestamp"}, message
    assert message["type"] == "viewers" and message["auction_id"] == auction_id
    assert isinstance(message["count"], int) and isinstance(message["timestamp"], float)


async def counts_until(communicator: Any, auction_id: str, count: int) -> list[int]:
    """Read `viewers` messages (nothing else may come) until one says `count`; all counts."""
    seen: list[int] = []
    while not seen or seen[-1] != count:
        message = await receive_json(communicator)
        check_viewers_message(message, auction_id)
        seen.append(message["count"])
    return seen


class StandIn:
    """A subscriber as Presence sees one: it records every count it is sent."""

    def __init__(self) -> None:
        self.counts: list[int] = []
        self.known: int | None = None  # from its snapshot, then from messages

    async def join(self, presence: Presence, auction_id: str) -> int:
        self.known = await presence.join(auction_id, self)
        return self.known

    async def send_counted(self, text: str) -> None:
        message = json.loads(text)
        assert message["type"] == "viewers" and "seq" not in message
        self.counts.append(message["count"])
        self.known = message["count"]


@pytest.fixture
async def instances() -> AsyncIterator[Callable[..., Presence]]:
    """Make Presence objects standing for web instances on the test Redis; stopped after."""
    made: list[Presence] = []

    def make(interval: float = INTERVAL, ttl: float = TTL, **options: Any) -> Presence:
        presence = Presence(interval=interval, ttl=ttl, **options)
        made.append(presence)
        return presence

    yield make
    for presence in made:
        presence.stop()
        await presence.store.close()


# Through the WebSocket


async def test_the_snapshot_counts_every_subscriber_and_the_others_hear_of_each_change(
    fast_ticks, connect, alice_token, bob_token, carol_token, auction
):
    alice = await connect(alice_token)
    assert (await subscribe(alice, auction))["data"]["viewers"] == 1
    bob = await connect(bob_token)
    assert (await subscribe(bob, auction))["data"]["viewers"] == 2
    carol = await connect(carol_token)
    assert (await subscribe(carol, auction))["data"]["viewers"] == 3

    # alice may hear 2 first (ticks run while the others subscribe), but ends at 3.
    assert (await counts_until(alice, str(auction.id), 3))[-1] == 3
    assert (await counts_until(bob, str(auction.id), 3)) == [3]
    # carol's snapshot said 3 already: nothing changed for her.
    await ticks_pass(consumer_presence(), 2)
    await assert_alive(carol)


async def test_counts_fall_on_unsubscribe_and_on_disconnect(
    fast_ticks, connect, alice_token, bob_token, carol_token, auction
):
    alice, bob, carol = [await connect(token) for token in (alice_token, bob_token, carol_token)]
    for communicator in (alice, bob, carol):
        snapshot_count = (await subscribe(communicator, auction))["data"]["viewers"]
    assert snapshot_count == 3
    await counts_until(alice, str(auction.id), 3)
    await counts_until(bob, str(auction.id), 3)

    reply = await request(bob, {"type": "unsubscribe", "auction_id": str(auction.id)})
    assert reply["type"] == "unsubscribed"
    assert (await counts_until(alice, str(auction.id), 2)) == [2]

    await disconnect(carol)
    assert (await counts_until(alice, str(auction.id), 1)) == [1]
    # bob follows nothing now: no count reaches him.
    await ticks_pass(consumer_presence(), 2)
    await assert_alive(bob)


async def test_connections_are_counted_not_people_and_a_resubscribe_counts_once(
    fast_ticks, connect, alice_token, auction
):
    first = await connect(alice_token)
    second = await connect(alice_token)
    assert (await subscribe(first, auction))["data"]["viewers"] == 1
    assert (await subscribe(second, auction))["data"]["viewers"] == 2
    # Subscribing again to a followed auction: a fresh snapshot, the same count.
    assert (await subscribe(second, auction))["data"]["viewers"] == 2
    assert (await counts_until(first, str(auction.id), 2)) == [2]
    await ticks_pass(consumer_presence(), 2)
    await assert_alive(second)


async def test_a_connection_hears_at_most_once_a_tick_however_fast_others_come_and_go(
    fast_ticks, connect, alice_token, bob_token, auction
):
    auction_id = str(auction.id)
    watcher = await connect(alice_token)
    await subscribe(watcher, auction)
    presence = consumer_presence()
    ticks_before = presence.ticks

    for _ in range(12):  # each comes, subscribes and goes: a dozen changes of the count
        passer = await connect(bob_token)
        await subscribe(passer, auction)
        await disconnect(passer)
    await ticks_pass(presence, 2)  # the last change is handed out by now
    ticks_after = presence.ticks

    heard: list[dict[str, Any]] = []
    while not await watcher.receive_nothing(0.05):
        heard.append(await receive_json(watcher))
    for message in heard:
        check_viewers_message(message, auction_id)
    assert len(heard) <= ticks_after - ticks_before
    assert not heard or heard[-1]["count"] == 1
    # Consecutive messages say different counts: nothing is sent when nothing changed.
    assert all(a["count"] != b["count"] for a, b in itertools.pairwise(heard))


async def test_the_http_auction_resource_carries_the_count_of_every_instance(
    fast_ticks, connect, alice, alice_token, bob_token, auction, instances
):
    client = Client()
    await database_sync_to_async(client.force_login)(alice)
    get = database_sync_to_async(lambda: client.get(f"/api/auctions/{auction.id}/").json())

    assert (await get())["viewers"] == 0
    for token in (alice_token, bob_token):
        await subscribe(await connect(token), auction)
    # Another instance on the same Redis has a subscriber too.
    other = instances()
    await StandIn().join(other, str(auction.id))

    async def api_says(count: int) -> None:
        deadline = time.monotonic() + TIMEOUT
        while (body := await get())["viewers"] != count:
            assert time.monotonic() < deadline, body
            await asyncio.sleep(0.05)

    await api_says(3)
    other.stop()  # it dies: after its TTL it counts no more
    await api_says(2)


async def test_the_http_count_is_null_while_redis_is_away(alice, auction, redis_unreachable):
    client = Client()
    await database_sync_to_async(client.force_login)(alice)
    with redis_unreachable():
        body = (await database_sync_to_async(client.get)(f"/api/auctions/{auction.id}/")).json()
    assert body["id"] == str(auction.id) and body["viewers"] is None


async def test_an_unknown_auction_is_not_counted(fast_ticks, connect, alice_token):
    client = await connect(alice_token)
    reply = await request(
        client, {"type": "subscribe", "auction_id": "00000000-0000-0000-0000-000000000000"}
    )
    assert reply["code"] == "not_found"
    assert consumer_presence().auctions == {}
    await assert_quiet(client)


async def test_a_connection_that_ends_however_it_ends_is_not_counted(
    fast_ticks, connect, alice_token, bob_token, auction
):
    alice = await connect(alice_token)
    bob = await connect(bob_token)
    await subscribe(alice, auction)
    await subscribe(bob, auction)
    await counts_until(alice, str(auction.id), 2)
    # The application task is cancelled (what the server does when it drops a connection).
    bob.future.cancel()
    await asyncio.wait([bob.future])
    assert (await counts_until(alice, str(auction.id), 1)) == [1]
    followed = consumer_presence().auctions[str(auction.id)]
    assert len(followed.viewers) == 1


# Instances (Presence objects) on one Redis


async def test_two_instances_converge_on_one_count(instances, auction):
    auction_id = str(auction.id)
    first, second = instances(), instances()
    on_first = [StandIn() for _ in range(3)]
    on_second = [StandIn() for _ in range(2)]
    for viewer in on_first:
        await viewer.join(first, auction_id)
    for viewer in on_second:
        await viewer.join(second, auction_id)
    everyone = on_first + on_second
    await eventually(lambda: all(viewer.known == 5 for viewer in everyone))

    second.leave(auction_id, on_second[0])
    await eventually(
        lambda: all(viewer.known == 4 for viewer in everyone if viewer is not on_second[0])
    )
    for viewer in on_first:
        first.leave(auction_id, viewer)
    await eventually(lambda: on_second[1].known == 1)
    # The first instance reported its 0 and forgot the auction; its ticker stopped.
    await eventually(lambda: first.auctions == {} and first._ticker is None)
    assert await database_sync_to_async(viewers_count)(auction_id) == 1


async def test_a_first_subscriber_on_an_instance_gets_the_others_count_in_its_snapshot(
    instances, auction
):
    auction_id = str(auction.id)
    first, second = instances(), instances()
    for _ in range(4):
        await StandIn().join(first, auction_id)
    # Each join is reported before its snapshot goes out: no tick needs to run first.
    assert first.ticks == 0
    assert await StandIn().join(second, auction_id) == 5
    assert await StandIn().join(first, auction_id) == 6


async def test_an_instance_that_stops_reporting_stops_counting_after_its_ttl(instances, auction):
    auction_id = str(auction.id)
    doomed, survivor = instances(), instances()
    for _ in range(2):
        await StandIn().join(doomed, auction_id)
    watcher = StandIn()
    assert await watcher.join(survivor, auction_id) == 3

    doomed.stop()  # no more reports, nothing withdrawn: as if the process were killed
    await eventually(lambda: watcher.known == 1)
    # Its field is gone from Redis, not merely ignored.
    fields = await database_sync_to_async(redis_client().hkeys)(viewers_key(auction_id))
    assert fields == [survivor.instance_id.encode()]
    assert watcher.counts == [1]


async def test_one_redis_call_a_tick_and_one_message_per_change_at_thousands_of_subscribers(
    instances, auction
):
    class CountingStore(PresenceStore):
        def __init__(self) -> None:
            super().__init__()
            self.reports: list[dict[str, int]] = []

        async def report(
            self, instance_id: str, counts: dict[str, int], ttl_seconds: float
        ) -> dict[str, int]:
            self.reports.append(dict(counts))
            return await super().report(instance_id, counts, ttl_seconds)

    store = CountingStore()
    # An hour's interval: ticks run only when the test asks.
    presence = instances(store=store, interval=3600.0, ttl=5.0)
    auction_id, quiet_auction = str(auction.id), "quiet-auction"
    await StandIn().join(presence, quiet_auction)
    # A storm of subscribes: joins that arrive together share their report.
    viewers = [StandIn() for _ in range(3000)]
    await asyncio.gather(*(viewer.join(presence, auction_id) for viewer in viewers))
    assert len(store.reports) <= 3, [len(report) for report in store.reports]
    assert all(viewer.known == 3000 for viewer in viewers)

    store.reports.clear()
    await presence.tick()  # the snapshots were right: nothing to send
    for viewer in viewers[:500]:
        presence.leave(auction_id, viewer)
    await presence.tick()
    await presence.tick()  # nothing changed since: nothing is sent

    assert presence.ticks == 3
    assert [set(report) for report in store.reports] == [{auction_id, quiet_auction}] * 3
    assert [report[auction_id] for report in store.reports] == [3000, 2500, 2500]
    assert all(viewer.counts == [2500] for viewer in viewers[500:])
    assert all(viewer.counts == [] for viewer in viewers[:500])


async def test_a_hand_out_to_many_lets_the_loop_run_between_slices(instances, auction):
    presence = instances(interval=3600.0, ttl=5.0)
    auction_id = str(auction.id)
    viewers = [StandIn() for _ in range(HAND_OUT_SLICE * 20)]
    await asyncio.gather(*(viewer.join(presence, auction_id) for viewer in viewers))
    await StandIn().join(presence, auction_id)  # one more: everyone else is to be told

    told_while_running: list[int] = []
    stop = False

    async def other_work() -> None:
        while not stop:
            told_while_running.append(sum(1 for viewer in viewers if viewer.counts))
            await asyncio.sleep(0)

    other = asyncio.ensure_future(other_work())
    await asyncio.sleep(0)
    await presence.tick()
    stop = True
    await other
    told = sum(1 for viewer in viewers if viewer.counts == [len(viewers) + 1])
    assert told == len(viewers)
    assert any(0 < seen < told for seen in told_while_running), told_while_running[:5]


async def test_while_redis_is_away_counts_stay_as_known_and_nothing_breaks(
    instances, auction, caplog
):
    away = PresenceStore(f"redis://127.0.0.1:{_closed_port()}/0")
    presence = instances(store=away)
    auction_id = str(auction.id)
    first, second, third = StandIn(), StandIn(), StandIn()
    with caplog.at_level(logging.WARNING, logger="realtime.viewers"):
        assert await first.join(presence, auction_id) == 1
        assert await second.join(presence, auction_id) == 2
        await ticks_pass(presence, 3)
        assert first.known == 2
        presence.leave(auction_id, second)
        assert await third.join(presence, auction_id) == 2
        presence.leave(auction_id, third)
        await ticks_pass(presence, 3)
        assert first.known == 1
    warnings = [r for r in caplog.records if r.name == "realtime.viewers"]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]


async def test_nothing_is_left_in_redis_once_every_instance_is_gone(instances, auction):
    auction_id = str(auction.id)
    presence = instances()
    viewer = StandIn()
    await viewer.join(presence, auction_id)
    await ticks_pass(presence, 1)
    client = redis_client()
    assert await database_sync_to_async(client.exists)(viewers_key(auction_id)) == 1
    presence.stop()

    def nothing_left() -> bool:
        return not client.exists(viewers_key(auction_id)) and not client.zscore(
            INSTANCES_KEY, presence.instance_id
        )

    deadline = time.monotonic() + TIMEOUT
    while not await database_sync_to_async(nothing_left)():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
