"""Auction pages: the home list, the auction page, creating an auction and "my auctions"."""

import contextlib
import uuid
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.models import User
from accounts.requests import SignedInRequest
from auctions.errors import Code, DomainError, NotFound
from auctions.formats import iso, money
from auctions.models import AuctionStatus
from auctions.selectors import auction_get, auction_list, auction_snapshot, db_now
from auctions.services import auction_create, auction_edit_apply
from bidding.rejections import REJECTION_TEXT
from bidding.selectors import bid_history, own_bid
from infra.replica import reads_for
from notifications.services import is_watching
from pages.forms import AuctionCreateForm, AuctionEditForm, AuctionSearchForm

HOME_LIST_LIMIT = 24
SEARCH_PAGE_SIZE = 24
RECENTLY_ENDED_LIMIT = 10
HISTORY_LIMIT = 50


def reader_id(request: HttpRequest) -> UUID | None:
    """Who reads a list, for infra.replica's read-your-writes (None: not signed in)."""
    return request.user.id if isinstance(request.user, User) else None


def home(request: HttpRequest) -> HttpResponse:
    """The auction list: live, upcoming and recently ended; or a search's results, by page.

    The search lives in the query string, so a search can be shared as a link.
    """
    form = AuctionSearchForm(request.GET)
    db = reads_for(reader_id(request))
    if not form.is_search():
        context = {
            "form": AuctionSearchForm(),
            "live": auction_list(status=AuctionStatus.ACTIVE).using(db)[:HOME_LIST_LIMIT],
            "upcoming": auction_list(status=AuctionStatus.PENDING).using(db)[:HOME_LIST_LIMIT],
            "ended": auction_list(status=AuctionStatus.ENDED)
            .using(db)
            .order_by("-ended_at", "id")[:RECENTLY_ENDED_LIMIT],
        }
        return render(request, "auctions/home.html", context)
    if not form.is_valid():
        return render(request, "auctions/search.html", {"form": form}, status=400)
    results = Paginator(auction_list(**form.selector_arguments()).using(db), SEARCH_PAGE_SIZE)
    page = results.get_page(form.cleaned_data.get("page") or 1)
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode()}
    return render(request, "auctions/search.html", context)


def auction_detail(request: HttpRequest, auction_id: UUID) -> HttpResponse:
    try:
        auction = auction_get(auction_id=auction_id)
    except NotFound as exc:
        raise Http404("No such auction.") from exc
    user = request.user
    mine = None
    watching = False
    if isinstance(user, User):
        with contextlib.suppress(NotFound):
            mine = own_bid(auction_id=auction.id, bidder=user)
        watching = is_watching(user=user, auction_id=auction.id)
    context = {
        "auction": auction,
        "snapshot": auction_snapshot(auction),
        "bids": bid_history(auction_id=auction.id)[:HISTORY_LIMIT],
        "is_creator": user.is_authenticated and auction.creator_id == user.id,
        "is_highest": user.is_authenticated and auction.highest_bidder_id == user.id,
        "can_edit": auction.status == AuctionStatus.PENDING
        and isinstance(user, User)
        and (user.id == auction.creator_id or user.is_staff),
        # The viewer's own max and standing: shown to them alone (spec §7, rule 7).
        "mine": mine,
        "watching": watching,
        # A fresh id per drawn form, so resubmitting the same form places one bid.
        "request_id": f"form-{uuid.uuid4()}",
        "page": {
            "auction_id": str(auction.id),
            "user_id": str(user.id) if user.is_authenticated else None,
            "server_now": iso(db_now()),
            "rejections": {str(code): text for code, text in REJECTION_TEXT.items()},
            "my_max": money(mine.max_amount) if mine else None,
        },
    }
    return render(request, "auctions/detail.html", context)


@login_required
def auction_new(request: SignedInRequest) -> HttpResponse:
    form = AuctionCreateForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            auction = auction_create(creator=request.user, **form.service_arguments())
        except DomainError as error:
            form.add_service_error(error)
        else:
            when = (
                "is open for bids"
                if auction.status == AuctionStatus.ACTIVE
                else f"starts at {auction.start_time:%Y-%m-%d %H:%M} UTC"
            )
            messages.success(request, f"Your auction of “{auction.item.name}” {when}.")
            return redirect("auctions:detail", auction_id=auction.id)
    return render(request, "auctions/new.html", {"form": form})


@login_required
def auction_edit(request: SignedInRequest, auction_id: UUID) -> HttpResponse:
    """A pending auction's seller (or staff) edits its terms, item text and photos (spec §9).

    Saved only if nothing changed the auction since the form was drawn (its version);
    otherwise nothing is saved and the form is drawn again from the auction as it is now.
    """
    try:
        auction = auction_get(auction_id=auction_id)
    except NotFound as exc:
        raise Http404("No such auction.") from exc
    if auction.creator_id != request.user.id and not request.user.is_staff:
        raise Http404("No such auction.")  # not theirs to know about editing
    if auction.status != AuctionStatus.PENDING:
        messages.error(request, "This auction has started: it can no longer be edited.")
        return redirect("auctions:detail", auction_id=auction.id)
    form = AuctionEditForm(request.POST or None, request.FILES or None, auction=auction)
    if request.method == "POST" and form.is_valid():
        try:
            auction_edit_apply(
                auction_id=auction.id,
                actor=request.user,
                version=form.cleaned_data["version"],
                changes=form.changes(),
                photos_added=form.uploads(),
                photos_removed=form.photos_removed(),
            )
        except DomainError as error:
            if error.code == Code.VERSION_CONFLICT:
                messages.error(request, error.message)
                fresh = auction_get(auction_id=auction.id)
                form = AuctionEditForm(auction=fresh)
            else:
                form.add_service_error(error)
        else:
            messages.success(request, "Your changes are saved.")
            return redirect("auctions:detail", auction_id=auction.id)
    return render(request, "auctions/edit.html", {"form": form, "auction": auction})


@login_required
def my_auctions(request: SignedInRequest) -> HttpResponse:
    auctions = auction_list().filter(creator=request.user).order_by("-created_at", "id")
    return render(request, "auctions/mine.html", {"auctions": auctions})
