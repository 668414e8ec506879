"""Items (their categories and photos), the auctions that sell them, and their stored events."""

import uuid
from decimal import Decimal
from typing import Final, TypedDict

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.db.models import F, Q

from auctions.pricing import Increments, increments_of, min_next_bid, reserve_met


class MoneyDigits(TypedDict):
    max_digits: int
    decimal_places: int


# Every amount of money: at most 9999999999.99 (spec §1).
MONEY: Final[MoneyDigits] = {"max_digits": 12, "decimal_places": 2}


# The text search configuration of the catalogue (spec §9): stemming of English words.
SEARCH_CONFIG = "english"


class Category(models.Model):
    """A flat list, managed by staff in the admin."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Item(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="items"
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=10_000)
    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, null=True, blank=True, related_name="items"
    )
    # Words of the name (weighted above) and the description, kept by PostgreSQL itself.
    search = models.GeneratedField(
        expression=SearchVector("name", weight="A", config=SEARCH_CONFIG)
        + SearchVector("description", weight="B", config=SEARCH_CONFIG),
        output_field=SearchVectorField(),
        db_persist=True,
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [GinIndex(fields=["search"], name="item_search")]

    def __str__(self) -> str:
        return self.name


class ItemImage(models.Model):
    """One photo of an item: a display size and a thumbnail, made once from the upload
    (auctions.images), metadata stripped. `width`/`height` are the display size's."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="images")
    position = models.PositiveSmallIntegerField()
    image = models.FileField(max_length=300)
    thumbnail = models.FileField(max_length=300)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["item", "position"]
        constraints = [
            models.UniqueConstraint(fields=["item", "position"], name="item_image_position"),
        ]

    def __str__(self) -> str:
        return f"{self.item_id} #{self.position}"


class AuctionStatus(models.TextChoices):
    PENDING = "pending"
    ACTIVE = "active"
    ENDED = "ended"
    CANCELLED = "cancelled"


OPEN_STATUSES = (AuctionStatus.PENDING, AuctionStatus.ACTIVE)


class Auction(models.Model):
    """One sale of one item.

    `current_price`, `highest_bidder` (the leader) and their private `leader_max`,
    `highest_bid`, `bid_count` and `last_seq` are the running state the bid engine
    (bidding.services) moves forward under the row lock; `version` counts every change
    of the row and is checked by every write.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="auctions")
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="auctions_created"
    )
    status = models.CharField(
        max_length=10, choices=AuctionStatus.choices, default=AuctionStatus.PENDING
    )
    start_time = models.DateTimeField()
    end_time = models.DateTimeField()
    # Soft close never moves end_time past this (the original end plus the cap).
    max_end_time = models.DateTimeField()
    starting_price = models.DecimalField(**MONEY)
    reserve_price = models.DecimalField(**MONEY, null=True, blank=True)
    # A fixed increment, unless `increments` holds a table: [["0.00", "0.05"], …].
    min_increment = models.DecimalField(**MONEY, default=Decimal("0.01"))
    increments = models.JSONField(null=True, blank=True)
    buy_now_price = models.DecimalField(**MONEY, null=True, blank=True)
    extension_seconds = models.PositiveIntegerField(default=0)

    current_price = models.DecimalField(**MONEY)
    # Written on every accepted bid: no index, so the row update stays a HOT update.
    highest_bidder = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    highest_bid = models.ForeignKey(
        "bidding.Bid",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    # The leader's maximum and when they set it: private to them (spec §7, rule 7).
    leader_max = models.DecimalField(**MONEY, null=True, blank=True)
    leader_max_at = models.DateTimeField(null=True, blank=True)
    bid_count = models.PositiveIntegerField(default=0)
    last_seq = models.PositiveBigIntegerField(default=0)
    version = models.PositiveBigIntegerField(default=0)

    winner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="auctions_won",
    )
    final_price = models.DecimalField(**MONEY, null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["end_time"]
        constraints = [
            models.UniqueConstraint(
                fields=["item"],
                condition=Q(status__in=OPEN_STATUSES),
                name="auction_one_open_per_item",
            ),
            models.CheckConstraint(
                condition=Q(end_time__gt=F("start_time")), name="auction_ends_after_start"
            ),
            models.CheckConstraint(
                condition=Q(max_end_time__gte=F("end_time")), name="auction_end_within_cap"
            ),
            models.CheckConstraint(
                condition=Q(status__in=AuctionStatus.values), name="auction_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(starting_price__gt=0)
                & Q(min_increment__gt=0)
                & Q(current_price__gt=0)
                & (Q(reserve_price__isnull=True) | Q(reserve_price__gt=0))
                & (Q(final_price__isnull=True) | Q(final_price__gt=0)),
                name="auction_amounts_positive",
            ),
            models.CheckConstraint(
                condition=Q(buy_now_price__isnull=True)
                | (
                    Q(buy_now_price__gte=F("starting_price"))
                    & (Q(reserve_price__isnull=True) | Q(buy_now_price__gte=F("reserve_price")))
                ),
                name="auction_buy_now_at_least_start_and_reserve",
            ),
            models.CheckConstraint(
                condition=Q(leader_max__isnull=True) | Q(leader_max__gte=F("current_price")),
                name="auction_leader_max_covers_price",
            ),
        ]
        indexes = [
            # Scheduler safety net and the home page: active auctions by end time.
            models.Index(
                fields=["end_time"],
                condition=Q(status=AuctionStatus.ACTIVE),
                name="auction_active_by_end",
            ),
            models.Index(
                fields=["start_time"],
                condition=Q(status=AuctionStatus.PENDING),
                name="auction_pending_by_start",
            ),
            models.Index(fields=["status", "-ended_at"], name="auction_by_status_ended"),
        ]

    def __str__(self) -> str:
        return f"{self.item.name} ({self.status})"

    @property
    def increment_rule(self) -> Increments:
        return increments_of(self.min_increment, self.increments)

    @property
    def increment(self) -> Decimal:
        """The increment at the current price: inc(current_price)."""
        return self.increment_rule.at(self.current_price)

    @property
    def min_next_bid(self) -> Decimal:
        return min_next_bid(
            starting_price=self.starting_price,
            current_price=self.current_price,
            bid_count=self.bid_count,
            increments=self.increment_rule,
        )

    @property
    def reserve_met(self) -> bool:
        return reserve_met(
            reserve_price=self.reserve_price,
            current_price=self.current_price,
            bid_count=self.bid_count,
        )

    @property
    def buy_now_offered(self) -> Decimal | None:
        """The buy-it-now price while it is on offer: an open auction without bids."""
        if self.bid_count or self.status not in OPEN_STATUSES:
            return None
        return self.buy_now_price


class AuctionEvent(models.Model):
    """An auction change as subscribers see it, stored in the change's own transaction.

    `seq` runs 1, 2, 3, … per auction with no gap; `published_at` is set once the event
    has gone out on the channel layer, so a sweep can re-publish whatever was missed.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The (auction, seq) unique index serves every lookup by auction.
    auction = models.ForeignKey(
        Auction, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    seq = models.PositiveBigIntegerField()
    type = models.CharField(max_length=32)
    payload = models.JSONField()
    created_at = models.DateTimeField()
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["auction", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["auction", "seq"], name="event_unique_seq"),
            models.CheckConstraint(condition=Q(seq__gt=0), name="event_seq_positive"),
        ]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=Q(published_at__isnull=True),
                name="event_unpublished",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.seq}"
