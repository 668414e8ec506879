"""The process's synchronous Redis client (rate limits, publishing, the schedule)."""

from functools import cache

import redis
from django.conf import settings

# Calls on the request path must fail fast when Redis is away, not hang.
SOCKET_TIMEOUT_SECONDS = 2.0


@cache
def redis_client() -> redis.Redis:
    """One pooled, thread-safe client per process."""
    return redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        health_check_interval=30,
    )
