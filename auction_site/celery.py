"""The Celery application used by the worker and beat processes."""

import os
from typing import Any

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auction_site.settings.production")

app = Celery("auction_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def _log_through_settings(loglevel: int | str | None = None, **kwargs: Any) -> None:
    """Worker and beat log through the project's LOGGING, as the web process does: one
    format (LOG_FORMAT=json included), and housekeeping that did nothing at DEBUG (§11)."""
    from auction_site.logs import configure_celery_logging

    configure_celery_logging(loglevel)
