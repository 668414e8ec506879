"""Who may open a WebSocket: same-site browsers (Origin) and identified users (session or token)."""

import logging
from typing import Any
from urllib.parse import parse_qs

from channels.auth import AuthMiddleware
from channels.middleware import BaseMiddleware
from channels.security.websocket import OriginValidator
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError

from accounts.services import api_token_check
from realtime.db import in_db_thread

logger = logging.getLogger(__name__)


class SameSiteOrTokenOriginValidator(OriginValidator):
    """Refuse cross-site handshakes; one without Origin (not a browser) is judged by its token.

    Browsers always send Origin on a WebSocket handshake, so a missing Origin cannot be
    a cross-site page riding on someone's session cookie.
    """

    def valid_origin(self, parsed_origin: Any) -> bool:
        return parsed_origin is None or self.validate_origin(parsed_origin)


def bearer_token(scope: dict[str, Any]) -> str | None:
    """The API token of a handshake: `Authorization: Bearer …`, or `?token=…`."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = bytes(value).decode("latin1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    query = parse_qs(scope.get("query_string", b"").decode("latin1"))
    tokens: list[str] | None = query.get("token")
    return tokens[0] if tokens else None


class TokenAuthMiddleware(BaseMiddleware):
    """A handshake that offers a token is judged by it alone, never by the session; so is
    one without Origin (not a browser), which therefore needs a token (spec §2)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        token = bearer_token(scope)
        if token is not None:
            try:
                record = await in_db_thread(api_token_check)(token=token)
            except DatabaseError:
                logger.warning("a handshake's token could not be checked", exc_info=True)
                scope = dict(scope, user=AnonymousUser(), database_unavailable=True)
                return await super().__call__(scope, receive, send)
            if record is None:
                scope = dict(scope, user=AnonymousUser())
            else:
                # The token's id: revoking it closes this connection (realtime.consumers).
                scope = dict(scope, user=record.user, api_token_id=str(record.id))
        elif not any(name == b"origin" for name, _ in scope.get("headers", [])):
            scope = dict(scope, user=AnonymousUser())
        return await super().__call__(scope, receive, send)


class SessionAuthMiddleware(AuthMiddleware):
    """Channels' session auth, except that a database it cannot reach makes the handshake
    end with 4503 (which clients retry), not fail as an HTTP 500."""

    async def resolve_scope(self, scope: Any) -> None:
        try:
            await super().resolve_scope(scope)
        except DatabaseError:
            logger.warning("a handshake's session could not be read", exc_info=True)
            scope["user"]._wrapped = AnonymousUser()
            scope["database_unavailable"] = True


def websocket_stack(app: Any) -> Any:
    sessions = CookieMiddleware(SessionMiddleware(SessionAuthMiddleware(TokenAuthMiddleware(app))))
    return SameSiteOrTokenOriginValidator(sessions, settings.ALLOWED_HOSTS)
