"""Bids (accepted ones only: financial records) and the outcomes of bids sent with a request id."""

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
    auction = models.ForeignKey(
        Auction, on_delete=models.PROTECT, related_name="bids", db_index=False
    )
    bidder = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="bids", db_index=False
    )
    amount = models.DecimalField(**MONEY)
    # NULL, not "", means "no request id": the unique constraint then does not apply.
    request_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
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


class BidRequest(models.Model):
    """The outcome of a bid that carried a request_id: the record that makes retries safe.

    Written in the bid statement itself, accepted or rejected, so a repeated
    (bidder, request_id) conflicts on this table's unique key, whichever auction it
    names and however the requests interleave, and gets this outcome back.
    """

    ACCEPTED = "accepted"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    bidder = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    request_id = models.CharField(max_length=64)
    auction = models.ForeignKey(Auction, on_delete=models.PROTECT, related_name="+", db_index=False)
    amount = models.DecimalField(**MONEY)
    # "accepted" or the rejection code.
    outcome = models.CharField(max_length=32)
    bid = models.ForeignKey(
        Bid, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    # The auction's state right after the bid (accepted) or when it was refused.
    seq = models.PositiveBigIntegerField(null=True, blank=True)
    current_price = models.DecimalField(**MONEY)
    min_next_bid = models.DecimalField(max_digits=13, decimal_places=2)
    end_time = models.DateTimeField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bidder", "request_id"], name="bid_request_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.request_id}: {self.outcome}"
