"""Periodic tasks of event delivery."""

from celery import shared_task

from realtime.publish import events_publish_pending


@shared_task(ignore_result=True)
def publish_pending_events() -> int:
    """Publish what the live path could not (see realtime.publish)."""
    return events_publish_pending()
