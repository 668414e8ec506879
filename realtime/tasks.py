"""Periodic tasks of event delivery."""

from celery import shared_task

from realtime.publish import outboxes_publish_pending


@shared_task(ignore_result=True)
def publish_pending_events() -> int:
    """Publish what the live path could not, events and notifications (see realtime.publish)."""
    return outboxes_publish_pending()
