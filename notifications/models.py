"""Watches, and the notifications each user is sent (spec §8): a per-user record with a seq.

Notifications are an outbox like auction events: a row is written in the transaction of
the change that causes it, numbered by the user's `Inbox.last_seq`, and published to the
user's connections after commit (`published_at` marks the sweep's progress). E-mail is a
second consumer of the same rows (`email_state`).
"""

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.functions import RandomUUID
from django.db import models
from django.db.models.functions import Now


class Kind(models.TextChoices):
    OUTBID = "outbid", "Outbid"
    ENDING_SOON = "ending_soon", "Ending soon"
    WON = "won", "Won"
    LOST = "lost", "Lost"
    SOLD = "sold", "Sold"
    NOT_SOLD = "not_sold", "Not sold"


class EmailState(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    SENDING = "sending", "Being sent"
    SENT = "sent", "Sent"
    SKIPPED = "skipped", "Not wanted"
    FAILED = "failed", "Refused by the mail server"


class Watch(models.Model):
    """A user follows an auction: they get its ending-soon notice."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID())
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="watches"
    )
    auction = models.ForeignKey("auctions.Auction", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "auction"], name="watch_once")]
        indexes = [models.Index(fields=["auction"], name="watch_auction")]

    def __str__(self) -> str:
        return f"{self.user_id} watches {self.auction_id}"


class Inbox(models.Model):
    """A user's notification counter: the seq of their latest notification."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="notification_inbox",
    )
    last_seq = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.user_id} at #{self.last_seq}"


class Notification(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID())
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    seq = models.BigIntegerField()
    kind = models.CharField(max_length=20, choices=Kind.choices)
    auction = models.ForeignKey("auctions.Auction", on_delete=models.CASCADE, related_name="+")
    data = models.JSONField()
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    email_state = models.CharField(
        max_length=10,
        choices=EmailState.choices,
        default=EmailState.PENDING,
        db_default=EmailState.PENDING,
    )
    email_attempts = models.PositiveSmallIntegerField(default=0, db_default=0)
    # A failed attempt's retry waits until then.
    email_next_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["user", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["user", "seq"], name="notification_seq_once"),
            # Ending soon is sent once per auction and user, whatever the end does next.
            models.UniqueConstraint(
                fields=["user", "auction"],
                condition=models.Q(kind="ending_soon"),
                name="notification_ending_soon_once",
            ),
        ]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=models.Q(published_at__isnull=True),
                name="notification_unpublished",
            ),
            models.Index(
                fields=["created_at"],
                condition=models.Q(email_state="pending"),
                name="notification_email_pending",
            ),
            models.Index(
                fields=["user"],
                condition=models.Q(read_at__isnull=True),
                name="notification_unread",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.seq} for {self.user_id}"


class EmailSettings(models.Model):
    """Which kinds a user does not want by e-mail (everything is on until they say)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="notification_email",
    )
    kinds_off = ArrayField(models.CharField(max_length=20, choices=Kind.choices), default=list)

    def __str__(self) -> str:
        return f"{self.user_id}: off {', '.join(self.kinds_off) or 'nothing'}"
