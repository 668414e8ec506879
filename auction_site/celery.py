"""The Celery application used by the worker and beat processes."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auction_site.settings.production")

app = Celery("auction_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
