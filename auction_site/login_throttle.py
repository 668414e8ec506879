"""Login throttling: LOGIN_FAILURE_LIMIT failed logins per username and client address in
LOGIN_FAILURE_WINDOW_SECONDS, counted in Redis (so across every instance), then refusals
until the window ends.

`ThrottledModelBackend` replaces Django's ModelBackend, so every password login goes
through it: the site's login page, the admin's, and any later `authenticate()` caller (the
HTTP API has none: it takes API tokens, made by a logged-in user). While a username and
address are refused, the password is not even checked, and the refusal is the same whether
the user exists or not. The backend leaves the seconds to wait on the request
(`pages.accounts.LOGIN_RETRY_AFTER_ATTRIBUTE`), for the login page to answer 429 and say so.

A fixed window counter, not the bid limiter's token bucket (`bidding.ratelimit`): that one
meters every action as it happens; this counts failures only, and asks before a login
whether the count is reached, without spending anything. If Redis cannot be asked, logins
go on unthrottled (as bids do): the limit protects accounts, and must not lock everyone out.
"""

import hashlib
import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from accounts.models import User
from infra.redis import redis_client
from pages.accounts import LOGIN_RETRY_AFTER_ATTRIBUTE

logger = logging.getLogger(__name__)


def _key(username: str, address: str) -> str:
    identity = f"{username.casefold()}\0{address}".encode()
    return f"login:failures:{hashlib.sha256(identity).hexdigest()}"


def client_address(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR") or "-")


def login_retry_after(username: str, address: str) -> int:
    """0 if a login as username from address may be tried now, else the seconds to wait."""
    limit = settings.LOGIN_FAILURE_LIMIT
    if limit <= 0:
        return 0
    key = _key(username, address)
    try:
        pipeline = redis_client().pipeline(transaction=False)
        pipeline.get(key)
        pipeline.ttl(key)
        failures, ttl = pipeline.execute()
    except Exception:
        logger.warning("login throttling unavailable; allowing the login", exc_info=True)
        return 0
    if failures is None or int(failures) < limit:
        return 0
    return max(int(ttl), 1)


def login_failed(username: str, address: str) -> None:
    """Count a failure; the first one of a window starts it."""
    key = _key(username, address)
    try:
        pipeline = redis_client().pipeline(transaction=True)
        pipeline.set(key, 0, ex=settings.LOGIN_FAILURE_WINDOW_SECONDS, nx=True)
        pipeline.incr(key)
        pipeline.execute()
    except Exception:
        logger.warning("login throttling unavailable; failure not counted", exc_info=True)


def login_succeeded(username: str, address: str) -> None:
    try:
        redis_client().delete(_key(username, address))
    except Exception:
        logger.warning("login throttling unavailable", exc_info=True)


class ThrottledModelBackend(ModelBackend):
    """Django's username and password check, behind the failure limit."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        username = username or kwargs.get(User.USERNAME_FIELD)
        if request is None or not username:
            # Not a login from a client (a shell, a command): nothing to throttle by.
            return super().authenticate(request, username, password, **kwargs)
        address = client_address(request)
        if retry_after := login_retry_after(username, address):
            setattr(request, LOGIN_RETRY_AFTER_ATTRIBUTE, retry_after)
            logger.warning("login refused: too many failures (client=%s)", address)
            # authenticate() takes this to mean: stop, no other backend may try.
            raise PermissionDenied
        user = super().authenticate(request, username, password, **kwargs)
        if user is None:
            login_failed(username, address)
        else:
            login_succeeded(username, address)
        return user

    async def aauthenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        # ModelBackend's own async version would skip the limit.
        return await sync_to_async(self.authenticate)(request, username, password, **kwargs)
