"""`GET /metrics` (spec §11): Prometheus text for every process of the machine together.

With METRICS_TOKEN set, a scrape must send it as `Authorization: Bearer …`; without it,
only loopback clients (a Prometheus or an agent on the same machine) are answered.
"""

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from infra.metrics import METRICS_CONTENT_TYPE, metrics_text


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(offered.strip(), token):
            response = HttpResponse("A bearer token is needed.\n", status=401)
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    elif not _is_loopback(request.META.get("REMOTE_ADDR", "")):
        return HttpResponse(
            "Metrics are served to this machine only (or set METRICS_TOKEN).\n", status=403
        )
    return HttpResponse(metrics_text(), content_type=METRICS_CONTENT_TYPE)


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
