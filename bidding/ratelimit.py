"""Bids per user per second, shared by every instance through Redis (a token bucket)."""

import logging
import math
from uuid import UUID

from django.conf import settings

from infra.redis import redis_client

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


def bid_rate_allows(*, user_id: UUID) -> bool:
    """True if `user_id` may place another bid now: BID_RATE_LIMIT per second, bursts of 2x.

    BID_RATE_LIMIT=0 turns the limit off. If Redis cannot be asked, the bid is allowed:
    the limit protects the service, and bids must not stop because Redis is away.
    """
    rate = settings.BID_RATE_LIMIT
    if rate <= 0:
        return True
    burst = 2 * rate
    try:
        client = redis_client()
        allowed = client.eval(
            _TAKE_TOKEN, 1, f"ratelimit:bid:{user_id}", rate, burst, math.ceil(burst / rate) + 1
        )
    except Exception:
        logger.warning("bid rate limit unavailable; allowing the bid", exc_info=True)
        return True
    return bool(allowed)
