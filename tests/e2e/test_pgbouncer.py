"""The service through Debian's PgBouncer 1.18 in transaction mode, and on psycopg's pool
(spec §10): bids, subscriptions and lists work, with nothing but settings changed."""

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from tests.e2e.conftest import PostgresServer, WsClient, auction_open, users_with_tokens
from tests.servers import Server, free_port, spawn_daphne

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PGBOUNCER = "/usr/sbin/pgbouncer"


@pytest.fixture
def pgbouncer(tmp_path) -> Iterator[int]:
    """PgBouncer on a free port, transaction pooling, in front of the test database."""
    if not Path(PGBOUNCER).exists():
        pytest.skip("needs Debian's pgbouncer (scripts/bootstrap test installs it)")
    db = connection.settings_dict
    port = free_port()
    # Beside the test run's PostgreSQL: a folder its system user can reach.
    primary = PostgresServer.from_environment()
    folder = (primary.data_dir.parent if primary else tmp_path) / f"pgbouncer-{port}"
    folder.mkdir()
    (folder / "users.txt").write_text(f'"{db["USER"]}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"{db['NAME']} = host=127.0.0.1 port={db['PORT']} dbname={db['NAME']}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / 'users.txt'}\n"
        "pool_mode = transaction\nmax_client_conn = 500\ndefault_pool_size = 10\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
        f"logfile = {folder / 'pgbouncer.log'}\npidfile = {folder / 'pgbouncer.pid'}\n"
    )
    command = [PGBOUNCER, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:  # it refuses to run as root
        shutil.chown(folder, "postgres")
        for path in folder.iterdir():
            shutil.chown(path, "postgres")
        command = ["runuser", "-u", "postgres", "--", *command]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not (folder / "pgbouncer.pid").exists():
            assert process.poll() is None, (folder / "pgbouncer.log").read_text()
            assert time.monotonic() < deadline, "pgbouncer did not start"
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(10)


def through(server_env: dict[str, str], port: int) -> dict[str, str]:
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@127.0.0.1:{port}/{db['NAME']}"
    return {**server_env, "DATABASE_URL": url, "DB_PREPARED_STATEMENTS": "false"}


@pytest.fixture
def daphne_through_pgbouncer(server_env, pgbouncer, tmp_path) -> Iterator[Server]:
    server = spawn_daphne("daphne-pgbouncer", through(server_env, pgbouncer), tmp_path)
    try:
        server.wait_serving()
        yield server
    finally:
        server.stop()


@pytest.fixture
def daphne_on_a_pool(server_env, tmp_path) -> Iterator[Server]:
    env = {**server_env, "DB_POOL": "true", "DB_POOL_MAX_SIZE": "6"}
    server = spawn_daphne("daphne-pool", env, tmp_path)
    try:
        server.wait_serving()
        yield server
    finally:
        server.stop()


async def bidding_works(server: Server) -> None:
    """Four bidders outbid each other 40 times on one auction, concurrently; a watcher
    sees every accepted bid once, in order."""
    people = await users_with_tokens(6)
    auction_id = await auction_open(people[0][0])
    watcher = await WsClient.open(server, people[1][1], label="watcher")
    await watcher.subscribe(auction_id)
    bidders = [
        await WsClient.open(server, token, label=f"b{i}") for i, (_, token) in enumerate(people[2:])
    ]
    accepted = 0

    async def bid(client: WsClient, rounds: int) -> None:
        nonlocal accepted
        for _ in range(rounds):
            reply = await client.request(
                {"type": "place_bid", "auction_id": auction_id, "max_amount": "1000.00"}
            )
            assert reply["type"] in {"bid_accepted", "bid_rejected"}, reply
            accepted += reply["type"] == "bid_accepted"

    await asyncio.gather(*(bid(client, 10) for client in bidders))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not watcher.seqs(auction_id):
        await asyncio.sleep(0.05)
    snapshot = (await watcher.subscribe(auction_id))["data"]
    await asyncio.sleep(0.5)
    seqs = watcher.seqs(auction_id)
    assert accepted >= 1
    assert seqs == list(range(1, snapshot["seq"] + 1)), seqs  # each once, in order
    for client in [watcher, *bidders]:
        await client.close()


async def test_the_service_runs_through_pgbouncer_in_transaction_mode(daphne_through_pgbouncer):
    await bidding_works(daphne_through_pgbouncer)


async def test_the_service_runs_on_psycopgs_pool(daphne_on_a_pool):
    await bidding_works(daphne_on_a_pool)
