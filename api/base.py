"""What every endpoint of the HTTP API shares: exact JSON in and out, statuses, pagination."""

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from django.db.models import Model, QuerySet
from django.http import HttpRequest
from ninja import Field, Schema
from ninja.errors import HttpError
from ninja.parser import Parser
from ninja.renderers import JSONRenderer
from ninja.responses import NinjaJSONEncoder

from auctions.errors import Code
from auctions.formats import iso, parse_json

# Answers of the HTTP layer itself, with no counterpart in the domain's `Code`.
METHOD_NOT_ALLOWED = "method_not_allowed"
REQUEST_TOO_LARGE = "request_too_large"
PRECONDITION_REQUIRED = "precondition_required"

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
    Code.BUY_NOW_UNAVAILABLE: 409,
    Code.INVALID_JSON: 400,
    Code.INVALID_MESSAGE: 400,
    Code.UNKNOWN_TYPE: 400,
    Code.TOO_MANY_SUBSCRIPTIONS: 409,
    Code.VALIDATION_ERROR: 422,
    Code.ITEM_UNAVAILABLE: 409,
    Code.NOT_CANCELLABLE: 409,
    Code.NOT_EDITABLE: 409,
    Code.VERSION_CONFLICT: 412,
    Code.NOT_AUTHENTICATED: 401,
    Code.PERMISSION_DENIED: 403,
    Code.UNAVAILABLE: 503,
    Code.INTERNAL_ERROR: 500,
    METHOD_NOT_ALLOWED: 405,
    REQUEST_TOO_LARGE: 413,
    PRECONDITION_REQUIRED: 428,
}

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# PostgreSQL's bigint: OFFSET and seq comparisons beyond it would fail in the database.
MAX_BIGINT = 2**63 - 1


class BadQuery(HttpError):
    """A query parameter that validates alone but names nothing: 400 `validation_error`."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


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
