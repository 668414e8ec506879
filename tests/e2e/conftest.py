"""End-to-end fixtures: real daphne and celery processes on the test database and Redis.

The servers are separate processes with their own database connections, so every test
here is transactional (`django_db(transaction=True)`): data made in the test process is
committed before a server reads it. Clients speak WebSocket over real sockets with the
`websockets` library. Helpers (the client, bid streams, Redis and socket inspection) live
here too and are imported by the test modules.
"""

import asyncio
import contextlib
import itertools
import json
import os
import random
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
import websockets
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection

from accounts.models import User
from accounts.services import api_token_create
from auctions.models import Auction, AuctionEvent
from auctions.services import auction_create
from bidding.services import bid_place
from tests.factories import UserFactory
from tests.servers import CELERY, Server, server_environment, spawn, spawn_daphne

START_TIMEOUT = 40.0
STOP_TIMEOUT = 15.0
EVENT_TYPES = {
    "bid_placed",
    "auction_started",
    "auction_extended",
    "auction_ended",
    "auction_cancelled",
}


# --- processes ---------------------------------------------------------------


@pytest.fixture(scope="session")
def server_env(django_db_setup) -> dict[str, str]:
    """The environment of a production process pointed at THE TEST database and our Redis."""
    return server_environment(CHANNEL_LAYER="pubsub", LOG_LEVEL="INFO")


@contextlib.contextmanager
def two_daphnes(
    env: dict[str, str], log_dir: Path, names: tuple[str, str]
) -> Iterator[tuple[Server, Server]]:
    """Two daphne instances serving the app, each on a free port of its own."""
    servers = []
    try:
        for name in names:
            servers.append(spawn_daphne(name, env, log_dir))
        for server in servers:
            server.wait_serving()
        yield servers[0], servers[1]
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="module")
def daphnes(server_env, tmp_path_factory) -> Iterator[tuple[Server, Server]]:
    """Two daphne instances serving the app, each on a free port of its own."""
    with two_daphnes(
        server_env, tmp_path_factory.mktemp("daphne"), ("daphne-a", "daphne-b")
    ) as both:
        yield both


@pytest.fixture
def celery_worker_beat(server_env, transactional_db, tmp_path) -> Iterator[Server]:
    """A celery worker with embedded beat, running the event sweep every 2 s."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from auction_site.periodic_tasks import periodic_tasks_install

    # Transactional tests empty every table between tests, the schedule included.
    periodic_tasks_install(IntervalSchedule, PeriodicTask)
    command = [
        *CELERY,
        "worker",
        "-B",
        "--loglevel=info",
        "--concurrency=1",
        "--without-mingle",
        "--without-gossip",
        "-n",
        f"e2e-{os.getpid()}@%h",
    ]
    worker = spawn("celery", command, server_env, tmp_path)
    try:
        worker.wait_for_log(" ready.", "beat: Starting")
        yield worker
    finally:
        worker.stop()


# --- Redis -------------------------------------------------------------------


def redis_admin() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, decode_responses=True)


def group_channel(auction_id: Any) -> str:
    """The Redis channel of an auction's group under the pub/sub layer."""
    return f"asgi__group__auction.{auction_id}"


def group_subscribers(auction_id: Any) -> int:
    """How many connections (one per daphne process following it) the group channel has."""
    return dict(redis_admin().pubsub_numsub(group_channel(auction_id))).get(
        group_channel(auction_id), 0
    )


def specific_channels() -> set[str]:
    """The per-connection channels (`asgispecific.<hex>`) some process is subscribed to."""
    return set(redis_admin().pubsub_channels("asgispecific.*"))


@dataclass
class RedisServer:
    """The test run's own Redis (scripts/stack.py test exports its config), to stop and restart."""

    port: int
    conf: Path
    binary: str

    @classmethod
    def from_environment(cls) -> "RedisServer | None":
        conf = os.environ.get("STACK_REDIS_CONF")
        if not conf:
            return None
        port = urlsplit(settings.REDIS_URL).port or 6379
        return cls(
            port=int(os.environ.get("STACK_REDIS_PORT") or port),
            conf=Path(conf),
            binary=os.environ.get("REDIS_SERVER_BIN") or "redis-server",
        )

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """SHUTDOWN NOSAVE, and wait until the process is gone and the port refuses."""
        pid = int(redis_admin().info("server")["process_id"])
        with contextlib.suppress(redis.ConnectionError):
            redis_admin().execute_command("SHUTDOWN", "NOSAVE")
        deadline = time.monotonic() + STOP_TIMEOUT
        while _process_alive(pid) or self.ping():
            if time.monotonic() > deadline:
                raise RuntimeError(f"Redis (pid {pid}) did not stop")
            time.sleep(0.05)

    def start(self) -> None:
        """The same config and port again; daemonized, so the stack's teardown stops it."""
        subprocess.run(
            [self.binary, str(self.conf), "--daemonize", "yes"],
            check=True,
            cwd=self.conf.parent,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not self.ping():
            if time.monotonic() > deadline:
                raise RuntimeError(f"Redis did not come back on port {self.port}")
            time.sleep(0.05)


@dataclass
class PostgresServer:
    """The test run's own PostgreSQL (scripts/stack.py test exports where it is), to stop
    and start again: a restart as an operator (or a failover) does it."""

    bin_dir: Path
    data_dir: Path
    os_user: str

    @classmethod
    def from_environment(cls) -> "PostgresServer | None":
        data = os.environ.get("STACK_PG_DATA")
        if not data:
            return None
        return cls(
            bin_dir=Path(os.environ["PG_BIN_DIR"]),
            data_dir=Path(data),
            os_user=os.environ.get("STACK_PG_OS_USER", ""),
        )

    def _ctl(self, *args: str) -> None:
        command = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args]
        if self.os_user:
            command = ["runuser", "-u", self.os_user, "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=90)

    def stop(self) -> None:
        """A fast shutdown: every connection is cut, as in a restart."""
        self._ctl("stop", "-m", "fast", "-w", "-t", "60", "-s")

    def start(self) -> None:
        log = self.data_dir.parent / "restarted.log"
        self._ctl("start", "-w", "-t", "60", "-s", "-l", str(log))


@pytest.fixture
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer.from_environment()
    if server is None:
        pytest.skip("needs the PostgreSQL that scripts/stack.py test starts")
    try:
        yield server
    finally:
        if not _postgres_up(server):  # a test that failed mid-outage
            server.start()
        connection.close()  # the test's own connection was cut too: the flush opens anew


def _postgres_up(server: PostgresServer) -> bool:
    command = [str(server.bin_dir / "pg_ctl"), "-D", str(server.data_dir), "status"]
    if server.os_user:
        command = ["runuser", "-u", server.os_user, "--", *command]
    return subprocess.run(command, stdout=subprocess.DEVNULL).returncode == 0


def _process_alive(pid: int) -> bool:
    """Alive and not a zombie (a stopped server may wait for its parent to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """Our restartable Redis; the test is skipped when the run has none of its own."""
    server = RedisServer.from_environment()
    if server is None:
        pytest.skip("needs a Redis of its own to stop: run under scripts/stack.py test")
    yield server
    if not server.ping():  # a failed test must not leave the rest of the run without Redis
        server.start()


# --- sockets -----------------------------------------------------------------


def established_connections(port: int) -> int:
    """TCP connections in ESTABLISHED whose local end is `port` (a server's accepted sockets)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


def socket_fds(pid: int) -> int:
    """Open sockets of a process: its clients, database and Redis connections, listeners."""
    fd_dir = Path(f"/proc/{pid}/fd")
    count = 0
    for fd in fd_dir.iterdir():
        with contextlib.suppress(OSError):
            count += os.readlink(fd).startswith("socket:")
    return count


async def wait_for(condition: Any, timeout: float, interval: float = 0.05) -> bool:
    """Poll `condition()` until it is true or `timeout` seconds passed; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return bool(condition())
        await asyncio.sleep(interval)


# --- data --------------------------------------------------------------------


@database_sync_to_async
def users_with_tokens(count: int) -> list[tuple[User, str]]:
    made = []
    for _ in range(count):
        user = UserFactory()
        _, token = api_token_create(user=user, name="e2e")
        made.append((user, token))
    return made


@database_sync_to_async
def auction_open(creator: User) -> str:
    """An active auction at 10.00 with a one-cent increment, for an hour."""
    auction = auction_create(
        creator=creator,
        item_name="E2E lot",
        starting_price=Decimal("10.00"),
        min_increment=Decimal("0.01"),
        duration_seconds=3600,
    )
    return str(auction.id)


@database_sync_to_async
def auction_open_with(creator: User, **options: Any) -> str:
    """An active auction for an hour, on the terms given (`auction_create`'s arguments)."""
    options.setdefault("item_name", "E2E lot")
    options.setdefault("starting_price", Decimal("10.00"))
    options.setdefault("duration_seconds", 3600)
    return str(auction_create(creator=creator, **options).id)


@database_sync_to_async
def stored_events(auction_id: str) -> list[tuple[int, str, str | None]]:
    """(seq, type, bid_id) of every stored event of the auction, in seq order."""
    return [
        (seq, type_, payload.get("bid_id"))
        for seq, type_, payload in AuctionEvent.objects.filter(auction_id=auction_id)
        .order_by("seq")
        .values_list("seq", "type", "payload")
    ]


@database_sync_to_async
def last_seq(auction_id: str) -> int:
    return Auction.objects.values_list("last_seq", flat=True).get(id=auction_id)


@database_sync_to_async
def _sentinel_bid(auction_id: str) -> int:
    auction = Auction.objects.get(id=auction_id)
    accepted = bid_place(
        auction_id=auction.id, bidder=UserFactory(), amount=auction.current_price + 1000
    )
    return accepted.seq


async def nothing_else_arrives(clients: list["WsClient"], auction_id: str) -> int:
    """Wait for a last event every client must get, instead of sleeping: returns its seq.

    One more bid (by a new bidder, far above the others) goes out after everything else;
    each connection delivers in seq order, so anything extra (a duplicate, an event after
    `unsubscribed`) sent before it is in a client's log before it.
    """
    sentinel = await _sentinel_bid(auction_id)
    arrived = await wait_for(
        lambda: all(client.last_seq(auction_id) >= sentinel for client in clients),
        timeout=20.0,
    )
    assert arrived, "the sentinel event did not reach every client"
    return sentinel


# --- clients -----------------------------------------------------------------


@dataclass
class Received:
    message: dict[str, Any]
    at: float  # time.perf_counter() when it was read off the socket


class WsClient:
    """A WebSocket API client on a real socket; a reader task files what arrives."""

    def __init__(self, connection: Any, label: str) -> None:
        self.connection = connection
        self.label = label
        self.events: list[Received] = []
        self.other: list[dict[str, Any]] = []
        self.log: list[dict[str, Any]] = []  # everything, in the order it arrived
        self.replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(
        cls, server: Server, token: str, *, label: str, header: bool = False, **options: Any
    ) -> "WsClient":
        options.setdefault("ping_interval", None)
        options.setdefault("max_size", 2**22)
        if header:
            options["additional_headers"] = {"Authorization": f"Bearer {token}"}
            connection = await websockets.connect(server.ws_url, **options)
        else:
            connection = await websockets.connect(f"{server.ws_url}?token={token}", **options)
        return cls(connection, label)

    async def _read(self) -> None:
        try:
            async for raw in self.connection:
                at = time.perf_counter()
                message = json.loads(raw)
                self.log.append(message)
                request_id = message.get("request_id")
                if message.get("type") in EVENT_TYPES and "seq" in message:
                    self.events.append(Received(message, at))
                elif request_id in self.replies and not self.replies[request_id].done():
                    self.replies[request_id].set_result(message)
                else:
                    self.other.append(message)
        except websockets.ConnectionClosed:
            pass
        finally:
            for future in self.replies.values():
                if not future.done():
                    future.set_exception(ConnectionError(f"{self.label}: connection closed"))

    @property
    def close_code(self) -> int | None:
        return self.connection.close_code

    async def request(self, message: dict[str, Any], timeout: float = 20.0) -> dict[str, Any]:
        request_id = f"{self.label}-{next(self._ids)}"
        future = asyncio.get_running_loop().create_future()
        self.replies[request_id] = future
        try:
            await self.connection.send(json.dumps({**message, "request_id": request_id}))
            return await asyncio.wait_for(future, timeout)
        finally:
            del self.replies[request_id]

    async def subscribe(self, auction_id: str, since_seq: int | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {"type": "subscribe", "auction_id": auction_id}
        if since_seq is not None:
            message["since_seq"] = since_seq
        reply = await self.request(message)
        assert reply["type"] == "subscribed", reply
        return reply

    def seqs(self, auction_id: str) -> list[int]:
        return [r.message["seq"] for r in self.events if r.message["auction_id"] == auction_id]

    def last_seq(self, auction_id: str) -> int:
        seqs = self.seqs(auction_id)
        return seqs[-1] if seqs else 0

    async def close(self) -> None:
        await self.connection.close()
        await self._reader


async def send_raw(client: WsClient, message: dict[str, Any]) -> None:
    """Send a message as it is (its own `request_id`, if any): the reply lands in `client.log`."""
    await client.connection.send(json.dumps(message))


def replies_to(client: WsClient, request_id: str) -> list[dict[str, Any]]:
    """Every direct reply (not an event) the client got that echoes `request_id`, in order."""
    return [
        message
        for message in client.log
        if message.get("request_id") == request_id and message.get("type") not in EVENT_TYPES
    ]


def without_timestamp(message: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in message.items() if key != "timestamp"}


async def clients_close(clients: list[WsClient]) -> None:
    await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)


# --- bidding -----------------------------------------------------------------


@dataclass
class BidStream:
    """What a bid stream did: accepted bids, rejections, and when each accepted bid was sent."""

    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)
    sent_at: dict[str, float] = field(default_factory=dict)  # bid_id -> perf_counter at send
    seconds: float = 0.0


async def bid_stream(
    bidders: list[WsClient], auction_id: str, *, seconds: float, max_bids: int, seed: int = 7
) -> BidStream:
    """Each bidder bids min_next_bid plus 0-5 cents as soon as its previous reply is in.

    Bounded by time and by the number of accepted bids. Losing races (`bid_too_low`,
    `already_highest`) is expected; any other outcome fails the test.
    """
    stream = BidStream()
    rng = random.Random(seed)
    started = time.perf_counter()
    deadline = started + seconds

    async def bid_until_done(bidder: WsClient) -> None:
        min_next = Decimal("10.00")
        while time.perf_counter() < deadline and stream.accepted < max_bids:
            amount = min_next + Decimal(rng.randint(0, 5)) / 100
            sent = time.perf_counter()
            reply = await bidder.request(
                {"type": "place_bid", "auction_id": auction_id, "amount": str(amount)}
            )
            if reply["type"] == "bid_accepted":
                stream.accepted += 1
                stream.sent_at[reply["data"]["bid_id"]] = sent
                min_next = Decimal(reply["data"]["min_next_bid"])
                continue
            assert reply["type"] == "bid_rejected", reply
            assert reply["code"] in {"bid_too_low", "already_highest"}, reply
            stream.rejected[reply["code"]] += 1
            min_next = Decimal(reply["data"]["min_next_bid"])
            if reply["code"] == "already_highest":
                await asyncio.sleep(0.002)  # wait to be outbid

    await asyncio.gather(*(bid_until_done(bidder) for bidder in bidders))
    stream.seconds = time.perf_counter() - started
    return stream


def delivery_problems(
    client: WsClient, auction_id: str, expected: list[tuple[int, str, str | None]]
) -> list[str]:
    """How a client's events of an auction differ from the stored ones (empty when exact)."""
    got = [
        (r.message["seq"], r.message["type"], r.message["data"].get("bid_id"))
        for r in client.events
        if r.message["auction_id"] == auction_id
    ]
    if got == expected:
        return []
    seqs = [seq for seq, _, _ in got]
    duplicated = len(seqs) - len(set(seqs))
    missing = sorted({seq for seq, _, _ in expected} - set(seqs))
    out_of_order = seqs != sorted(seqs)
    return [
        f"{client.label}: {len(got)} events for {len(expected)} stored; "
        f"missing {missing[:10]}{'...' if len(missing) > 10 else ''} ({len(missing)}), "
        f"duplicated {duplicated}, out of order {out_of_order}"
    ]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]
