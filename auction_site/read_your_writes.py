"""Read-your-writes for the replica (spec §10): a request that wrote notes its author."""

from collections.abc import Callable
from uuid import UUID

from django.http import HttpRequest, HttpResponse

from infra.replica import replica_configured, wrote

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class ReadYourWritesMiddleware:
    """After a write that succeeded (an unsafe method answered below 400), its author's
    lists and histories come from the primary for a while (infra.replica)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.method not in SAFE_METHODS
            and response.status_code < 400
            and replica_configured()
            and (author := _author(request)) is not None
        ):
            wrote(author)
        return response


def _author(request: HttpRequest) -> UUID | None:
    # The API's token auth leaves its user in request.auth; the pages', in request.user.
    user = getattr(request, "auth", None) or getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    user_id: UUID = user.id
    return user_id
