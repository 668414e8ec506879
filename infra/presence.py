"""Live viewer counts across instances (spec §8), kept in Redis: the layout and the reads.

Each web process (an "instance", with an id of its own) counts the WebSocket connections it
has subscribed to each auction, and reports them (once a tick all of them, and on a join the
auction joined) with one script call, which answers with the other live instances' counts:

- `viewers:{auction_id}`: a hash, instance id → that instance's count (no field for 0);
- `viewers:instances`: a sorted set, instance id → the Redis time (ms) its heartbeat
  runs out; every report moves its own on by the TTL.

An instance that dies stops reporting, its heartbeat runs out, and from then on its fields
count for nobody: the next report (of any instance following the auction) deletes them.
Keys expire a TTL after the last report that touched them, so nothing outlives the last
instance. Time is Redis's own (`TIME`), so the machines' clocks need not agree.

The scripts name every key they touch in KEYS except the heartbeat set's members, which
are values; all keys live on the one Redis of `REDIS_URL`.

No Channels here: the API reads counts (`viewers_count`), and realtime.viewers reports them
(`PresenceStore.report`, on the event loop).
"""

import hashlib
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio
from django.conf import settings
from redis.exceptions import NoScriptError

from infra.redis import SOCKET_TIMEOUT_SECONDS, redis_client

INSTANCES_KEY = "viewers:instances"
# Auctions reported in one script call at most: a process following more makes several
# calls a tick, so no single call holds Redis up for long.
REPORT_CHUNK = 1000

_NOW_MS = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

# KEYS[1] the heartbeat set, KEYS[2..] the auctions' hashes; ARGV[1] this instance's id,
# ARGV[2] the TTL in ms, ARGV[3..] this instance's count for each hash, in KEYS' order.
# Writes this instance's counts and heartbeat, drops instances whose heartbeat ran out,
# and returns, per hash, the count of every other live instance together.
REPORT_SCRIPT = (
    # Redis before 5 refuses writes after TIME unless told to replicate effects.
    "if redis.replicate_commands then redis.replicate_commands() end\n"
    + _NOW_MS
    + """
local me, ttl = ARGV[1], tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + ttl, me)
redis.call('PEXPIRE', KEYS[1], ttl)
local alive = {[me] = true}
local others = {}
for i = 2, #KEYS do
    local key, count = KEYS[i], tonumber(ARGV[i + 1])
    if count > 0 then
        redis.call('HSET', key, me, count)
    else
        redis.call('HDEL', key, me)
    end
    local fields = redis.call('HGETALL', key)
    local total = 0
    for j = 1, #fields, 2 do
        local who = fields[j]
        if alive[who] == nil then
            alive[who] = redis.call('ZSCORE', KEYS[1], who) ~= false
        end
        if not alive[who] then
            redis.call('HDEL', key, who)
        elseif who ~= me then
            total = total + tonumber(fields[j + 1])
        end
    end
    if #fields > 0 then
        redis.call('PEXPIRE', key, ttl)
    end
    others[#others + 1] = total
end
return others
"""
)

# KEYS[1] the heartbeat set, KEYS[2..] the auctions' hashes; ARGV[1] an instance to leave
# out ('' for none). Returns, per hash, the count of the live instances. Writes nothing.
# (Heartbeats that ran out may still be in the set: they are judged by their deadline.)
COUNT_SCRIPT = (
    _NOW_MS
    + """
local others = {}
for i = 2, #KEYS do
    local fields = redis.call('HGETALL', KEYS[i])
    local total = 0
    for j = 1, #fields, 2 do
        local who = fields[j]
        local deadline = redis.call('ZSCORE', KEYS[1], who)
        if who ~= ARGV[1] and deadline and tonumber(deadline) > now then
            total = total + tonumber(fields[j + 1])
        end
    end
    others[#others + 1] = total
end
return others
"""
)


def _sha(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()


REPORT_SHA = _sha(REPORT_SCRIPT)
COUNT_SHA = _sha(COUNT_SCRIPT)


def viewers_key(auction_id: str) -> str:
    return f"viewers:{auction_id}"


def _keys(auction_ids: Sequence[str]) -> list[str]:
    return [INSTANCES_KEY, *(viewers_key(auction_id) for auction_id in auction_ids)]


def _counts(reply: Any, auction_ids: Sequence[str]) -> dict[str, int]:
    return {auction_id: int(count) for auction_id, count in zip(auction_ids, reply, strict=True)}


# Reading, for the HTTP API (synchronous: the process's shared client).


def viewers_count(auction_id: str) -> int | None:
    """Connections subscribed to the auction on all live instances; None if Redis is away."""
    client = redis_client()
    keys = _keys([auction_id])
    try:
        try:
            reply = client.evalsha(COUNT_SHA, len(keys), *keys, "")
        except NoScriptError:
            reply = client.eval(COUNT_SCRIPT, len(keys), *keys, "")
    except redis.RedisError:
        return None
    return _counts(reply, [auction_id])[auction_id]


# Reporting and reading, for realtime.viewers (asyncio: a client of the event loop's own).


class PresenceStore:
    """One instance's side of the counts, on an asyncio Redis client made when first used."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url if url is not None else settings.REDIS_URL
        self._client: redis.asyncio.Redis | None = None

    @property
    def client(self) -> redis.asyncio.Redis:
        if self._client is None:
            self._client = redis.asyncio.Redis.from_url(
                self.url,
                socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
                socket_timeout=SOCKET_TIMEOUT_SECONDS,
            )
        return self._client

    async def _run(self, sha: str, script: str, keys: list[str], args: list[str]) -> Any:
        try:
            return await self.client.evalsha(sha, len(keys), *keys, *args)
        except NoScriptError:  # Redis restarted or flushed its scripts: send it again
            return await self.client.eval(script, len(keys), *keys, *args)

    async def report(
        self, instance_id: str, counts: dict[str, int], ttl_seconds: float
    ) -> dict[str, int]:
        """Write this instance's counts and heartbeat; the other live instances' counts.

        One script call per `REPORT_CHUNK` auctions (one call a tick, short of that), and
        one call for the heartbeat alone when there is nothing to count.
        """
        ttl_ms = str(max(1, round(ttl_seconds * 1000)))
        auction_ids = list(counts)
        others: dict[str, int] = {}
        for start in range(0, max(len(auction_ids), 1), REPORT_CHUNK):
            chunk = auction_ids[start : start + REPORT_CHUNK]
            args = [instance_id, ttl_ms, *(str(counts[auction_id]) for auction_id in chunk)]
            reply = await self._run(REPORT_SHA, REPORT_SCRIPT, _keys(chunk), args)
            others.update(_counts(reply, chunk))
        return others

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
