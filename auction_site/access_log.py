"""Access lines (spec §11): one INFO line per HTTP request and per WebSocket connection.

HTTP: `AccessLogMiddleware`, first in MIDDLEWARE, logs the method, path, status, duration
and user (the session's, or an API token's: django-ninja's `request.auth`) once the response
is ready. WebSocket: `WebSocketAccessLog`, around the WebSocket application in
`auction_site.asgi`, logs one line when the connection ends: how long it lasted, its close
code, the messages the client sent and the user (noted by `WebSocketUser`, which sits inside
the authentication middleware). Messages sent are not counted: live events reach daphne's
transport without passing through ASGI's `send` (`realtime.internals.DirectTextSender`).

Paths are logged without their query string (a WebSocket's may carry an API token). A user
the request never looked up is logged as "-": looking it up only to log it would cost a
query per request. daphne repeats none of this when started with `-v0` (its own access log
off), as the Procfile, the Dockerfile and docker-compose.yml start it.
"""

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.functional import LazyObject, empty

logger = logging.getLogger("auction_site.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]

# Where WebSocketAccessLog leaves the connection's record in the scope, for WebSocketUser.
SCOPE_KEY = "auction_site.access_log"


def username(user: object) -> str:
    """The username of an authenticated user, or "-"; never loads a user not yet loaded."""
    if isinstance(user, LazyObject) and getattr(user, "_wrapped", empty) is empty:
        return "-"
    if getattr(user, "is_authenticated", False):
        return str(user.get_username())  # type: ignore[attr-defined]
    return "-"


def _client(address: object) -> str:
    if isinstance(address, list | tuple) and address:
        return str(address[0])
    return str(address) if address else "-"


def _request_user(request: HttpRequest) -> str:
    auth = getattr(request, "auth", None)  # django-ninja: whom the API request identified
    if auth is not None and (name := username(auth)) != "-":
        return name
    # request.__dict__: the lazy object AuthenticationMiddleware left, without evaluating it.
    return username(request.__dict__.get("user"))


def log_request(request: HttpRequest, response: HttpResponseBase, started: float) -> None:
    duration_ms = (time.perf_counter() - started) * 1000
    fields = {
        "method": request.method,
        "path": request.path,
        "status": response.status_code,
        "duration_ms": round(duration_ms, 1),
        "user": _request_user(request),
        "client": _client(request.META.get("REMOTE_ADDR")),
    }
    logger.info(
        "%s %s %s %.1fms user=%s client=%s",
        fields["method"],
        fields["path"],
        fields["status"],
        duration_ms,
        fields["user"],
        fields["client"],
        extra=fields,
    )


class AccessLogMiddleware:
    """Django middleware (sync and async): one access line per HTTP request."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._call_async(request)
        started = time.perf_counter()
        response: HttpResponseBase = self.get_response(request)
        log_request(request, response, started)
        return response

    async def _call_async(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response: HttpResponseBase = await self.get_response(request)
        log_request(request, response, started)
        return response


class WebSocketConnection:
    """What the access line of one WebSocket connection says, noted as its messages pass.

    Its `send` is a bound method of an object whose `real_send` is the server's send: that
    is how `realtime.internals` finds daphne's transport behind the middleware stack.
    """

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.real_send = send
        self._receive = receive
        self.started = time.perf_counter()
        self.path = str(scope.get("path", ""))
        self.client = _client(scope.get("client"))
        self.user = "-"
        self.accepted = False
        self.close_code: int | None = None
        self.messages_in = 0

    async def receive(self) -> Message:
        message = await self._receive()
        kind = message.get("type")
        if kind == "websocket.receive":
            self.messages_in += 1
        elif kind == "websocket.disconnect" and self.close_code is None:
            self.close_code = message.get("code")
        return message

    async def send(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "websocket.accept":
            self.accepted = True
        elif kind == "websocket.close" and self.close_code is None:
            self.close_code = message.get("code") or 1000
        await self.real_send(message)

    def log(self) -> None:
        duration_ms = (time.perf_counter() - self.started) * 1000
        # A handshake closed before it was accepted is refused: the client sees HTTP 403.
        outcome = f"close={self.close_code or '-'}" if self.accepted else "refused=403"
        fields = {
            "method": "WEBSOCKET",
            "path": self.path,
            "accepted": self.accepted,
            "close_code": self.close_code if self.accepted else None,
            "status": None if self.accepted else 403,
            "duration_ms": round(duration_ms, 1),
            "messages_in": self.messages_in,
            "user": self.user,
            "client": self.client,
        }
        logger.info(
            "WEBSOCKET %s %s %.0fms in=%d user=%s client=%s",
            self.path,
            outcome,
            duration_ms,
            self.messages_in,
            self.user,
            self.client,
            extra=fields,
        )


class WebSocketAccessLog:
    """ASGI middleware around the WebSocket application: a line when a connection ends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "websocket":
            await self.app(scope, receive, send)
            return
        connection = WebSocketConnection(scope, receive, send)
        try:
            await self.app({**scope, SCOPE_KEY: connection}, connection.receive, connection.send)
        finally:
            connection.log()


class WebSocketUser:
    """Inside the authentication middleware: tells the connection's access line its user."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        connection = scope.get(SCOPE_KEY)
        if isinstance(connection, WebSocketConnection):
            connection.user = username(scope.get("user"))
        await self.app(scope, receive, send)
