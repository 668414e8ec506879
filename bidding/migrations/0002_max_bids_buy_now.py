"""Automatic bids, ties of maxes, and stored replies (spec §7).

Two bids of an auction may now share an amount (a tie of maxes), so bids are unique by
seq instead; a bid request keeps the whole reply it got, built here for existing rows
from the columns it had (an accepted bid then always led).
"""

from decimal import Decimal

from django.conf import settings
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def replies_from_columns(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    BidRequest = apps.get_model("bidding", "BidRequest")
    for request in BidRequest.objects.iterator():
        data: dict[str, object] = {
            "current_price": _money(request.current_price),
            "min_next_bid": _money(request.min_next_bid),
        }
        if request.outcome == "accepted":
            data = {
                "bid_id": str(request.bid_id),
                "amount": _money(request.amount),
                "seq": request.seq,
                **data,
                "end_time": request.end_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "leading": True,
                "max_amount": _money(request.amount),
            }
        request.reply = data
        request.save(update_fields=["reply"])


class Migration(migrations.Migration):
    dependencies = [
        ("auctions", "0003_max_bids_buy_now"),
        ("bidding", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(name="bid", options={"ordering": ["-seq"]}),
        migrations.RemoveConstraint(model_name="bid", name="bid_unique_amount"),
        migrations.AddConstraint(
            model_name="bid",
            constraint=models.UniqueConstraint(fields=("auction", "seq"), name="bid_unique_seq"),
        ),
        migrations.AddField(
            model_name="bid",
            name="auto",
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.AddField(
            model_name="bidrequest", name="reply", field=models.JSONField(default=dict)
        ),
        migrations.RunPython(replies_from_columns, migrations.RunPython.noop),
        migrations.RemoveField(model_name="bidrequest", name="amount"),
        migrations.RemoveField(model_name="bidrequest", name="bid"),
        migrations.RemoveField(model_name="bidrequest", name="current_price"),
        migrations.RemoveField(model_name="bidrequest", name="end_time"),
        migrations.RemoveField(model_name="bidrequest", name="min_next_bid"),
        migrations.RemoveField(model_name="bidrequest", name="seq"),
    ]
