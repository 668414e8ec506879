"""The HTTP JSON API (spec §3): the NinjaAPI instance, its routers, and every error as JSON."""

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.urls import URLPattern, URLResolver
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.openapi.schema import OpenAPISchema
from ninja.operation import Operation

from api import auctions, bids, catalogue, notifications
from api.auth import api_auth
from api.base import (
    METHOD_NOT_ALLOWED,
    PRECONDITION_REQUIRED,
    REQUEST_TOO_LARGE,
    STATUS_BY_CODE,
    BodyNotObject,
    DecimalJSONParser,
    ExactJSONRenderer,
    InvalidJSONBody,
)
from auctions.errors import Code, DomainError

logger = logging.getLogger(__name__)

DESCRIPTION = """\
JSON over HTTP for the auction service (spec §3).

**Authentication.** Every operation, reads included, needs an identity: either
`Authorization: Bearer <token>` (tokens come from the account page or
`python manage.py create_api_token <username>`) or the Django session cookie of a
logged-in browser. With the session, unsafe methods (POST) must pass Django's CSRF check
(`X-CSRFToken` header). A request that sends a Bearer token is judged by that token alone.

**Money.** Amounts are accepted as JSON numbers (parsed exactly, never through binary
floating point) or numeric strings, and returned as strings with 2 decimals (`"150.10"`).
Times are ISO 8601 with a time zone; they are returned in UTC.

**Errors.** Every error is `{"code": ..., "message": ...}`, with `data` where there is
more to say; `bid_rejected` codes carry `current_price` and `min_next_bid`.

**Lists.** `{"count": N, "next": URL or null, "results": [...]}` with `?limit=`
(1 to 500, default 50) and `?offset=`.
"""


def error_response(
    request: HttpRequest,
    status: int,
    code: str,
    message: str,
    data: dict[str, Any] | None = None,
) -> HttpResponse:
    """The one shape of every API error: `{"code", "message"}` plus `data` when there is some."""
    body: dict[str, Any] = {"code": str(code), "message": message}
    if data:
        body["data"] = data
    response = api.create_response(request, body, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def _domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return error_response(
        request, STATUS_BY_CODE.get(exc.code, 400), exc.code, exc.message, exc.data
    )


def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = [_field_error(error) for error in exc.errors]
    first = errors[0] if errors else {"field": "", "message": "Invalid request."}
    message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
    # A bad query parameter is a bad request (400); a body that does not validate, 422.
    status = 400 if errors and all(e["location"] == "query" for e in errors) else 422
    return error_response(request, status, Code.VALIDATION_ERROR, message, {"errors": errors})


def _field_error(error: dict[str, Any]) -> dict[str, str]:
    """A pydantic error as `{"location", "field", "message"}`, e.g. query / limit / …."""
    location, *path = [str(part) for part in error.get("loc", ())] or [""]
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    if location == "body":
        # Ninja names the body parameter itself (e.g. "payload"); clients know only the fields.
        if len(path) == 1 and error.get("type") == "missing":
            return {"location": location, "field": "", "message": "A JSON body is required."}
        path = path[1:]
    return {"location": location, "field": ".".join(path), "message": message}


def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    # Ninja wraps what the parser raised in HttpError(400).
    if isinstance(exc.__cause__, InvalidJSONBody):
        return error_response(request, 400, Code.INVALID_JSON, str(exc.__cause__))
    if isinstance(exc.__cause__, BodyNotObject):
        return error_response(request, 422, Code.VALIDATION_ERROR, str(exc.__cause__))
    if isinstance(exc, AuthenticationError) or exc.status_code == 401:
        message = exc.message if exc.message != "Unauthorized" else "Authentication required."
        return error_response(request, 401, Code.NOT_AUTHENTICATED, message)
    if exc.status_code == 403:
        return error_response(request, 403, Code.PERMISSION_DENIED, exc.message)
    if exc.status_code == 404:
        return error_response(request, 404, Code.NOT_FOUND, exc.message)
    if exc.status_code == 429:
        return error_response(request, 429, Code.RATE_LIMITED, exc.message)
    if exc.status_code == 428:
        return error_response(request, 428, PRECONDITION_REQUIRED, exc.message)
    return error_response(request, exc.status_code, Code.VALIDATION_ERROR, exc.message)


def _not_found(request: HttpRequest, exc: Exception) -> HttpResponse:
    return error_response(request, 404, Code.NOT_FOUND, "Not found.")


def _permission_denied(request: HttpRequest, exc: Exception) -> HttpResponse:
    return error_response(request, 403, Code.PERMISSION_DENIED, str(exc) or "You may not do this.")


def _bad_multipart(request: HttpRequest, exc: Exception) -> HttpResponse:
    return error_response(request, 400, Code.VALIDATION_ERROR, f"Bad multipart body: {exc}")


def _unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.warning("the database is unavailable; answered 503", exc_info=True)
    response = error_response(
        request,
        503,
        Code.UNAVAILABLE,
        "The service cannot reach its database right now; nothing was changed. Try again "
        "in a moment (a bid with the same request_id is decided once).",
    )
    response["Retry-After"] = "1"
    return response


def _too_large(request: HttpRequest, exc: Exception) -> HttpResponse:
    return error_response(request, 413, REQUEST_TOO_LARGE, "The request body is too large.")


def api_not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    """Any path under /api/ that names no endpoint (routed after the API's own URLs)."""
    hint = "" if request.path.endswith("/") else " API paths end with a slash."
    return error_response(
        request, 404, Code.NOT_FOUND, f"No such API endpoint: {request.path}.{hint}"
    )


def _json_errors(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Errors ninja answers outside its exception handlers (405, the API root) as JSON too."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            response = view(request, *args, **kwargs)
        except Http404:
            return api_not_found(request)
        if response.status_code == 405 and "json" not in response.get("Content-Type", ""):
            allowed = response.get("Allow", "")
            json_response = error_response(
                request,
                405,
                METHOD_NOT_ALLOWED,
                f"{request.method} is not allowed here; allowed: {allowed}.",
            )
            json_response["Allow"] = allowed
            return json_response
        return response

    return wrapped


def _body_object_when_sent(operation: dict[str, Any]) -> None:
    """An optional body (`payload: X | None = None`) may be left out, but when sent it is
    the object: ninja documents it as "X or null", and the parser refuses null."""
    body = operation.get("requestBody")
    if not body or body.get("required"):
        return
    for content in body["content"].values():
        choices = content["schema"].get("anyOf", [])
        objects = [choice for choice in choices if choice != {"type": "null"}]
        if len(objects) == 1 and len(choices) == 2:
            content["schema"] = objects[0]


class AuctionAPI(NinjaAPI):
    """NinjaAPI whose every error is JSON."""

    @property
    def urls(self) -> tuple[list[URLPattern | URLResolver], str, str]:
        patterns, app_name, namespace = super().urls
        wrapped = [
            URLPattern(p.pattern, _json_errors(p.callback), p.default_args, p.name)
            if isinstance(p, URLPattern)
            else p
            for p in patterns
        ]
        return wrapped, app_name, namespace

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        for operations in schema["paths"].values():
            for operation in operations.values():
                _body_object_when_sent(operation)
        return schema

    def get_openapi_operation_id(self, operation: Operation) -> str:
        # The view's name ("place_bid") rather than the default module-qualified one.
        return operation.view_func.__name__


api = AuctionAPI(
    title="Auction service API",
    version="1",
    description=DESCRIPTION,
    auth=api_auth,
    parser=DecimalJSONParser(),
    renderer=ExactJSONRenderer(),
    urls_namespace="api",
)
HANDLERS: list[tuple[type[Exception], Callable[[HttpRequest, Any], HttpResponse]]] = [
    (DomainError, _domain_error),
    (ValidationError, _validation_error),
    (HttpError, _http_error),
    (Http404, _not_found),
    (DjangoPermissionDenied, _permission_denied),
    (RequestDataTooBig, _too_large),
    (MultiPartParserError, _bad_multipart),
    (OperationalError, _unavailable),
    (InterfaceError, _unavailable),
]
for exception, handler in HANDLERS:
    api.add_exception_handler(exception, handler)
api.add_router("/auctions/", auctions.router)
api.add_router("/auctions/", bids.router)
api.add_router("/items/", catalogue.items)
api.add_router("/categories/", catalogue.categories)
api.add_router("/auctions/", notifications.watch)
api.add_router("/watchlist/", notifications.watched)
api.add_router("/notifications/", notifications.notifications)
