"""Staff admin for categories, items, auctions and their events.

Auctions change only through auctions.services, like everywhere else: "Add auction"
creates one for any seller (`auction_create`), a pending auction's page is an edit form
checked against the version it was drawn with (`auction_edit_apply`), and "Close now" /
"Cancel" are the actions that write. Started auctions, their items and bids are read-only.
"""

import json
from typing import Any, cast
from uuid import UUID

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.html import format_html

from accounts.models import User
from accounts.requests import SignedInRequest
from auctions.errors import Code, DomainError
from auctions.models import Auction, AuctionEvent, AuctionStatus, Category, Item, ItemImage
from auctions.services import auction_cancel, auction_close, auction_create, auction_edit_apply
from bidding.models import Bid
from pages.forms import AuctionEditForm, StaffAuctionCreateForm
from staff.common import ReadOnlyAdminMixin, UuidSearchMixin, changelist_link


class AuctionInline(ReadOnlyAdminMixin, admin.TabularInline[Auction, Item]):
    """An item's auctions, newest first."""

    model = Auction
    fields = ("status", "start_time", "end_time", "current_price", "bid_count")
    readonly_fields = fields
    ordering = ("-created_at",)
    extra = 0
    show_change_link = True


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin[Category]):
    list_display = ("name", "slug")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


class PhotoInline(ReadOnlyAdminMixin, admin.TabularInline[ItemImage, Item]):
    """An item's photos (they change through the pending auction's edit, or the API)."""

    model = ItemImage
    fields = ("preview", "position", "width", "height", "created_at")
    readonly_fields = fields
    extra = 0

    @admin.display(description="Photo")
    def preview(self, photo: ItemImage) -> str:
        return format_html('<img src="{}" alt="" height="60">', photo.thumbnail.url)


@admin.register(Item)
class ItemAdmin(UuidSearchMixin, admin.ModelAdmin[Item]):
    list_display = ("name", "owner", "category", "created_at")
    list_select_related = ("owner", "category")
    list_filter = ("category",)
    search_fields = ("name", "owner__username")
    autocomplete_fields = ("owner",)
    ordering = ("-created_at",)
    inlines = (PhotoInline, AuctionInline)

    def get_inlines(self, request: HttpRequest, obj: Item | None) -> tuple[Any, ...]:
        return self.inlines if obj else ()

    def get_readonly_fields(self, request: HttpRequest, obj: Item | None = None) -> tuple[str, ...]:
        # An item's owner is who may auction it: moving it would rewrite whose sale it was.
        return ("id", "owner", "created_at") if obj else ()

    def has_change_permission(self, request: HttpRequest, obj: Item | None = None) -> bool:
        # What bidders saw must not change under them: an item that is or was on sale
        # changes only through its pending auction's edit, which tells subscribers.
        if obj is not None and obj.auctions.exclude(status=AuctionStatus.CANCELLED).exists():
            return False
        return super().has_change_permission(request, obj)


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
        return request.user.has_perm("auctions.add_auction")

    def has_change_permission(self, request: HttpRequest, obj: Auction | None = None) -> bool:
        # Django's own change form would write the row directly: never. Pending auctions
        # are edited through the service by `change_view` below.
        return False

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Create an auction for any seller, through auction_create like the site does."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = StaffAuctionCreateForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                auction = auction_create(
                    creator=form.cleaned_data["seller"], **form.service_arguments()
                )
            except DomainError as error:
                form.add_service_error(error)
            else:
                messages.success(request, f"{_label(auction)}: created.")
                return redirect("admin:auctions_auction_change", auction.id)
        return self._form_page(request, form, "Add an auction", None)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """A pending auction is an edit form (checked against the version it was drawn
        with); any other is a read-only view."""
        auction_id = _uuid(object_id)
        auction = None
        if auction_id is not None:
            auction = Auction.objects.select_related("item").filter(id=auction_id).first()
        can_edit = request.user.has_perm("auctions.change_auction")
        if auction is None or auction.status != AuctionStatus.PENDING or not can_edit:
            return super().change_view(request, object_id, form_url, extra_context)
        form = AuctionEditForm(request.POST or None, request.FILES or None, auction=auction)
        if request.method == "POST" and form.is_valid():
            try:
                auction_edit_apply(
                    auction_id=auction.id,
                    actor=cast(User, request.user),
                    version=form.cleaned_data["version"],
                    changes=form.changes(),
                    photos_added=form.uploads(),
                    photos_removed=form.photos_removed(),
                )
            except DomainError as error:
                if error.code != Code.VERSION_CONFLICT:
                    form.add_service_error(error)
                else:  # nothing was saved: start again from the auction as it is now
                    messages.error(request, error.message)
                    auction = Auction.objects.select_related("item").get(id=auction.id)
                    form = AuctionEditForm(auction=auction)
            else:
                messages.success(request, f"{_label(auction)}: saved.")
                return redirect("admin:auctions_auction_change", auction.id)
        return self._form_page(request, form, f"Edit {_label(auction)}", auction)

    def _form_page(
        self, request: HttpRequest, form: Any, title: str, auction: Auction | None
    ) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "form": form,
            "auction": auction,
            "opts": self.model._meta,
            "has_view_permission": True,
        }
        return render(request, "admin/auctions/auction/service_form.html", context)

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


def _uuid(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None


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
