"""Scheduling tests run against the real Redis; each starts with an empty schedule."""

import pytest

from auctions.schedule_index import KINDS, claimed_key, schedule_key
from infra.redis import redis_client


def clear_schedule() -> None:
    client = redis_client()
    client.delete(*[schedule_key(kind) for kind in KINDS], *[claimed_key(kind) for kind in KINDS])
    for key in client.scan_iter("auction:end:*"):
        client.delete(key)


@pytest.fixture(autouse=True)
def empty_schedule():
    clear_schedule()
    yield
    clear_schedule()


def members(kind: str) -> dict[str, float]:
    return {
        m.decode(): s for m, s in redis_client().zrange(schedule_key(kind), 0, -1, withscores=True)
    }


def claimed(kind: str) -> set[str]:
    return {m.decode() for m in redis_client().zrange(claimed_key(kind), 0, -1)}
