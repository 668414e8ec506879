"""Browser fixtures: a real daphne (and celery worker + beat) on the test database, and Chromium.

The server is a separate process with its own database connections, so browser tests are
transactional (`django_db(transaction=True)`): data the test makes through the services is
committed before the server reads it. Chromium is Debian's (/usr/bin/chromium), driven by
Playwright's sync API; Playwright's own browser download is not used.
"""

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from auctions.schedule_index import KINDS, claimed_key, schedule_key
from infra.redis import redis_client
from tests.factories import UserFactory
from tests.servers import CELERY, REPO_ROOT, Server, server_environment, spawn, spawn_daphne

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
CELERY_WORKER_WITH_BEAT = [
    *CELERY,
    *("worker", "-B"),
    *("--loglevel=info", "--concurrency=1", "--without-mingle", "--without-gossip"),
]
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
PASSWORD = "pass-word-123"


@pytest.fixture(scope="session")
def server_env(django_db_setup) -> dict[str, str]:
    """A production process's environment, pointed at THE TEST database and our Redis."""
    return server_environment()


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
    daphne = spawn_daphne("daphne", server_env, log_dir)
    try:
        daphne.wait_serving()
        yield daphne.url
    finally:
        daphne.stop()


def _clear_schedule() -> None:
    client = redis_client()
    client.delete(*[schedule_key(kind) for kind in KINDS], *[claimed_key(kind) for kind in KINDS])


@pytest.fixture
def celery_worker_beat(server_env, transactional_db, tmp_path) -> Iterator[Server]:
    """A celery worker with embedded beat: it ends auctions at their end time."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from auction_site.periodic_tasks import periodic_tasks_install

    _clear_schedule()
    # Transactional tests empty every table between tests, the beat schedule included.
    periodic_tasks_install(IntervalSchedule, PeriodicTask)
    worker = spawn(
        "celery",
        [
            *CELERY_WORKER_WITH_BEAT,
            *("-n", f"browser-{os.getpid()}@%h", "-s", str(tmp_path / "celerybeat-schedule")),
        ],
        server_env,
        tmp_path,
    )
    try:
        worker.wait_for_log("beat: Starting")
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
