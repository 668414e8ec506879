"""The pages' Content-Security-Policy: django-csp, with the page's own WebSocket origin.

The policy itself is CONTENT_SECURITY_POLICY in settings. Its connect-src says 'self',
which CSP Level 3 browsers take to cover ws: and wss: on the page's own host; older ones
(Safari before 15.4) do not, so the origin the live page connects to (`ws://` or `wss://`
and the host the page was asked for, as static/js/auction.js builds it) is named too.
"""

from csp.middleware import CSPMiddleware, PolicyParts
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest
from django.http.response import HttpResponseBase


class SiteCSPMiddleware(CSPMiddleware):
    """django-csp's middleware (its documented extension point: `get_policy_parts`)."""

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        try:
            host = request.get_host()
        except DisallowedHost:
            return parts
        socket_origin = f"{'wss' if request.is_secure() else 'ws'}://{host}"
        update = dict(parts.update or {})
        update["connect-src"] = [*update.get("connect-src", ()), socket_origin]
        parts.update = update
        return parts
