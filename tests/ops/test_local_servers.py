"""`python manage.py …` finds the servers the quick start runs, with nothing set by hand (§11).

scripts/stack.py run records their URLs in `.run/env` while it runs; settings read it when
the environment names no server. These tests run manage.py in a process of its own, as a
second shell would, against the real test PostgreSQL and Redis.
"""

import importlib.util
import json
import os
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.conf import settings

from accounts.services import api_token_user
from tests.factories import UserFactory
from tests.ops.conftest import MANAGE, REPO_ROOT, clean_environment, run
from tests.servers import database_url_for_servers

PRINT_URLS = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "db = s.DATABASES['default']; "
    "print(json.dumps({'db': [db['HOST'], db['PORT'], db['NAME']], 'redis': s.REDIS_URL}))"
)


def write_state(path: Path, pid: int, **urls: str) -> Path:
    lines = [
        "# written by the test",
        f"STACK_RUN_PID={pid}",
        *(f"{k}={v}" for k, v in urls.items()),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def settings_urls(state: Path, **env: str) -> dict:
    result = run(
        [sys.executable, "-c", PRINT_URLS],
        clean_environment(
            DJANGO_SETTINGS_MODULE="auction_site.settings.production",
            SECRET_KEY="k",
            RUN_ENV_FILE=str(state),
            **env,
        ),
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture
def state(tmp_path) -> Path:
    return write_state(
        tmp_path / "env",
        os.getpid(),
        DATABASE_URL="postgres://u:p@quickstart.invalid:54329/auction",
        REDIS_URL="redis://quickstart.invalid:63799/0",
    )


@pytest.mark.django_db(transaction=True)
def test_create_api_token_works_against_the_recorded_servers(tmp_path):
    """As the README's quick start: `.env` holds the SECRET_KEY scripts/run generated, the
    state file the servers' URLs; the shell sets nothing."""
    user = UserFactory(username="quickstart-alice")
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"SECRET_KEY={secrets.token_urlsafe(50)}\n")
    state = write_state(
        tmp_path / "run-env",
        os.getpid(),
        DATABASE_URL=database_url_for_servers(),
        REDIS_URL=settings.REDIS_URL,
    )
    env = clean_environment(ENV_FILE=str(dotenv), RUN_ENV_FILE=str(state))
    assert not any(name in env for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY"))

    result = run([*MANAGE, "create_api_token", user.username], env)

    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    assert api_token_user(token=token) == user


def test_the_state_file_names_the_servers(state):
    urls = settings_urls(state)
    assert urls["db"] == ["quickstart.invalid", 54329, "auction"]
    assert urls["redis"] == "redis://quickstart.invalid:63799/0"


@pytest.mark.parametrize(
    ("env", "expected_host", "expected_redis"),
    [
        (
            {"DATABASE_URL": "postgres://u:p@explicit:5432/x", "REDIS_URL": "redis://explicit/1"},
            "explicit",
            "redis://explicit/1",
        ),
        # The original design's names count as set too.
        ({"DB_URL": "postgres://u:p@alias:5432/x", "REDIS_ADDR": "alias:6380"}, "alias", None),
    ],
)
def test_variables_that_are_set_win(state, env, expected_host, expected_redis):
    urls = settings_urls(state, **env)
    assert urls["db"][0] == expected_host
    assert urls["redis"] == (expected_redis or "redis://alias:6380/0")


def test_a_file_whose_writer_is_gone_is_ignored(tmp_path):
    stale = write_state(
        tmp_path / "env",
        dead_pid(),
        DATABASE_URL="postgres://u:p@stale.invalid:1/x",
        REDIS_URL="redis://stale.invalid:1/0",
    )
    urls = settings_urls(stale)
    assert urls["db"][0] == "127.0.0.1"  # the built-in default
    assert "stale" not in urls["redis"]


# scripts/stack.py: the writer of the file.


def load_stack(path: Path):
    spec = importlib.util.spec_from_file_location(f"stack_{path.parent.parent.name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_stack_writes_the_file_privately_and_removes_only_its_own(tmp_path):
    stack = load_stack(REPO_ROOT / "scripts" / "stack.py")
    path = tmp_path / ".run" / "env"
    stack.write_run_env(path, {"DATABASE_URL": "postgres://a:secret@127.0.0.1:1/db"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "DATABASE_URL=postgres://a:secret@127.0.0.1:1/db" in path.read_text().splitlines()
    assert stack.run_env_owner(path) == os.getpid()

    # Another invocation's file (here: a gone one's) is not ours to remove.
    write_state(path, dead_pid(), DATABASE_URL="postgres://x")
    assert stack.run_env_owner(path) is None
    stack.remove_run_env(path)
    assert path.exists()

    stack.write_run_env(path, {"REDIS_URL": "redis://127.0.0.1:2/0"})
    stack.remove_run_env(path)
    assert not path.exists()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_stack_run_records_its_servers_while_it_runs_and_removes_the_record():
    """The real `scripts/stack.py run`, in a scratch checkout (its own .local/ and .run/):
    a manage.py started with no server variables reaches its PostgreSQL and Redis."""
    scratch = Path(tempfile.mkdtemp(prefix="auction-quickstart-"))
    try:
        scratch.chmod(0o711)  # PostgreSQL runs as `postgres` when we are root
        (scratch / "scripts").mkdir()
        shutil.copy(REPO_ROOT / "scripts" / "stack.py", scratch / "scripts" / "stack.py")
        state = scratch / ".run" / "env"
        probe = (
            "import django; django.setup(); "
            "from django.db import connection; from infra.redis import redis_client; "
            "connection.ensure_connection(); "
            "print('reached', connection.settings_dict['PORT'], redis_client().ping())"
        )
        # The command stack.py runs stands for a second shell: it drops what stack.py set.
        second_shell = [
            "env",
            *("-u", "DATABASE_URL", "-u", "REDIS_URL"),
            f"RUN_ENV_FILE={state}",
            "DJANGO_SETTINGS_MODULE=auction_site.settings.production",
            "SECRET_KEY=k",
            sys.executable,
            "-c",
            probe,
        ]
        pg_port, redis_port = free_port(), free_port()
        env = clean_environment(PG_PORT=str(pg_port), REDIS_PORT=str(redis_port))
        result = run(
            [sys.executable, str(scratch / "scripts" / "stack.py"), "run", "--", *second_shell],
            env,
            timeout=180,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"reached {pg_port} True" in result.stdout
        assert not state.exists(), "the record outlived the servers"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
