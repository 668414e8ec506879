"""Install the periodic tasks (auction_site.schedule) into django-celery-beat's tables.

A later change to that list comes with a migration that runs this again.
"""

from django.db import migrations

from auction_site.schedule import periodic_tasks_install


def install(apps, schema_editor):
    periodic_tasks_install(
        apps.get_model("django_celery_beat", "IntervalSchedule"),
        apps.get_model("django_celery_beat", "PeriodicTask"),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("auctions", "0002_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
