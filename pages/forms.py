"""The pages' forms: signing up, naming an API token, and creating an auction.

They only shape input; the services (accounts, auctions) decide what is valid.
"""

from datetime import UTC
from typing import Any

from django import forms
from django.contrib.auth.forms import UserCreationForm

from accounts.models import User
from auctions.errors import DomainError
from auctions.pricing import increment_tables


class SignupForm(UserCreationForm[User]):
    """Username, optional email and a password checked by AUTH_PASSWORD_VALIDATORS."""

    email = forms.EmailField(label="Email (optional)", required=False)

    class Meta(UserCreationForm.Meta):  # type: ignore[name-defined,misc]  # not in the stubs
        model = User
        fields = ("username", "email")


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        label="Token name",
        max_length=100,
        required=False,
        help_text="Optional: what the token is for, e.g. “trading bot”.",
    )


MAX_DURATION_MINUTES = 365 * 24 * 60
MAX_EXTENSION_SECONDS = 24 * 3600

# Service field names (auctions.services) → this form's fields, for error messages.
SERVICE_FIELDS = {
    "item": "item_name",
    "item.name": "item_name",
    "item.description": "item_description",
    "starting_price": "starting_price",
    "reserve_price": "reserve_price",
    "min_increment": "min_increment",
    "increments": "increments",
    "buy_now_price": "buy_now_price",
    "end_time": "duration_minutes",
    "duration_seconds": "duration_minutes",
    "extension_seconds": "extension_seconds",
}


class AuctionCreateForm(forms.Form):
    """Only shapes input: money stays text, so auctions.services parses it exactly."""

    item_name = forms.CharField(label="Item name", max_length=200)
    item_description = forms.CharField(
        label="Description", required=False, max_length=10_000, widget=forms.Textarea({"rows": 4})
    )
    starting_price = forms.CharField(
        label="Starting price", max_length=32, widget=forms.TextInput({"inputmode": "decimal"})
    )
    reserve_price = forms.CharField(
        label="Reserve price",
        required=False,
        max_length=32,
        help_text="Optional. Below it the item is not sold.",
        widget=forms.TextInput({"inputmode": "decimal"}),
    )
    min_increment = forms.CharField(
        label="Minimum increment",
        required=False,
        max_length=32,
        help_text="Optional, default 0.01 (with a fixed increment).",
        widget=forms.TextInput({"inputmode": "decimal"}),
    )
    increments = forms.ChoiceField(
        label="Increments",
        required=False,
        help_text="A fixed increment, or one of the site's tables that grow with the price.",
    )
    buy_now_price = forms.CharField(
        label="Buy it now price",
        required=False,
        max_length=32,
        help_text="Optional. Anyone may buy at this price until the first bid.",
        widget=forms.TextInput({"inputmode": "decimal"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tables = [(name, f"the {name} table") for name in sorted(increment_tables())]
        choice = self.fields["increments"]
        assert isinstance(choice, forms.ChoiceField)
        choice.choices = [("", "fixed (minimum increment)"), *tables]

    start_time = forms.DateTimeField(
        label="Start time (UTC)",
        required=False,
        help_text="Optional. Empty or in the past: the auction starts now.",
        widget=forms.DateTimeInput({"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    duration_minutes = forms.IntegerField(
        label="Duration (minutes)", min_value=1, max_value=MAX_DURATION_MINUTES, initial=60
    )
    extension_seconds = forms.IntegerField(
        label="Soft close (seconds)",
        required=False,
        min_value=0,
        max_value=MAX_EXTENSION_SECONDS,
        help_text="Optional. A bid this close to the end extends the auction; 0 turns it off.",
    )

    def clean_start_time(self) -> Any:
        start = self.cleaned_data.get("start_time")
        # The page says times are UTC; a datetime-local value carries no zone of its own.
        return start.replace(tzinfo=UTC) if start is not None else None

    def service_arguments(self) -> dict[str, Any]:
        """Keyword arguments for auctions.services.auction_create."""
        data = self.cleaned_data
        return {
            "item_name": data["item_name"],
            "item_description": data["item_description"],
            "starting_price": data["starting_price"],
            "reserve_price": data["reserve_price"] or None,
            "min_increment": data["min_increment"] or None,
            "increments": data["increments"] or None,
            "buy_now_price": data["buy_now_price"] or None,
            "start_time": data["start_time"],
            "duration_seconds": data["duration_minutes"] * 60,
            "extension_seconds": data["extension_seconds"] or 0,
        }

    def add_service_error(self, error: DomainError) -> None:
        """Show a service's refusal next to the field it names (or above the form)."""
        field = SERVICE_FIELDS.get(error.data.get("field", ""))
        message = error.message
        # The services prefix money errors with the API's field name; the label says it here.
        if field and message.startswith(f"{error.data.get('field')}: "):
            message = message.split(": ", 1)[1]
        self.add_error(field, message)
