"""Clients that misbehave (garbage, churn, never reading) while bids stream: the others
still get every event once and in order, and nothing is left behind when they are gone."""

import asyncio
import contextlib
import json
import random
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.e2e.conftest import (
    BidStream,
    WsClient,
    auction_open,
    bid_stream,
    clients_close,
    delivery_problems,
    established_connections,
    group_subscribers,
    nothing_else_arrives,
    socket_fds,
    specific_channels,
    stored_events,
    users_with_tokens,
    wait_for,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BIDDERS = 4
OBSERVERS = 6
BID_SECONDS = 5.0
MAX_BIDS = 5000
DELIVERY_TIMEOUT = 20.0
# The largest frame a client may send is WS_MAX_MESSAGE_BYTES (64 KiB by default).
ALMOST_TOO_BIG = 60_000
# Messages pushed at a client that reads nothing: several MB, past any buffer.
STALL_MESSAGES = 20_000


@dataclass
class Scene:
    """An auction with bidders and well-behaved observers on both instances."""

    auction_id: str
    bidders: list[WsClient]
    observers: list[WsClient]
    tokens: list[str]  # spare tokens for the misbehaving clients
    baseline_channels: set[str]
    baseline_connections: dict[int, int]
    baseline_fds: dict[int, int]


async def scene(daphnes, spare: int) -> Scene:
    baseline_channels = specific_channels()
    baseline_connections = {s.port: established_connections(s.port) for s in daphnes}
    baseline_fds = {s.pid: socket_fds(s.pid) for s in daphnes}
    seller, *people = await users_with_tokens(1 + BIDDERS + OBSERVERS + spare)
    auction_id = await auction_open(seller[0])
    tokens = [token for _, token in people]
    bidders = [
        await WsClient.open(daphnes[i % 2], token, label=f"b{i}")
        for i, token in enumerate(tokens[:BIDDERS])
    ]
    observers = [
        await WsClient.open(daphnes[i % 2], token, label=f"o{i}")
        for i, token in enumerate(tokens[BIDDERS : BIDDERS + OBSERVERS])
    ]
    for observer in observers:
        await observer.subscribe(auction_id)
    return Scene(
        auction_id,
        bidders,
        observers,
        tokens[BIDDERS + OBSERVERS :],
        baseline_channels,
        baseline_connections,
        baseline_fds,
    )


async def complete_delivery(clients: list[WsClient], auction_id: str) -> list:
    """Wait until every client has the auction's last event; returns the stored events."""
    final = (await stored_events(auction_id))[-1][0]
    await wait_for(lambda: all(c.last_seq(auction_id) >= final for c in clients), DELIVERY_TIMEOUT)
    await nothing_else_arrives(clients, auction_id)
    return await stored_events(auction_id)


async def finish(
    daphnes, scene: Scene, others: list[WsClient] = (), subscriptions: bool = True
) -> str:
    """Close everyone, then check that a fresh client is served and nothing was left behind:
    no connection to either daphne and (with `subscriptions`) no Redis subscription."""
    for server in daphnes:
        fresh = await WsClient.open(server, scene.tokens[-1], label="fresh")
        pong = await fresh.request({"type": "ping"}, timeout=5)
        assert pong["type"] == "pong"
        await fresh.close()
    during = {s.port: established_connections(s.port) for s in daphnes}
    await clients_close([*scene.bidders, *scene.observers, *others])

    def clean() -> bool:
        return all(
            established_connections(p) <= n for p, n in scene.baseline_connections.items()
        ) and (
            not subscriptions
            or (
                group_subscribers(scene.auction_id) == 0
                and specific_channels() <= scene.baseline_channels
            )
        )

    is_clean = await wait_for(clean, timeout=10)
    connections = [
        (scene.baseline_connections[port], during[port], established_connections(port))
        for port in during
    ]
    summary = (
        f"ESTAB to daphne before/during/after: {connections}"
        f"; sockets per daphne before/after: "
        f"{[(scene.baseline_fds[s.pid], socket_fds(s.pid)) for s in daphnes]}"
        f"; group subscribers after: {group_subscribers(scene.auction_id)}"
        f"; per-connection channels left: {len(specific_channels() - scene.baseline_channels)}"
    )
    assert is_clean, summary
    return summary


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# --- (a) garbage -------------------------------------------------------------


def garbage(rng: random.Random, auction_id: str) -> tuple[str | bytes, str]:
    """A malformed message and the error code it must get."""
    kind = rng.randrange(8)
    if kind == 0:
        return rng.randbytes(rng.randint(1, 4000)), "invalid_message"  # binary frame
    if kind == 1:
        text = "".join(chr(rng.randint(0x20, 0xD7FF)) for _ in range(rng.randint(1, 500)))
        return "{" + text, "invalid_json"
    if kind == 2:
        return "x" * ALMOST_TOO_BIG, "invalid_json"
    if kind == 3:
        return json.dumps({"type": "bogus", "pad": "y" * ALMOST_TOO_BIG}), "unknown_type"
    if kind == 4:
        return json.dumps([1, {"type": "ping"}]), "invalid_message"
    if kind == 5:
        return json.dumps({"auction_id": auction_id}), "invalid_message"
    if kind == 6:
        return json.dumps({"type": "subscribe", "auction_id": "not-a-uuid"}), "invalid_message"
    return json.dumps({"type": "subscribe", "auction_id": auction_id, "since_seq": "1"}), (
        "invalid_message"
    )


async def test_a_client_sending_garbage_still_gets_its_events_and_disturbs_no_one(daphnes):
    s = await scene(daphnes, spare=2)
    noisy = await WsClient.open(daphnes[0], s.tokens[0], label="noisy")
    await noisy.subscribe(s.auction_id)
    rng = random.Random(11)
    sent_codes: list[str] = []
    sent_bytes = 0
    stop = asyncio.Event()

    async def spew() -> None:
        nonlocal sent_bytes
        while not stop.is_set():
            payload, code = garbage(rng, s.auction_id)
            await noisy.connection.send(payload)
            sent_codes.append(code)
            sent_bytes += len(payload)

    rss_before = rss_kib(daphnes[0].pid)
    rss_peak = rss_before

    async def sample_memory() -> None:
        nonlocal rss_peak
        while True:
            rss_peak = max(rss_peak, rss_kib(daphnes[0].pid))
            await asyncio.sleep(0.1)

    sampling = asyncio.create_task(sample_memory())
    spewing = asyncio.create_task(spew())
    stream = await bid_stream(s.bidders, s.auction_id, seconds=BID_SECONDS, max_bids=MAX_BIDS)
    stop.set()
    await spewing
    expected = await complete_delivery([*s.observers, noisy], s.auction_id)
    await wait_for(lambda: len(noisy.other) >= len(sent_codes), DELIVERY_TIMEOUT)
    sampling.cancel()

    print(
        f"\n[e2e garbage] {len(sent_codes)} malformed messages ({sent_bytes / 1e6:.1f} MB) "
        f"while {stream.accepted} bids were accepted; errors back: {len(noisy.other)}; "
        f"its daphne's RSS {rss_before // 1024} -> peak {rss_peak // 1024} MiB"
    )
    problems = [
        p for c in [*s.observers, noisy] for p in delivery_problems(c, s.auction_id, expected)
    ]
    assert not problems, problems
    # One error per malformed message, in order, on a connection that stays open.
    assert [m.get("type") for m in noisy.other] == ["error"] * len(sent_codes)
    assert [m["code"] for m in noisy.other] == sent_codes
    assert noisy.close_code is None
    print(f"[e2e garbage] {await finish(daphnes, s, [noisy])}")


# --- (b) churn ---------------------------------------------------------------

CHURN_ITERATIONS = 100  # per instance
APP_EXCEPTION = "Exception inside application"


async def churn(server, token: str, auction_id: str, label: str, iterations: int) -> list[str]:
    """Connect, subscribe, leave in one of several ways, over and over. Returns problems."""
    problems = []
    for i in range(iterations):
        client = await WsClient.open(server, token, label=f"{label}{i}")
        since = 0 if i % 3 == 0 else None
        reply = await client.subscribe(auction_id, since_seq=since)
        starts = [reply["data"]["seq"] if since is None else since]
        await asyncio.sleep(0.01)
        way = i % 4
        if way == 0:
            await client.request({"type": "unsubscribe", "auction_id": auction_id})
            await asyncio.sleep(0.01)  # no event of the auction may follow `unsubscribed`
            await client.close()
        elif way == 1:
            await client.close()  # without unsubscribing
        elif way == 2:
            client.connection.transport.abort()  # no close frame: the TCP connection just ends
            await client._reader
        else:
            # Subscribing again starts over from the new snapshot; unsubscribing twice is fine.
            starts.append((await client.subscribe(auction_id))["data"]["seq"])
            await client.request({"type": "unsubscribe", "auction_id": auction_id})
            await client.request({"type": "unsubscribe", "auction_id": auction_id})
            await client.close()
        problems += stream_problems(client, auction_id, starts)
    return problems


def stream_problems(client: WsClient, auction_id: str, starts: list[int]) -> list[str]:
    """After each `subscribed` (starting at the next of `starts`), events must run on from
    that seq without gap or repeat; after `unsubscribed`, none may come."""
    problems = []
    expected: int | None = None
    for message in client.log:
        if message["type"] == "subscribed":
            expected = starts.pop(0) + 1
        elif message["type"] == "unsubscribed":
            expected = None
        elif message.get("seq") is not None and message.get("auction_id") == auction_id:
            if expected is None or message["seq"] != expected:
                problems.append(f"{client.label}: seq {message['seq']}, expected {expected}")
                break
            expected += 1
    return problems


async def churn_while_bidding(daphnes, s: Scene, iterations: int) -> tuple[BidStream, float]:
    """Churn on both instances while bids stream; checks what the churning clients saw."""
    started = time.monotonic()
    errors_before = sum(d.log_text().count(APP_EXCEPTION) for d in daphnes)
    stream, *churned = await asyncio.gather(
        bid_stream(s.bidders, s.auction_id, seconds=BID_SECONDS, max_bids=MAX_BIDS),
        churn(daphnes[0], s.tokens[0], s.auction_id, "ca", iterations),
        churn(daphnes[1], s.tokens[1], s.auction_id, "cb", iterations),
    )
    took = time.monotonic() - started
    expected = await complete_delivery(s.observers, s.auction_id)
    problems = [p for c in s.observers for p in delivery_problems(c, s.auction_id, expected)]
    assert not problems, problems
    assert churned == [[], []]
    # The observers' two instances still follow the auction.
    assert group_subscribers(s.auction_id) >= 2
    crashed = sum(d.log_text().count(APP_EXCEPTION) for d in daphnes) - errors_before
    print(
        f"\n[e2e churn] {2 * iterations} connect/subscribe/leave cycles in {took:.1f}s while "
        f"{stream.accepted} bids were accepted; {crashed} consumers died with an exception"
    )
    assert crashed == 0, "a consumer died with an exception (see the daphne logs)"
    return stream, took


async def test_clients_that_subscribe_and_leave_in_quick_loops_disturb_no_one(daphnes):
    s = await scene(daphnes, spare=3)
    await churn_while_bidding(daphnes, s, CHURN_ITERATIONS)
    print(f"[e2e churn] {await finish(daphnes, s, subscriptions=False)}")


async def test_clients_that_subscribe_and_leave_in_quick_loops_leave_no_subscriptions(daphnes):
    s = await scene(daphnes, spare=3)
    await churn_while_bidding(daphnes, s, CHURN_ITERATIONS // 2)
    print(f"[e2e churn] {await finish(daphnes, s)}")


# --- (c) a client that stops reading -------------------------------------------


def server_side_queue(server_port: int, client_port: int) -> int | None:
    """Bytes the server's kernel holds unsent for the connection from `client_port`, or
    None once the server no longer has that connection."""
    local = f"0100007F:{server_port:04X}"
    remote = f"0100007F:{client_port:04X}"
    with open("/proc/net/tcp") as lines:
        for fields in (line.split() for line in lines):
            if fields[1] == local and fields[2] == remote and fields[3] == "01":
                return int(fields[4].split(":")[0], 16)
    return None


async def stalled_client(server, token: str, auction_id: str) -> tuple[Any, int]:
    """A client with a 4 KiB receive buffer that subscribes and then never reads.

    websockets stops reading its socket once one frame waits (`max_queue=1`), so the
    server's send buffer fills as the kernel's would for a stuck browser tab.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting
    sock.connect(("127.0.0.1", server.port))
    sock.setblocking(False)
    stalled = await websockets.connect(
        f"{server.ws_url}?token={token}", sock=sock, max_queue=1, ping_interval=None
    )
    await stalled.send(json.dumps({"type": "subscribe", "auction_id": auction_id}))
    assert json.loads(await stalled.recv())["type"] == "subscribed"
    return stalled, sock.getsockname()[1]


async def read_what_is_left(stalled: Any) -> list[dict[str, Any]]:
    """Read again until the connection ends or stays quiet for a few seconds."""
    got = []
    with contextlib.suppress(websockets.ConnectionClosed, TimeoutError):
        while True:
            got.append(json.loads(await asyncio.wait_for(stalled.recv(), 3)))
    return got


async def test_a_client_that_stops_reading_does_not_hold_back_the_others(daphnes):
    s = await scene(daphnes, spare=2)
    server = daphnes[0]
    stalled, client_port = await stalled_client(server, s.tokens[0], s.auction_id)
    rss_before = rss_kib(server.pid)
    unsent = 0

    async def watch() -> None:
        nonlocal unsent
        while (queued := server_side_queue(server.port, client_port)) is not None:
            unsent = max(unsent, queued)
            await asyncio.sleep(0.05)

    watching = asyncio.create_task(watch())
    stream = await bid_stream(s.bidders, s.auction_id, seconds=BID_SECONDS, max_bids=MAX_BIDS)
    expected = await complete_delivery(s.observers, s.auction_id)
    still_open = not watching.done()
    watching.cancel()
    rss_after = rss_kib(server.pid)

    # Reading again, it finds everything, in order: the server buffered it all.
    got = await read_what_is_left(stalled)
    events = [m["seq"] for m in got if m.get("type") == "bid_placed"]
    print(
        f"\n[e2e stalled reader] {stream.accepted} bids accepted; the stalled connection was "
        f"{'still open' if still_open else 'closed'} at the end, up to {unsent} B unsent in "
        f"the server's kernel, daphne RSS {rss_before} -> {rss_after} KiB; reading again it got "
        f"{len(events)} events, close code {stalled.close_code}"
    )
    problems = [p for c in s.observers for p in delivery_problems(c, s.auction_id, expected)]
    assert not problems, problems
    if still_open:
        assert events == [seq for seq, _, _ in expected]
    await stalled.close()
    print(f"[e2e stalled reader] {await finish(daphnes, s)}")


async def test_a_client_that_stops_reading_is_closed_with_4008(daphnes):
    (seller, _), (_, bidder_a), (_, bidder_b), (_, token) = await users_with_tokens(4)
    auction_id = await auction_open(seller)
    bidders = [
        await WsClient.open(daphnes[0], bidder_a, label="ba"),
        await WsClient.open(daphnes[1], bidder_b, label="bb"),
    ]
    await bid_stream(bidders, auction_id, seconds=2.0, max_bids=1000)
    history = len(await stored_events(auction_id))
    server = daphnes[0]
    stalled, client_port = await stalled_client(server, token, auction_id)
    rss_before = rss_kib(server.pid)
    try:
        # Each replay of the history is `history` messages; ask for enough to pass
        # MAX_SENT_WHILE_BLOCKED (1000) sent with a full buffer many times over.
        requests = 0
        while (
            requests * history < STALL_MESSAGES
            and server_side_queue(server.port, client_port) is not None
        ):
            await stalled.send(
                json.dumps({"type": "subscribe", "auction_id": auction_id, "since_seq": 0})
            )
            requests += 1
            await asyncio.sleep(0.05)
        live = await bid_stream(bidders, auction_id, seconds=2.0, max_bids=1000)
        closed = await wait_for(
            lambda: server_side_queue(server.port, client_port) is None, timeout=10
        )
        print(
            f"\n[e2e stalled reader, 4008] asked for {requests} replays of {history} events "
            f"and saw {live.accepted} live bids; server closed it={closed}; daphne RSS "
            f"{rss_before} -> {rss_kib(server.pid)} KiB"
        )
        assert closed
        assert "client stopped reading" in server.log_text()
        got = await read_what_is_left(stalled)
        assert stalled.close_code in {4008, 1006}, (stalled.close_code, len(got))
    finally:
        stalled.transport.abort()
        await clients_close(bidders)
