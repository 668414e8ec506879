"""What every page's template may show: the signed-in user's unread notification count, and
the seq their notifications stood at (where the page's live stream picks up)."""

from functools import cache
from typing import Any

from django.http import HttpRequest

from accounts.models import User
from notifications.services import header_counts


def notifications(request: HttpRequest) -> dict[str, Any]:
    """`unread_notifications` and `notification_seq` for the header: read together once (one
    indexed query), and only by a template that shows them."""
    user = getattr(request, "user", None)
    if not isinstance(user, User) or not user.is_authenticated:
        return {}
    counts = cache(lambda: header_counts(user=user))
    return {"unread_notifications": lambda: counts()[0], "notification_seq": lambda: counts()[1]}
