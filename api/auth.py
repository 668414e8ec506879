"""HTTP API authentication: an API token (`Authorization: Bearer`) or the Django session."""

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from ninja.errors import AuthenticationError, AuthorizationError
from ninja.security import APIKeyCookie, HttpBearer

from accounts.models import User
from accounts.services import api_token_user


class BearerTokenAuth(HttpBearer):
    """`Authorization: Bearer <token>`, a token from the account page or `create_api_token`."""

    def __call__(self, request: HttpRequest) -> User | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            # No token offered (or another scheme, e.g. a proxy's Basic auth): try the session.
            return None
        return self.authenticate(request, token.strip())

    def authenticate(self, request: HttpRequest, token: str) -> User:
        user = api_token_user(token=token)
        if user is None:
            # A client that sent a token meant to use it: never fall back to a session.
            raise AuthenticationError(message="The API token is invalid or has been revoked.")
        return user


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request: HttpRequest, reason: str) -> Any:
        # Return the reason instead of an HTML 403 page, so the API can answer in JSON.
        return reason


def _no_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse()  # never called: the check only needs a view to look at


def _csrf_failure(request: HttpRequest) -> str | None:
    """Why the request fails Django's CSRF check, or None if it passes."""
    check = _CsrfCheck(_no_view)
    # Ninja views are csrf_exempt for the middleware; run the check here instead.
    request.csrf_processing_done = False  # type: ignore[attr-defined]
    check.process_request(request)
    reason: str | None = check.process_view(request, _no_view, (), {})  # type: ignore[assignment]
    return reason


class SessionCookieAuth(APIKeyCookie):
    """The browser's Django session; unsafe methods must pass the CSRF check too."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self) -> None:
        # csrf=True tells the API docs page to send the CSRF token; the check itself is ours.
        super().__init__(csrf=True)

    def __call__(self, request: HttpRequest) -> User | None:
        user = getattr(request, "user", None)
        if not isinstance(user, User) or not user.is_authenticated:
            return None
        # The CSRF check only matters once a session is what identifies the caller.
        if not getattr(request, "_ninja_csrf_exempt", False) and (reason := _csrf_failure(request)):
            raise AuthorizationError(message=f"CSRF check failed: {reason}")
        return user

    def _get_key(self, request: HttpRequest) -> str | None:
        return request.COOKIES.get(self.param_name)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        return self(request)


# Token first: an API client that sends one is judged by it alone.
api_auth = [BearerTokenAuth(), SessionCookieAuth()]
