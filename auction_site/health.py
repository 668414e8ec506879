"""Liveness (`/healthz`) and readiness (`/readyz`: PostgreSQL and Redis reachable) probes."""

import logging

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)

# A probe must answer quickly, whatever state Redis is in.
REDIS_TIMEOUT_SECONDS = 1.0


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving requests; touches neither the database nor Redis."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """200 when PostgreSQL and Redis both answer; 503 naming the one that did not."""
    checks = {"database": _check_database(), "redis": _check_redis()}
    ready = all(result == "ok" for result in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        # Details go to the log, not to an unauthenticated caller.
        logger.warning("readiness: database unreachable", exc_info=True)
        return "unavailable"
    return "ok"


def _check_redis() -> str:
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
        )
        with client:
            client.ping()
    except Exception:
        logger.warning("readiness: redis unreachable", exc_info=True)
        return "unavailable"
    return "ok"
