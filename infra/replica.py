"""Reads a streaming replica may serve, and read-your-writes (spec §10).

With `DATABASE_REPLICA_URL` set, the pages' and the API's lists and histories are read
from the `replica` database, except for someone who wrote in the last
REPLICA_READ_YOUR_WRITES_SECONDS: they read the primary, so what they just did shows. Who
wrote is kept in Redis (every instance sees it), with that TTL. Bids, snapshots, events
for gap fill and everything read under a lock always use the primary: callers opt in.
"""

import logging
from uuid import UUID

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from infra.redis import redis_client

logger = logging.getLogger(__name__)

REPLICA = "replica"


def replica_configured() -> bool:
    return REPLICA in connections.databases


def _key(user_id: UUID) -> str:
    return f"wrote:{user_id}"


def reads_for(user_id: UUID | None) -> str:
    """The database alias a list or a history should be read from for this reader (None:
    someone not signed in, who wrote nothing)."""
    if not replica_configured():
        return DEFAULT_DB_ALIAS
    if user_id is None:
        return REPLICA
    try:
        wrote = bool(redis_client().exists(_key(user_id)))
    except Exception:  # Redis is away: the primary is always right
        logger.warning("read-your-writes unknown; reading the primary", exc_info=True)
        return DEFAULT_DB_ALIAS
    return DEFAULT_DB_ALIAS if wrote else REPLICA


def wrote(user_id: UUID) -> None:
    """`user_id` just wrote: their lists and histories come from the primary for a while."""
    if not replica_configured():
        return
    try:
        redis_client().set(_key(user_id), "1", ex=settings.REPLICA_READ_YOUR_WRITES_SECONDS)
    except Exception:
        logger.warning("could not note a write for read-your-writes", exc_info=True)
