"""Bids (the accepted ones, financial records) and stored rejections for idempotent replay."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from auctions.models import MONEY, Auction


class Bid(models.Model):
    """An accepted bid. Rows are only ever inserted by bidding.services.bid_place."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Indexed through the constraints and indexes below, not one index per column:
    # every index is paid for on the hot insert.
    auction = models.ForeignKey(Auction, on_delete=models.PROTECT, related_name="bids", db_index=False)
    bidder = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="bids", db_index=False
    )
    amount = models.DecimalField(**MONEY)
    request_id = models.CharField(max_length=64, null=True, blank=True)
    # The seq of this bid's `bid_placed` event.
    seq = models.PositiveBigIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-amount"]
        constraints = [
            # Accepted amounts strictly increase, so no two are equal; this index also
            # serves "bids of an auction by amount" (the history, newest first).
            models.UniqueConstraint(fields=["auction", "amount"], name="bid_unique_amount"),
            models.UniqueConstraint(
                fields=["bidder", "request_id"],
                condition=Q(request_id__isnull=False),
                name="bid_unique_request",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="bid_amount_positive"),
        ]
        indexes = [models.Index(fields=["bidder", "-created_at"], name="bid_by_bidder")]

    def __str__(self) -> str:
        return f"{self.amount} by {self.bidder_id}"


class BidRejection(models.Model):
    """A rejected bid that carried a request_id, kept so a retry gets the same answer."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    auction = models.ForeignKey(
        Auction, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    bidder = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    request_id = models.CharField(max_length=64)
    amount = models.DecimalField(**MONEY)
    code = models.CharField(max_length=32)
    current_price = models.DecimalField(**MONEY)
    min_next_bid = models.DecimalField(max_digits=13, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bidder", "request_id"], name="rejection_unique_request"),
        ]
