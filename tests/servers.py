"""Real server processes for tests: daphne and Celery on the test database and Redis.

Used by the browser, end-to-end and scheduling tests. The processes have their own
database connections, so those tests are transactional (`django_db(transaction=True)`).
"""

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

REPO_ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 40.0
STOP_TIMEOUT = 15.0
DAPHNE = [sys.executable, "-m", "daphne"]
CELERY = [sys.executable, "-m", "celery", "-A", "auction_site"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _die_with_parent() -> None:
    """Runs in the child before exec: a server must not outlive a killed test run."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Server:
    """One process a test started: a daphne instance or a Celery worker or beat."""

    name: str
    process: subprocess.Popen
    log_path: Path
    port: int = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return f"--- last lines of {self.name}'s log ---\n" + "\n".join(
            self.log_text().splitlines()[-lines:]
        )

    def wait(self, ready: Callable[[], bool], timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not get ready\n{self.log_tail()}")
            time.sleep(0.2)

    def wait_serving(self) -> None:
        self.wait(lambda: http_ok(f"{self.url}/healthz"))

    def wait_for_log(self, *needles: str) -> None:
        self.wait(lambda: all(needle in self.log_text() for needle in needles))

    def stop(self) -> None:
        """SIGTERM the process group we created, then SIGKILL it if it lingers."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(STOP_TIMEOUT)
        # Children of the group (celery's pool and beat) go with their leader.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


def spawn(
    name: str, command: list[str], env: dict[str, str], log_dir: Path, port: int = 0
) -> Server:
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # our own process group, stopped as a whole
            preexec_fn=_die_with_parent,
        )
    return Server(name=name, process=process, log_path=log_path, port=port)


def spawn_daphne(name: str, env: dict[str, str], log_dir: Path) -> Server:
    port = free_port()
    command = [*DAPHNE, "-b", "127.0.0.1", "-p", str(port), "auction_site.asgi:application"]
    return spawn(name, command, env, log_dir, port=port)


def database_url_for_servers() -> str:
    """The URL of the database pytest-django created (call after `django_db_setup`)."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def server_environment(**overrides: str) -> dict[str, str]:
    """A production process's environment, pointed at the test database and our Redis."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DB_URL", "REDIS_ADDR", "REDIS_PASSWORD", "REDIS_DB", "PYTEST_CURRENT_TEST"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="auction_site.settings.production",
        SECRET_KEY="test-servers-only-secret-key",
        ENV_FILE="/dev/null",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=database_url_for_servers(),
        REDIS_URL=settings.REDIS_URL,
        BID_RATE_LIMIT="0",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env
