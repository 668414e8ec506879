"""The periodic tasks beat runs, installed into django-celery-beat's tables after `migrate`.

One list: `manage.py migrate` (auction_site.apps) and the tests install the same tasks.
"""

from dataclasses import dataclass
from typing import Any

from django.conf import settings


@dataclass(frozen=True)
class Periodic:
    name: str
    task: str
    every_seconds: int
    # A run queued while no worker was there is stale by the time one starts.
    expire_seconds: int


PERIODIC_TASKS = [
    Periodic(
        name="Start and end the auctions that are due",
        task="auctions.tasks.dispatch_due",
        every_seconds=1,
        expire_seconds=5,
    ),
    Periodic(
        name="Reconcile the auction schedule with the database",
        task="auctions.tasks.reconcile_schedule",
        every_seconds=30,
        expire_seconds=60,
    ),
    Periodic(
        name="Publish events the live path missed",
        task="realtime.tasks.publish_pending_events",
        every_seconds=2,
        expire_seconds=10,
    ),
    Periodic(
        name="Tell watchers of auctions that end soon",
        task="auctions.tasks.notify_ending_soon",
        every_seconds=settings.NOTIFY_ENDING_SOON_CHECK_SECONDS,
        expire_seconds=max(2 * settings.NOTIFY_ENDING_SOON_CHECK_SECONDS, 10),
    ),
    Periodic(
        name="Send notification e-mail",
        task="notifications.tasks.send_notification_emails",
        every_seconds=settings.NOTIFY_EMAIL_CHECK_SECONDS,
        expire_seconds=max(2 * settings.NOTIFY_EMAIL_CHECK_SECONDS, 10),
    ),
]


def periodic_tasks_install(interval_model: Any, task_model: Any) -> None:
    """Create or update every periodic task; the models may be a migration's historical ones."""
    for periodic in PERIODIC_TASKS:
        interval, _ = interval_model.objects.get_or_create(
            every=periodic.every_seconds, period="seconds"
        )
        task_model.objects.update_or_create(
            name=periodic.name,
            defaults={
                "task": periodic.task,
                "interval": interval,
                "enabled": True,
                "expire_seconds": periodic.expire_seconds,
            },
        )
