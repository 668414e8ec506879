"""Staff admin for bids and bid request outcomes: financial records, view only (spec §4)."""

from django.contrib import admin

from bidding.models import Bid, BidRequest
from staff.common import ReadOnlyAdminMixin, UuidSearchMixin


@admin.register(Bid)
class BidAdmin(UuidSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin[Bid]):
    list_display = ("auction", "bidder", "amount", "auto", "created_at", "seq", "request_id")
    list_select_related = ("auction__item", "bidder")
    list_filter = ("auction__status", "created_at")
    search_fields = ("bidder__username", "auction__item__name", "request_id")
    uuid_search_fields = ("id", "auction_id")
    ordering = ("-created_at",)
    fields = ("id", "auction", "bidder", "amount", "auto", "seq", "created_at", "request_id")
    readonly_fields = fields


@admin.register(BidRequest)
class BidRequestAdmin(UuidSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin[BidRequest]):
    """What each bid sent with a request_id got (accepted or the rejection code)."""

    list_display = ("request_id", "bidder", "auction", "outcome", "created_at")
    list_select_related = ("auction__item", "bidder")
    list_filter = ("outcome", "created_at")
    search_fields = ("request_id", "bidder__username", "auction__item__name")
    uuid_search_fields = ("id", "auction_id")
    ordering = ("-created_at",)
    fields = ("id", "request_id", "bidder", "auction", "outcome", "reply", "created_at")
    readonly_fields = fields
