"""Schemathesis against a live daphne: what /api/openapi.json calls valid, the API accepts,
what it calls invalid, the API refuses, and every answer is documented (spec §3, §11).

Runs the `st` command-line tool with every check on (tests/e2e/schemathesis.toml), its
hooks (tests/e2e/fuzz_hooks.py) given real categories, auctions and items to aim at. A
fixed seed makes a failure repeatable; FUZZ_SEED=<n> explores others.
"""

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.services import api_token_create
from auctions.models import Category
from auctions.pricing import increment_tables
from auctions.services import auction_create, item_create
from tests.factories import UserFactory
from tests.servers import REPO_ROOT, Server, spawn_daphne

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]

CONFIG = REPO_ROOT / "tests" / "e2e" / "schemathesis.toml"
SCHEMATHESIS = [sys.executable, "-m", "schemathesis.cli"]


@pytest.fixture
def api_server(server_env, transactional_db, tmp_path) -> Iterator[Server]:
    # Bids limited as in production, so 429 is reachable too.
    env = {**server_env, "BID_RATE_LIMIT": "20"}
    server = spawn_daphne("daphne-fuzz", env, tmp_path)
    try:
        server.wait_serving()
        yield server
    finally:
        server.stop()


def fuzz_data() -> tuple[str, dict[str, str]]:
    """A fuzzing user's token and the real things the hooks aim at (their environment)."""
    fuzzer, seller = UserFactory(), UserFactory()
    _, token = api_token_create(user=fuzzer, name="fuzz")
    books = Category.objects.create(slug="books", name="Books")
    Category.objects.create(slug="lamps", name="Lamps")
    others = auction_create(
        creator=seller,
        item_name="Brass lamp",
        starting_price=Decimal("10.00"),
        duration_seconds=3600,
        buy_now_price=Decimal("500.00"),
    )
    own_pending = auction_create(
        creator=fuzzer,
        item_name="Old atlas",
        category=books,
        starting_price=Decimal("10.00"),
        start_time=timezone.now() + timedelta(days=1),
        duration_seconds=7 * 24 * 3600,
    )
    # Enough items that uploads never fill them all (10 photos each).
    own_items = [item_create(owner=fuzzer, name=f"Tea set {n}") for n in range(30)]
    env = {
        "FUZZ_AUCTIONS": f"{others.id},{own_pending.id}",
        "FUZZ_ITEMS": ",".join(str(item.id) for item in own_items),
        "FUZZ_CATEGORIES": "books,lamps",
        "FUZZ_TABLES": ",".join(increment_tables()),
    }
    return token, env


def test_the_api_does_what_its_openapi_document_says(api_server: Server):
    token, data = fuzz_data()
    seed = os.environ.get("FUZZ_SEED", "20261202")
    command = [
        *SCHEMATHESIS,
        "--config-file",
        str(CONFIG),
        "run",
        f"{api_server.url}/api/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--seed",
        seed,
    ]
    env = {**os.environ, **data, "PYTHONPATH": str(REPO_ROOT), "NO_COLOR": "1"}
    result = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=540
    )
    report = result.stdout[-20000:] + result.stderr[-4000:]
    assert result.returncode == 0, f"schemathesis found problems (seed {seed}):\n{report}"
    assert "18 selected / 18 total" in result.stdout, report
