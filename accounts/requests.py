"""Requests whose caller is known: what views behind a login, and API operations, receive."""

from django.http import HttpRequest

from accounts.models import User


class SignedInRequest(HttpRequest):
    """A page request behind `login_required`: its user is signed in."""

    user: User


class ApiRequest(HttpRequest):
    """An API request that passed authentication: `auth` is the caller (django-ninja)."""

    auth: User
