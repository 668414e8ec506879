"""Staff admin for items, auctions and their events.

Auctions change only through auctions.services: the change form is a read-only view,
and "Close now" / "Cancel" are the actions that write. Auctions are created on the site
or through the API (`auction_create`), not here, so the rules live in one place.
"""

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from accounts.requests import SignedInRequest
from auctions.errors import DomainError
from auctions.models import Auction, AuctionEvent, Item
from auctions.services import auction_cancel, auction_close
from bidding.models import Bid
from staff.common import ReadOnlyAdminMixin, UuidSearchMixin, changelist_link


class AuctionInline(ReadOnlyAdminMixin, admin.TabularInline[Auction, Item]):
    """An item's auctions, newest first."""

    model = Auction
    fields = ("status", "start_time", "end_time", "current_price", "bid_count")
    readonly_fields = fields
    ordering = ("-created_at",)
    extra = 0
    show_change_link = True


@admin.register(Item)
class ItemAdmin(UuidSearchMixin, admin.ModelAdmin[Item]):
    list_display = ("name", "owner", "created_at")
    list_select_related = ("owner",)
    search_fields = ("name", "owner__username")
    autocomplete_fields = ("owner",)
    ordering = ("-created_at",)
    inlines = (AuctionInline,)

    def get_inlines(self, request: HttpRequest, obj: Item | None) -> tuple[Any, ...]:
        return self.inlines if obj else ()

    def get_readonly_fields(self, request: HttpRequest, obj: Item | None = None) -> tuple[str, ...]:
        # An item's owner is who may auction it: moving it would rewrite whose sale it was.
        return ("id", "owner", "created_at") if obj else ()


class BidInline(ReadOnlyAdminMixin, admin.TabularInline[Bid, Auction]):
    """An auction's bids, highest first. Financial records: view only."""

    model = Bid
    fields = ("amount", "bidder", "created_at", "seq")
    readonly_fields = fields
    ordering = ("-amount",)
    extra = 0
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[Bid]:
        return super().get_queryset(request).select_related("bidder")


@admin.register(Auction)
class AuctionAdmin(UuidSearchMixin, admin.ModelAdmin[Auction]):
    list_display = (
        "item",
        "creator",
        "status",
        "current_price",
        "bid_count",
        "start_time",
        "end_time",
    )
    list_select_related = ("item", "creator")
    list_filter = ("status",)
    search_fields = ("item__name", "creator__username")
    ordering = ("-created_at",)
    inlines = (BidInline,)
    actions = ("close_now", "cancel")
    fieldsets = (
        (None, {"fields": ("id", "item", "creator", "status", "cancel_reason")}),
        (
            "Terms",
            {
                "fields": (
                    "starting_price",
                    "reserve_price",
                    "min_increment",
                    "increments",
                    "buy_now_price",
                )
            },
        ),
        ("Times", {"fields": ("start_time", "end_time", "max_end_time", "extension_seconds")}),
        (
            "Running state",
            {
                "fields": (
                    "current_price",
                    "bid_count",
                    "highest_bidder",
                    "leader_max",
                    "leader_max_at",
                    "highest_bid",
                    "last_seq",
                    "version",
                )
            },
        ),
        ("Result", {"fields": ("winner", "final_price", "ended_at")}),
        ("Records", {"fields": ("bids_link", "events_link", "created_at", "updated_at")}),
    )
    # Every field: money, times and state move only through the services, under the row lock.
    readonly_fields = tuple(
        field for _, options in fieldsets for field in options["fields"] if isinstance(field, str)
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Auction]:
        return super().get_queryset(request).select_related("item", "creator")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Auction | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Auction | None = None) -> bool:
        # Its events are the record subscribers replay; its bids are financial records.
        return False

    def has_manage_permission(self, request: HttpRequest) -> bool:
        """Who may run the close and cancel actions: those Django lets change auctions."""
        return request.user.has_perm("auctions.change_auction")

    @admin.display(description="Bids")
    def bids_link(self, auction: Auction) -> str:
        return changelist_link(Bid, f"All {auction.bid_count} bids", auction__id__exact=auction.id)

    @admin.display(description="Events")
    def events_link(self, auction: Auction) -> str:
        return changelist_link(
            AuctionEvent, f"All {auction.last_seq} events", auction__id__exact=auction.id
        )

    @admin.action(description="Close now (decide the winner)", permissions=["manage"])
    def close_now(self, request: HttpRequest, queryset: QuerySet[Auction]) -> None:
        for auction in queryset:
            label = _label(auction)
            try:
                closed = auction_close(auction_id=auction.id, early=True)
            except DomainError as exc:
                messages.error(request, f"{label}: {exc.message}")
                continue
            if closed:
                messages.success(request, f"{label}: closed.")
            else:
                messages.warning(request, f"{label}: not active, left as it was.")

    @admin.action(description="Cancel", permissions=["manage"])
    def cancel(self, request: SignedInRequest, queryset: QuerySet[Auction]) -> None:
        for auction in queryset:
            label = _label(auction)
            try:
                auction_cancel(
                    auction_id=auction.id, actor=request.user, reason="cancelled by staff"
                )
            except DomainError as exc:
                messages.error(request, f"{label}: {exc.message}")
                continue
            messages.success(request, f"{label}: cancelled.")


def _label(auction: Auction) -> str:
    return f"“{auction.item.name}” ({auction.id})"


@admin.register(AuctionEvent)
class AuctionEventAdmin(UuidSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin[AuctionEvent]):
    """The stored events subscribers replay: view only."""

    list_display = ("auction", "seq", "type", "created_at", "published_at")
    list_select_related = ("auction__item",)
    list_filter = ("type", ("published_at", admin.EmptyFieldListFilter))
    search_fields = ("auction__item__name",)
    uuid_search_fields = ("id", "auction_id")
    ordering = ("-created_at", "-seq")
    fields = ("id", "auction", "seq", "type", "created_at", "published_at", "payload_pretty")
    readonly_fields = fields

    @admin.display(description="Payload")
    def payload_pretty(self, event: AuctionEvent) -> str:
        text = json.dumps(event.payload, indent=2, sort_keys=True, ensure_ascii=False)
        return format_html("<pre>{}</pre>", text)
