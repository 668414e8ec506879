"""Bids (accepted ones only: financial records) and the outcomes of bids sent with a request id."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from auctions.models import MONEY, Auction


class Bid(models.Model):
    """A recorded bid: a bidder's own, or one the engine placed for them (`auto`, spec §7).

    Rows are only ever inserted by the bid engine (bidding.services), never changed.
    """

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
    # Placed by the engine for the bidder's maximum, not by a request of theirs.
    auto = models.BooleanField(default=False, db_default=False)
    # NULL, not "", means "no request id": the unique constraint then does not apply.
    request_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    # The seq of this bid's `bid_placed` event.
    seq = models.PositiveBigIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-seq"]
        constraints = [
            # One bid per event; this index also serves an auction's history, newest first.
            # (Amounts rise with seq; two bids share an amount only in a tie of maxes.)
            models.UniqueConstraint(fields=["auction", "seq"], name="bid_unique_seq"),
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

    Written in the bid's own transaction, accepted or rejected, with the reply it got
    (`reply`: `bid_accepted.data`, or the rejection's data). A repeated (bidder,
    request_id), whichever auction it names, gets that reply again and changes nothing.
    """

    ACCEPTED = "accepted"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    bidder = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    request_id = models.CharField(max_length=64)
    auction = models.ForeignKey(Auction, on_delete=models.PROTECT, related_name="+", db_index=False)
    # "accepted" or the rejection code.
    outcome = models.CharField(max_length=32)
    reply = models.JSONField(default=dict)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bidder", "request_id"], name="bid_request_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.request_id}: {self.outcome}"
