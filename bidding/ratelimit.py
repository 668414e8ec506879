"""Bids per user per second, shared by every instance through Redis (a token bucket)."""

import logging
import math
import time
from collections.abc import Sequence
from functools import cache
from uuid import UUID

from django.conf import settings
from redis.commands.core import Script

from infra.redis import bid_path_redis_client

logger = logging.getLogger(__name__)

# Refill by elapsed time (Redis's own clock), take one token if there is one.
# KEYS[1] bucket; ARGV[1] tokens per second; ARGV[2] burst (bucket size); ARGV[3] TTL.
_TAKE_TOKEN = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
if tokens >= 1 then
    tokens = tokens - 1
    allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], ARGV[3])
return allowed
"""


# After Redis failed to answer, the limit is not asked for this long (in this process):
# one batch a second pays the short timeout, the others nothing.
RETRY_AFTER_SECONDS = 1.0
_skip_until = 0.0


@cache
def _take_token() -> Script:
    return bid_path_redis_client().register_script(_TAKE_TOKEN)


def bid_rates_allow(*, user_ids: Sequence[UUID]) -> list[bool]:
    """For each bid (by `user_ids`, in order): may it be placed now? One Redis round trip.

    BID_RATE_LIMIT per second per user, bursts of twice that; 0 turns the limit off. If
    Redis cannot be asked, the bids are allowed: the limit protects the service, and bids
    must not stop because Redis is away.
    """
    global _skip_until
    rate = settings.BID_RATE_LIMIT
    if rate <= 0 or not user_ids or time.monotonic() < _skip_until:
        return [True] * len(user_ids)
    burst = 2 * rate
    ttl = math.ceil(burst / rate) + 1
    try:
        pipeline = bid_path_redis_client().pipeline(transaction=False)
        for user_id in user_ids:
            _take_token()(
                keys=[f"ratelimit:bid:{user_id}"], args=[rate, burst, ttl], client=pipeline
            )
        return [bool(allowed) for allowed in pipeline.execute()]
    except Exception:
        _skip_until = time.monotonic() + RETRY_AFTER_SECONDS
        logger.warning("bid rate limit unavailable; allowing bids for a second", exc_info=True)
        return [True] * len(user_ids)
