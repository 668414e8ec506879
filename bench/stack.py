"""The system under test: migrated database, N daphne instances, a Celery worker and beat.

PostgreSQL and Redis come from `scripts/stack.py test` (throwaway, on free ports): the
bench re-runs itself under it, so they are always torn down. This module starts the
application processes on top, each in a session of its own, and stops every one of them.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
STACK_SCRIPT = REPO_ROOT / "scripts" / "stack.py"
IN_STACK_MARK = "BENCH_IN_STACK"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def raise_fd_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit; children started afterwards inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def run_inside_stack(argv: list[str], *, durable: bool = True, module: str = "bench") -> int:
    """Run `python -m MODULE ARGV` under throwaway PostgreSQL and Redis; return its status.

    PostgreSQL keeps its durable defaults (each commit waits for its WAL flush), as a
    deployment runs it; `durable=False` turns fsync off, which flatters every bid figure.
    """
    raise_fd_limit()
    env = dict(os.environ, **{IN_STACK_MARK: "1"})
    mode = ["--durable", "test"] if durable else ["test"]
    command = [sys.executable, str(STACK_SCRIPT), *mode, "--", sys.executable, "-m", module]
    return subprocess.run([*command, *argv], cwd=REPO_ROOT, env=env).returncode


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def app_env() -> dict[str, str]:
    """The environment of every application process (and of the bench's own Django)."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "auction_site.settings.production",
        "SECRET_KEY": "bench",
        "ENV_FILE": "/dev/null",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "BID_RATE_LIMIT": "0",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "REDIS_URL": os.environ["REDIS_URL"],
    }


def rss_kib(pid: int) -> int:
    """Resident set size of one process (VmRSS), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def bin_path(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@dataclass
class Server:
    """One started application process."""

    name: str
    process: subprocess.Popen[bytes]
    port: int | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/"


def web_server_command(port: int) -> list[str]:
    """daphne (the spec's server), or uvicorn with uvloop when BENCH_SERVER=uvicorn."""
    if os.environ.get("BENCH_SERVER", "daphne") == "uvicorn":
        return [
            *(bin_path("uvicorn"), "auction_site.asgi:application"),
            *("--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop"),
            *("--http", "httptools", "--ws", "websockets-sansio", "--no-access-log"),
            *("--log-level", "warning"),
        ]
    return [bin_path("daphne"), "-b", "127.0.0.1", "-p", str(port), "auction_site.asgi:application"]


@dataclass
class AppStack:
    """Daphne instances, worker and beat; use as a context manager."""

    instances: int = 2
    log_dir: Path = REPO_ROOT / "bench-results"
    servers: list[Server] = field(default_factory=list)

    @property
    def daphnes(self) -> list[Server]:
        return [server for server in self.servers if server.port is not None]

    @property
    def ws_urls(self) -> list[str]:
        return [server.url for server in self.daphnes]

    def __enter__(self) -> AppStack:
        raise_fd_limit()
        try:
            self.migrate()
            for index in range(self.instances):
                port = free_port()
                self._spawn(f"daphne{index}", web_server_command(port), port)
            self._spawn(
                "worker",
                [
                    bin_path("celery"),
                    "-A",
                    "auction_site",
                    "worker",
                    "--concurrency",
                    os.environ.get("WORKER_CONCURRENCY", "8"),
                    "--loglevel",
                    "WARNING",
                ],
            )
            self._spawn(
                "beat",
                [
                    bin_path("celery"),
                    "-A",
                    "auction_site",
                    "beat",
                    "--scheduler",
                    "django_celery_beat.schedulers:DatabaseScheduler",
                    "--max-interval",
                    "1",
                    "--loglevel",
                    "WARNING",
                ],
            )
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def migrate(self) -> None:
        log("migrating the bench database")
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=REPO_ROOT,
            env=app_env(),
            check=True,
        )

    def _spawn(self, name: str, command: list[str], port: int | None = None) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / f"{name}.log").open("ab") as output:
            process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=app_env(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.servers.append(Server(name, process, port))

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        for server in self.daphnes:
            while True:
                if server.process.poll() is not None:
                    raise RuntimeError(f"{server.name} exited; see {self.log_dir}")
                try:
                    url = f"http://127.0.0.1:{server.port}/healthz"
                    with urllib.request.urlopen(url, timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{server.name} not healthy after {READY_TIMEOUT:.0f}s")
                time.sleep(0.2)
        log(f"{len(self.daphnes)} daphne instance(s) healthy: {self.ws_urls}")

    def stop(self) -> None:
        """SIGTERM each process group, then SIGKILL whatever is left of it."""
        for server in self.servers:
            if server.process.poll() is None:
                _signal_group(server.process.pid, signal.SIGTERM)
        for server in self.servers:
            try:
                server.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                log(f"{server.name} did not stop; killing it")
            _signal_group(server.process.pid, signal.SIGKILL)
            server.process.wait()
        self.servers.clear()


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)
