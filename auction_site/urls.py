"""URL routes: admin, HTTP API, health checks and pages."""

from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path
from django.views.static import serve

from api.site import api, api_not_found
from auction_site import health, metrics

urlpatterns: list[URLPattern | URLResolver] = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    # After the API's own routes: any other path under /api/ is a JSON 404.
    re_path(r"^api/(?P<path>.*)$", api_not_found),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    # Pages (spec §4).
    path("", include("pages.urls")),
]

if settings.SERVE_MEDIA and settings.MEDIA_URL.startswith("/"):
    # Uploaded photos, from the local media folder (in production a proxy or the S3 store
    # serves them: SERVE_MEDIA=0).
    prefix = settings.MEDIA_URL.lstrip("/")
    urlpatterns.append(
        re_path(rf"^{prefix}(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT})
    )
