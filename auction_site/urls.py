"""URL routes: admin, HTTP API, health checks and pages."""

from django.contrib import admin
from django.urls import include, path, re_path

from api.site import api, api_not_found
from auction_site import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    # After the API's own routes: any other path under /api/ is a JSON 404.
    re_path(r"^api/(?P<path>.*)$", api_not_found),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # Pages (spec §4).
    path("", include("pages.urls")),
]
