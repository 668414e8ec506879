"""The project as a Django app: installs beat's periodic tasks, holds project-wide commands."""

from typing import Any

from django.apps import AppConfig
from django.apps import apps as global_apps
from django.apps.registry import Apps
from django.db.models.signals import post_migrate


def _install_periodic_tasks(sender: AppConfig, apps: Apps = global_apps, **kwargs: Any) -> None:
    # `migrate` passes the migrated state's apps; `flush` (between tests) passes none.
    from auction_site.periodic_tasks import periodic_tasks_install

    periodic_tasks_install(
        apps.get_model("django_celery_beat", "IntervalSchedule"),
        apps.get_model("django_celery_beat", "PeriodicTask"),
    )


class AuctionSiteConfig(AppConfig):
    name = "auction_site"
    verbose_name = "Auction site"

    def ready(self) -> None:
        # After every `migrate` (a new database, an upgrade, a test database flushed):
        # beat's tables always hold exactly the current list, and nobody sets them up by hand.
        post_migrate.connect(_install_periodic_tasks, sender=self)
