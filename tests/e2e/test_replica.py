"""A real streaming replica behind DATABASE_REPLICA_URL (spec §10): lists are read from it,
whoever just wrote reads the primary (read-your-writes), snapshots always the primary."""

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection

from tests.e2e.conftest import PostgresServer, users_with_tokens
from tests.servers import Server, free_port, spawn_daphne

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


class Replica:
    """A hot standby of the test run's PostgreSQL, made by pg_basebackup, on its own port."""

    def __init__(self, primary: PostgresServer) -> None:
        self.primary = primary
        self.port = free_port()
        self.data_dir = primary.data_dir.parent / f"replica-{self.port}"
        self.user = connection.settings_dict["USER"]

    def _as_server_user(self, program: str, *args: str) -> None:
        command = [str(self.primary.bin_dir / program), *args]
        if self.primary.os_user:
            command = ["runuser", "-u", self.primary.os_user, "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=120)

    def start(self) -> None:
        primary_port = connection.settings_dict["PORT"] or "5432"
        self._as_server_user(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary_port), "-U", self.user,
            "-D", str(self.data_dir), "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        log = self.data_dir.parent / f"replica-{self.port}.log"
        self._as_server_user(
            "pg_ctl", "-D", str(self.data_dir), "-o", f"-p {self.port}", "-l", str(log),
            "-w", "-t", "60", "-s", "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._as_server_user("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-s", "stop")

    def url(self) -> str:
        name = connection.settings_dict["NAME"]
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{name}"

    def execute(self, sql: str) -> Any:
        with psycopg.connect(self.url(), autocommit=True) as db:
            return db.execute(sql).fetchone()


@pytest.fixture
def replica() -> Iterator[Replica]:
    primary = PostgresServer.from_environment()
    if primary is None:
        pytest.skip("needs the PostgreSQL that scripts/stack.py test starts")
    made = Replica(primary)
    made.start()
    try:
        yield made
    finally:
        made.stop()


@pytest.fixture
def replica_daphne(server_env, replica, tmp_path) -> Iterator[Server]:
    env = {**server_env, "DATABASE_REPLICA_URL": replica.url()}
    server = spawn_daphne("daphne-replica", env, tmp_path)
    try:
        server.wait_serving()
        yield server
    finally:
        server.stop()


def call(server: Server, token: str, path: str, body: dict | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{server.url}{path}",
        data=data,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def listed(server: Server, token: str) -> set[str]:
    status, page = call(server, token, "/api/auctions/?limit=500")
    assert status == 200, page
    return {auction["id"] for auction in page["results"]}


async def test_lists_come_from_the_replica_and_a_writer_reads_its_own_writes(
    replica, replica_daphne
):
    (_, seller_token), (_, reader_token) = await users_with_tokens(2)
    replica.execute("SELECT pg_wal_replay_pause()")  # the replica falls behind, on purpose
    status, made = call(
        replica_daphne,
        seller_token,
        "/api/auctions/",
        {"item": {"name": "Brass lamp"}, "starting_price": "10.00", "duration_seconds": 3600},
    )
    assert status == 201, made
    new_id = made["id"]

    assert new_id not in listed(replica_daphne, reader_token)  # read from the replica
    assert new_id in listed(replica_daphne, seller_token)  # the writer reads the primary
    status, snapshot = call(replica_daphne, reader_token, f"/api/auctions/{new_id}/")
    assert (status, snapshot["id"]) == (200, new_id)  # a snapshot is always the primary's

    replica.execute("SELECT pg_wal_replay_resume()")
    deadline = time.monotonic() + 30
    while new_id not in listed(replica_daphne, reader_token):
        assert time.monotonic() < deadline, "the replica did not catch up"
        time.sleep(0.2)
