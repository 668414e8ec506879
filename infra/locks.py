"""A Redis lock held by one owner: `SET key token NX EX ttl`, released only by its owner."""

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from infra.redis import redis_client

# Delete the key only if it still holds our token: a lock that expired and was taken by
# someone else is theirs, not ours to free.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


@contextmanager
def redis_lock(key: str, *, ttl_seconds: int = 30) -> Iterator[bool]:
    """Try to take `key` for at most `ttl_seconds`; yields whether we hold it."""
    client = redis_client()
    token = secrets.token_hex(16)
    acquired = bool(client.set(key, token, nx=True, ex=ttl_seconds))
    try:
        yield acquired
    finally:
        if acquired:
            client.eval(_RELEASE, 1, key, token)
