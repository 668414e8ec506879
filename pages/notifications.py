"""Watchlist and notification pages (spec §8): the watch button, "watching", the
notifications page, e-mail settings and the unsubscribe link of every e-mail."""

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import User
from accounts.requests import SignedInRequest
from auctions.errors import NotFound
from auctions.selectors import auction_must_exist, watchlist
from infra.replica import reads_for
from notifications.email import unsubscribe_read
from notifications.models import Kind
from notifications.services import (
    email_kind_off,
    email_kinds_off,
    email_settings_set,
    notifications_latest,
    notifications_mark_read,
    watch_add,
    watch_remove,
)
from pages.forms import EMAIL_KIND_TEXT, EmailSettingsForm

NOTIFICATIONS_SHOWN = 50
WATCHING_SHOWN = 200


@login_required
@require_POST
def watch_set(request: SignedInRequest, auction_id: UUID) -> HttpResponse:
    """The auction page's Watch / Stop watching button (`watch` is 1 or 0)."""
    try:
        auction_must_exist(auction_id=auction_id)
    except NotFound as exc:
        raise Http404("No such auction.") from exc
    if request.POST.get("watch") == "0":
        watch_remove(user=request.user, auction_id=auction_id)
        messages.info(request, "You no longer watch this auction.")
    else:
        watch_add(user=request.user, auction_id=auction_id)
        messages.success(request, "You are watching this auction: we will tell you before it ends.")
    back = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(back)
    return redirect("auctions:detail", auction_id=auction_id)


@login_required
def watching(request: SignedInRequest) -> HttpResponse:
    """The auctions the user watches: open ones first, ending soonest first."""
    auctions = watchlist(user=request.user).using(reads_for(request.user.id))[:WATCHING_SHOWN]
    return render(request, "notifications/watching.html", {"auctions": auctions})


@login_required
def notification_list(request: SignedInRequest) -> HttpResponse:
    """The latest notifications, newest first. Seeing them marks them read: those shown,
    and any older ones (a notification that arrives meanwhile stays unread)."""
    shown = list(notifications_latest(user=request.user, limit=NOTIFICATIONS_SHOWN))
    rows = [{"notification": n, "new": n.read_at is None} for n in shown]
    if shown:
        notifications_mark_read(user=request.user, upto_seq=shown[0].seq)
    return render(request, "notifications/list.html", {"rows": rows})


@login_required
def email_settings(request: SignedInRequest) -> HttpResponse:
    """One checkbox per kind of notification e-mail; all are on until the user says."""
    if request.method == "POST":
        form = EmailSettingsForm(request.POST)
        if form.is_valid():
            email_settings_set(user=request.user, kinds_on=form.cleaned_data["kinds"])
            messages.success(request, "Your e-mail settings are saved.")
            return redirect("accounts:email")
    else:
        off = email_kinds_off(user=request.user)
        form = EmailSettingsForm(initial={"kinds": [k for k in Kind.values if k not in off]})
    context = {"form": form, "has_address": bool(request.user.email)}
    return render(request, "accounts/email.html", context)


@csrf_exempt  # RFC 8058: a mail client's one-click POST carries no session and no CSRF token
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """An e-mail's unsubscribe link: GET shows what it turns off and asks to confirm; POST
    (the button, or the mail client's List-Unsubscribe-Post) turns that kind off."""
    what = unsubscribe_read(token)
    user = User.objects.filter(id=what.user_id).first() if what else None
    if what is None or user is None:
        return render(request, "notifications/unsubscribe_invalid.html", status=400)
    context: dict[str, Any] = {
        "token": token,
        "account": user.username,
        "kind_text": EMAIL_KIND_TEXT[Kind(what.kind)],
        "done": False,
    }
    if request.method == "POST":
        email_kind_off(user_id=what.user_id, kind=what.kind)
        context["done"] = True
    return render(request, "notifications/unsubscribe.html", context)
