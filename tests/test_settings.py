"""Configuration (spec §5): environment names, aliases, JSON logs, and a required SECRET_KEY."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PRINT_SETTINGS = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'db': s.DATABASES['default'], 'redis': s.REDIS_URL, "
    "'debug': s.DEBUG, 'hosts': s.ALLOWED_HOSTS, 'ws': s.WS_MAX_MESSAGE_BYTES, "
    "'subs': s.WS_MAX_SUBSCRIPTIONS, 'rate': s.BID_RATE_LIMIT, "
    "'broker': s.CELERY_BROKER_URL}, default=str))"
)


def run_python(code: str, module: str = "auction_site.settings.production", **env: str):
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    # ENV_FILE=/dev/null: a developer's .env must not leak into these checks.
    clean.update({"DJANGO_SETTINGS_MODULE": module, "SECRET_KEY": "k", "ENV_FILE": "/dev/null"})
    clean.update(env)
    clean = {k: v for k, v in clean.items() if v is not None and v != "<unset>"}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def settings_with(**env: str) -> dict:
    result = run_python(PRINT_SETTINGS, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_database_url_is_read():
    db = settings_with(DATABASE_URL="postgres://u:p@db.example:5433/auctions")["db"]
    assert (db["HOST"], db["PORT"], db["NAME"], db["USER"]) == ("db.example", 5433, "auctions", "u")


def test_db_url_is_an_alias_of_database_url():
    db = settings_with(DB_URL="postgres://u:p@other:5432/x?sslmode=disable")["db"]
    assert (db["HOST"], db["NAME"]) == ("other", "x")


def test_redis_url_is_read():
    assert settings_with(REDIS_URL="redis://cache:6380/3")["redis"] == "redis://cache:6380/3"


def test_the_broker_is_redis_url_unless_celery_broker_url_names_its_own():
    assert settings_with(REDIS_URL="redis://cache:6380/3")["broker"] == "redis://cache:6380/3"
    own = settings_with(REDIS_URL="redis://cache:6380/3", CELERY_BROKER_URL="redis://q:6379/0")
    assert own["broker"] == "redis://q:6379/0"


def test_redis_addr_password_and_db_make_a_redis_url():
    redis = settings_with(REDIS_ADDR="cache:6381", REDIS_PASSWORD="p@ss", REDIS_DB="2")["redis"]
    assert redis == "redis://:p%40ss@cache:6381/2"


def test_limits_and_lists_are_read():
    values = settings_with(
        WS_MAX_MESSAGE_BYTES="1024",
        WS_MAX_SUBSCRIPTIONS="7",
        BID_RATE_LIMIT="3",
        ALLOWED_HOSTS="a.example,b.example",
        DEBUG="true",
    )
    assert (values["ws"], values["subs"], values["rate"]) == (1024, 7, 3)
    assert values["hosts"] == ["a.example", "b.example"]
    assert values["debug"] is True


def test_limits_have_the_spec_defaults():
    values = settings_with()
    assert (values["ws"], values["subs"], values["rate"]) == (65536, 100, 10)
    assert values["debug"] is False


def test_production_refuses_to_start_without_secret_key():
    result = run_python("import django; django.setup()", SECRET_KEY="<unset>")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


@pytest.mark.parametrize(("log_format", "is_json"), [("json", True), ("text", False)])
def test_log_format_selects_json_lines_or_text(log_format, is_json):
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('auctions').warning('bid %s accepted', 7)"
    )
    result = run_python(code, LOG_FORMAT=log_format)
    assert result.returncode == 0, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    if is_json:
        record = json.loads(line)
        assert record["message"] == "bid 7 accepted"
        assert record["level"] == "WARNING"
        assert record["logger"] == "auctions"
    else:
        assert "WARNING auctions: bid 7 accepted" in line


def test_a_replica_url_adds_the_replica_database_mirrored_in_tests():
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({k: [v['HOST'], v['PORT'], v.get('TEST', {}).get('MIRROR')] "
        "for k, v in s.DATABASES.items()}))"
    )
    result = run_python(
        code,
        DATABASE_URL="postgres://u@primary:5432/a",
        DATABASE_REPLICA_URL="postgres://u@standby:5433/a",
    )
    assert result.returncode == 0, result.stderr
    databases = json.loads(result.stdout.strip().splitlines()[-1])
    assert databases["default"][:2] == ["primary", 5432]
    assert databases["replica"] == ["standby", 5433, "default"]
