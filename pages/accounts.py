"""Account pages: sign up, log in, log out, and API tokens (create, list, revoke)."""

import math
from uuid import UUID

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView, LogoutView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.models import ApiToken
from accounts.requests import SignedInRequest
from accounts.services import api_token_create, api_token_revoke, user_create
from pages.forms import ApiTokenForm, SignupForm

# The session key that carries a new token to the one page that shows it.
NEW_TOKEN_SESSION_KEY = "new_api_token"
# Set on the request by the authentication backend when it refuses a login because of too
# many failures: the seconds until it may be tried again (auction_site.login_throttle).
LOGIN_RETRY_AFTER_ATTRIBUTE = "login_retry_after"


class SiteLoginView(LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_valid(form)
        messages.success(self.request, f"Welcome back, {self.request.user.username}.")
        return response

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        retry_after = getattr(self.request, LOGIN_RETRY_AFTER_ATTRIBUTE, None)
        if not retry_after:
            return super().form_invalid(form)
        # The same answer whether the user exists or not: the count is per username typed.
        minutes = math.ceil(retry_after / 60)
        form.errors.clear()
        form.add_error(
            None,
            "Too many failed attempts to log in with this username from your address. "
            f"Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
        )
        response = self.render_to_response(self.get_context_data(form=form), status=429)
        response["Retry-After"] = str(retry_after)
        return response


class SiteLogoutView(LogoutView):
    """Log out (POST only, as Django's LogoutView) and say so."""

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        was_logged_in = request.user.is_authenticated
        response = super().post(request, *args, **kwargs)
        if was_logged_in:
            messages.info(request, "You are logged out.")
        return response


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("auctions:home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = user_create(
            username=form.cleaned_data["username"],
            password=form.cleaned_data["password1"],
            email=form.cleaned_data.get("email") or "",
        )
        login(request, user)
        messages.success(request, f"Welcome, {user.username}! Your account is ready.")
        return redirect("auctions:home")
    return render(request, "accounts/signup.html", {"form": form})


@login_required
def api_tokens(request: SignedInRequest) -> HttpResponse:
    """The user's tokens; a token created just now is shown here once, then never again."""
    context = {
        "form": ApiTokenForm(),
        "tokens": ApiToken.objects.filter(user=request.user),
        "new_token": request.session.pop(NEW_TOKEN_SESSION_KEY, None),
    }
    response = render(request, "accounts/tokens.html", context)
    # The page may hold a secret: no cache may keep it.
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def api_token_new(request: SignedInRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The token name is too long (at most 100 characters).")
        return redirect("accounts:tokens")
    record, token = api_token_create(user=request.user, name=form.cleaned_data["name"])
    request.session[NEW_TOKEN_SESSION_KEY] = {"name": record.name, "token": token}
    messages.success(request, "Token created. Copy it now: it will not be shown again.")
    return redirect("accounts:tokens")


@login_required
@require_POST
def api_token_delete(request: SignedInRequest, token_id: UUID) -> HttpResponse:
    if api_token_revoke(user=request.user, token_id=str(token_id)):
        messages.success(request, "Token revoked. Clients using it are refused from now on.")
    else:
        messages.error(request, "No such token (it may have been revoked already).")
    return redirect("accounts:tokens")
