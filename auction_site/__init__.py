"""The auction service's Django project: settings, ASGI, Celery app and URLs."""

from .celery import app as celery_app

__all__ = ("celery_app",)
