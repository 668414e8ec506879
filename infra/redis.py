"""The process's synchronous Redis client (rate limits, publishing, the schedule)."""

from functools import cache

import redis
from django.conf import settings

# Calls on the request path must fail fast when Redis is away, not hang.
SOCKET_TIMEOUT_SECONDS = 2.0
# The bid path's calls (the rate limit) wait far less: a Redis that hangs, rather than
# refuses, must cost a bid milliseconds, not seconds (issue 14).
BID_PATH_TIMEOUT_SECONDS = 0.025


def _client(url: str, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_connect_timeout=timeout, socket_timeout=timeout, health_check_interval=30
    )


@cache
def bid_path_redis_client() -> redis.Redis:
    """A client that gives up after BID_PATH_TIMEOUT_SECONDS (its own small pool)."""
    return _client(settings.REDIS_URL, BID_PATH_TIMEOUT_SECONDS)


@cache
def layer_shard_clients() -> list[redis.Redis]:
    """A client per channel-layer Redis server (CHANNEL_REDIS_URLS), in the layer's order."""
    return [_client(url, SOCKET_TIMEOUT_SECONDS) for url in settings.CHANNEL_REDIS_URLS]


@cache
def redis_client() -> redis.Redis:
    """One pooled, thread-safe client per process."""
    return _client(settings.REDIS_URL, SOCKET_TIMEOUT_SECONDS)
