"""The HTTP JSON API (spec §3): the NinjaAPI instance, JSON in and out, errors, pagination."""

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from functools import wraps
from typing import Any, TypeVar

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver
from django.utils.module_loading import import_string
from ninja import Field, NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.operation import Operation
from ninja.parser import Parser
from ninja.renderers import JSONRenderer
from ninja.responses import NinjaJSONEncoder

from accounts.auth import api_auth
from auctions.errors import Code, DomainError
from auctions.formats import iso, parse_json

# Answers of the HTTP layer itself, with no counterpart in the domain's `Code`.
METHOD_NOT_ALLOWED = "method_not_allowed"
REQUEST_TOO_LARGE = "request_too_large"

# The one place a DomainError code becomes an HTTP status.
STATUS_BY_CODE: dict[str, int] = {
    Code.BID_TOO_LOW: 409,
    Code.AUCTION_NOT_ACTIVE: 409,
    Code.AUCTION_ENDED: 409,
    Code.OWN_AUCTION: 409,
    Code.ALREADY_HIGHEST: 409,
    Code.INVALID_AMOUNT: 422,
    Code.NOT_FOUND: 404,
    Code.RATE_LIMITED: 429,
    Code.INVALID_JSON: 400,
    Code.INVALID_MESSAGE: 400,
    Code.UNKNOWN_TYPE: 400,
    Code.TOO_MANY_SUBSCRIPTIONS: 409,
    Code.VALIDATION_ERROR: 422,
    Code.ITEM_UNAVAILABLE: 409,
    Code.NOT_CANCELLABLE: 409,
    Code.NOT_AUTHENTICATED: 401,
    Code.PERMISSION_DENIED: 403,
    METHOD_NOT_ALLOWED: 405,
    REQUEST_TOO_LARGE: 413,
}

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# PostgreSQL's bigint: OFFSET and seq comparisons beyond it would fail in the database.
MAX_BIGINT = 2**63 - 1

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


class InvalidJSONBody(ValueError):
    """The request body is not plain JSON."""


class BodyNotObject(ValueError):
    """The request body is JSON, but not the object every operation takes."""


class DecimalJSONParser(Parser):
    """JSON bodies as the APIs read them: numbers with decimals become exact Decimals."""

    def parse_body(self, request: HttpRequest) -> Any:
        try:
            body = parse_json(request.body)
        except ValueError as exc:
            raise InvalidJSONBody(f"The request body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise BodyNotObject("The request body must be a JSON object.")
        return body


class ExactJSONEncoder(NinjaJSONEncoder):
    """Decimals as exact fixed-point strings and times in our ISO shape, never via float."""

    def default(self, o: Any) -> Any:
        if isinstance(o, Decimal):
            if not o.is_finite():
                raise ValueError(f"{o} cannot be written as JSON")
            return format(o, "f")
        if isinstance(o, datetime):
            return iso(o)
        return super().default(o)


class ExactJSONRenderer(JSONRenderer):
    encoder_class = ExactJSONEncoder
    json_dumps_params = {"allow_nan": False}


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
    return error_response(request, 422, Code.VALIDATION_ERROR, message, {"errors": errors})


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
    return error_response(request, exc.status_code, Code.VALIDATION_ERROR, exc.message)


def _not_found(request: HttpRequest, exc: Exception) -> HttpResponse:
    return error_response(request, 404, Code.NOT_FOUND, "Not found.")


def _permission_denied(request: HttpRequest, exc: Exception) -> HttpResponse:
    return error_response(request, 403, Code.PERMISSION_DENIED, str(exc) or "You may not do this.")


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


class AuctionAPI(NinjaAPI):
    """NinjaAPI whose routers are mounted on first use, and whose every error is JSON."""

    # Import paths, so the routers can import this module's helpers without an import cycle.
    routers: Sequence[tuple[str, str]] = (("/auctions/", "auctions.api.router"),)
    _routers_mounted = False

    @property
    def urls(self) -> tuple[list[URLPattern | URLResolver], str, str]:
        if not self._routers_mounted:
            for prefix, router in self.routers:
                self.add_router(prefix, import_string(router))
            self._routers_mounted = True
        patterns, app_name, namespace = super().urls
        wrapped = [
            URLPattern(p.pattern, _json_errors(p.callback), p.default_args, p.name)
            if isinstance(p, URLPattern)
            else p
            for p in patterns
        ]
        return wrapped, app_name, namespace

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
api.add_exception_handler(DomainError, _domain_error)
api.add_exception_handler(ValidationError, _validation_error)
api.add_exception_handler(HttpError, _http_error)
api.add_exception_handler(Http404, _not_found)
api.add_exception_handler(DjangoPermissionDenied, _permission_denied)
api.add_exception_handler(RequestDataTooBig, _too_large)


# Pagination (spec §3): {"count", "next", "results"} with ?limit= and ?offset=.


class PageQuery(Schema):
    limit: int = Field(
        DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"Page size, 1 to {MAX_LIMIT}."
    )
    offset: int = Field(0, ge=0, le=MAX_BIGINT, description="How many results to skip.")


M = TypeVar("M", bound=Model)


def page(
    request: HttpRequest, *, paging: PageQuery, count: int, results: list[Any]
) -> dict[str, Any]:
    """One page of a list: `next` is the absolute URL of the following page, or None."""
    following = paging.offset + paging.limit
    next_url = None
    if following < count:
        query = request.GET.copy()
        query["limit"] = str(paging.limit)
        query["offset"] = str(following)
        next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
    return {"count": count, "next": next_url, "results": results}


def paginate(
    request: HttpRequest,
    rows: QuerySet[M],
    *,
    paging: PageQuery,
    shape: Callable[[M], dict[str, Any]],
) -> dict[str, Any]:
    """One page of a queryset, each row shaped for the wire."""
    window = rows[paging.offset : paging.offset + paging.limit]
    return page(request, paging=paging, count=rows.count(), results=[shape(row) for row in window])
