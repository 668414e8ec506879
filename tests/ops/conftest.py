"""Helpers for the operations tests: processes started as an operator would start them."""

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MANAGE = [sys.executable, str(REPO_ROOT / "manage.py")]

# What the test command (or a developer's shell) may have set that these tests set themselves.
SERVER_VARIABLES = (
    "DATABASE_URL",
    "DB_URL",
    "REDIS_URL",
    "REDIS_ADDR",
    "REDIS_PASSWORD",
    "REDIS_DB",
    "DJANGO_SETTINGS_MODULE",
    "PYTEST_CURRENT_TEST",
)


def clean_environment(**env: str) -> dict[str, str]:
    """os.environ without the servers' URLs and the settings module, plus env; no file a
    developer keeps (.env, .run/env) is read unless env names one."""
    clean = {k: v for k, v in os.environ.items() if k not in SERVER_VARIABLES}
    clean.update(ENV_FILE="/dev/null", RUN_ENV_FILE="/dev/null")
    clean.update(env)
    return {k: v for k, v in clean.items() if v != "<unset>"}


def run(
    command: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
