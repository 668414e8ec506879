"""Browser fixtures: a real daphne (and celery worker + beat) on the test database, and Chromium.

The server is a separate process with its own database connections, so browser tests are
transactional (`django_db(transaction=True)`): data the test makes through the services is
committed before the server reads it. Chromium is Debian's (/usr/bin/chromium), driven by
Playwright's sync API; Playwright's own browser download is not used.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from auction_site.redis import redis_client
from auctions.schedule import KINDS, claimed_key, schedule_key
from tests.factories import UserFactory

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
DAPHNE = [sys.executable, "-m", "daphne"]
CELERY_WORKER_WITH_BEAT = [
    *(sys.executable, "-m", "celery", "-A", "auction_site", "worker", "-B"),
    *("--loglevel=info", "--concurrency=1", "--without-mingle", "--without-gossip"),
]
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
START_TIMEOUT = 40.0
PASSWORD = "pass-word-123"


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return f"--- {self.name} log ---\n" + "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM our own process group, SIGKILL it if it lingers."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(15)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)


def _spawn(name: str, command: list[str], env: dict[str, str], log_dir: Path) -> Process:
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log_file:
        popen = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group of its own, stopped as a whole
        )
    return Process(name=name, popen=popen, log_path=log_path)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(process: Process, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        if process.popen.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{process.name} did not start\n{process.log_tail()}")
        time.sleep(0.2)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def server_env(django_db_setup) -> dict[str, str]:
    """A production process's environment, pointed at THE TEST database and our Redis."""
    db = connection.settings_dict  # names the test database once django_db_setup ran
    credentials = quote(db["USER"] or "", safe="")
    host = db["HOST"] or "127.0.0.1"
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DB_URL", "REDIS_ADDR", "REDIS_PASSWORD", "REDIS_DB", "PYTEST_CURRENT_TEST"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="auction_site.settings.production",
        SECRET_KEY="browser-tests-only-secret-key",
        ENV_FILE="/dev/null",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=f"postgres://{credentials}@{host}:{db['PORT'] or 5432}/{db['NAME']}",
        REDIS_URL=settings.REDIS_URL,
        BID_RATE_LIMIT="0",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture(scope="session")
def live_server_url(server_env, tmp_path_factory) -> Iterator[str]:
    """One daphne serving the app (and its collected static files) on a free port."""
    log_dir = tmp_path_factory.mktemp("browser-servers")
    # Production serves static files through whitenoise's manifest: collect them first.
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=REPO_ROOT,
        env=server_env,
        check=True,
    )
    port = _free_port()
    daphne = _spawn(
        "daphne",
        [*DAPHNE, "-b", "127.0.0.1", "-p", str(port), "auction_site.asgi:application"],
        server_env,
        log_dir,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(daphne, lambda: _http_ok(f"{url}/healthz"))
        yield url
    finally:
        daphne.stop()


def _clear_schedule() -> None:
    client = redis_client()
    client.delete(*[schedule_key(kind) for kind in KINDS], *[claimed_key(kind) for kind in KINDS])


@pytest.fixture
def celery_worker_beat(server_env, transactional_db, tmp_path) -> Iterator[Process]:
    """A celery worker with embedded beat: it ends auctions at their end time."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from auction_site.schedule import periodic_tasks_install

    _clear_schedule()
    # Transactional tests empty every table between tests, the beat schedule included.
    periodic_tasks_install(IntervalSchedule, PeriodicTask)
    worker = _spawn(
        "celery",
        [
            *CELERY_WORKER_WITH_BEAT,
            *("-n", f"browser-{os.getpid()}@%h", "-s", str(tmp_path / "celerybeat-schedule")),
        ],
        server_env,
        tmp_path,
    )
    try:
        _wait(worker, lambda: "beat: Starting" in worker.log_path.read_text(errors="replace"))
        yield worker
    finally:
        worker.stop()
        _clear_schedule()


@pytest.fixture(scope="module")
def browser(django_db_setup) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip(f"needs Chromium at {CHROMIUM} (scripts/bootstrap test installs it)")
    # Playwright's sync API keeps an event loop running in this thread, which Django takes
    # for async code and refuses database calls from. The tests are plain sync code, so
    # lift that guard, for this module's tests only.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()


@pytest.fixture
def new_page(browser, live_server_url) -> Iterator[Callable[..., object]]:
    """Open a page in a fresh browser context (its own cookies), optionally logged in."""
    contexts = []

    def open_page(user: object = None, *, javascript: bool = True, width: int = 1200) -> object:
        context = browser.new_context(
            base_url=live_server_url,
            java_script_enabled=javascript,
            viewport={"width": width, "height": 900},
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        if user is not None:
            log_in(page, user.username)
        return page

    yield open_page
    for context in contexts:
        context.close()


def log_in(page: object, username: str) -> None:
    """Log in through the real login form."""
    page.goto("/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.card-form button[type=submit]")
    page.wait_for_selector(f"text=Welcome back, {username}.")


def browser_user(username: str) -> object:
    """A user the server can log in: hashed with PBKDF2, which production settings accept.

    (Test settings hash with MD5 for speed; the production server would not know it.)
    Few iterations keep logging in fast; Django upgrades the hash on the first login.
    """
    from django.contrib.auth.hashers import PBKDF2PasswordHasher
    from django.utils.crypto import get_random_string

    user = UserFactory(username=username)
    user.password = PBKDF2PasswordHasher().encode(PASSWORD, get_random_string(12), iterations=1000)
    user.save(update_fields=["password"])
    return user


def screenshot(page: object, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
