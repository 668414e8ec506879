"""The pages' forms: signing up, API tokens, creating, editing and searching auctions.

They only shape input; the services (accounts, auctions) decide what is valid.
"""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from django import forms
from django.contrib.auth.forms import UserCreationForm

from accounts.models import User
from auctions.errors import DomainError
from auctions.formats import is_storable_text, money
from auctions.models import Auction, AuctionStatus, Category
from auctions.pricing import increment_tables
from auctions.services import Upload
from notifications.models import Kind


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

# Service field names (auctions.services) → the forms' fields, for error messages.
SERVICE_FIELDS = {
    "item": "item_name",
    "item.name": "item_name",
    "item.description": "item_description",
    "category": "category",
    "images": "photos",
    "starting_price": "starting_price",
    "reserve_price": "reserve_price",
    "min_increment": "min_increment",
    "increments": "increments",
    "buy_now_price": "buy_now_price",
    "start_time": "start_time",
    "end_time": "duration_minutes",
    "duration_seconds": "duration_minutes",
    "extension_seconds": "extension_seconds",
}


class MultiplePhotoInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class PhotosField(forms.FileField):
    """Several photos at once; the service checks each (type, size, count)."""

    widget = MultiplePhotoInput(attrs={"accept": "image/jpeg,image/png,image/webp"})

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        files = data if isinstance(data, list | tuple) else [data] if data else []
        return [super(PhotosField, self).clean(file, initial) for file in files]


def _money_input(label: str, help_text: str = "", required: bool = False) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=required,
        max_length=32,
        help_text=help_text,
        widget=forms.TextInput({"inputmode": "decimal"}),
    )


class AuctionTermsForm(forms.Form):
    """What creating and editing share. Only shapes input: money stays text, so
    auctions.services parses it exactly and decides what is valid."""

    item_name = forms.CharField(label="Item name", max_length=200)
    item_description = forms.CharField(
        label="Description", required=False, max_length=10_000, widget=forms.Textarea({"rows": 4})
    )
    category = forms.ChoiceField(label="Category", required=False)
    starting_price = _money_input("Starting price", required=True)
    reserve_price = _money_input("Reserve price", "Optional. Below it the item is not sold.")
    min_increment = _money_input(
        "Minimum increment", "Optional, default 0.01 (with a fixed increment)."
    )
    increments = forms.ChoiceField(
        label="Increments",
        required=False,
        help_text="A fixed increment, or one of the site's tables that grow with the price.",
    )
    buy_now_price = _money_input(
        "Buy it now price", "Optional. Anyone may buy at this price until the first bid."
    )
    start_time = forms.DateTimeField(
        label="Start time",
        required=False,
        help_text="Optional. Empty or in the past: the auction starts now.",
        widget=forms.DateTimeInput({"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    extension_seconds = forms.IntegerField(
        label="Soft close (seconds)",
        required=False,
        min_value=0,
        max_value=MAX_EXTENSION_SECONDS,
        help_text="Optional. A bid this close to the end extends the auction; 0 turns it off.",
    )
    photos = PhotosField(
        label="Photos",
        required=False,
        help_text="Up to 10 JPEG, PNG or WebP images, at most 10 MB each.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        categories = self.fields["category"]
        assert isinstance(categories, forms.ChoiceField)
        categories.choices = [("", "none")] + [(c.slug, c.name) for c in Category.objects.all()]
        tables = self.fields["increments"]
        assert isinstance(tables, forms.ChoiceField)
        names = sorted(increment_tables())
        tables.choices = [("", "fixed (minimum increment)")] + [
            (n, f"the {n} table") for n in names
        ]

    def local_time(self, field: str) -> datetime | None:
        """A datetime-local value, which is UTC: the page says so, and with JavaScript
        (static/js/site.js) the viewer types their own time and it is sent as UTC."""
        moment: datetime | None = self.cleaned_data.get(field)
        return None if moment is None else moment.replace(tzinfo=UTC)

    def terms(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "starting_price": data["starting_price"],
            "reserve_price": data["reserve_price"] or None,
            "min_increment": data["min_increment"] or None,
            "increments": data["increments"] or None,
            "buy_now_price": data["buy_now_price"] or None,
            "extension_seconds": data["extension_seconds"] or 0,
        }

    def uploads(self) -> list[Upload]:
        files = self.cleaned_data.get("photos") or []
        return [Upload(file=file, size=file.size) for file in files]

    def add_service_error(self, error: DomainError) -> None:
        """Show a service's refusal next to the field it names (or above the form)."""
        field = SERVICE_FIELDS.get(error.data.get("field", ""))
        message = error.message
        # The services prefix money errors with the API's field name; the label says it here.
        if field and message.startswith(f"{error.data.get('field')}: "):
            message = message.split(": ", 1)[1]
        self.add_error(field if field in self.fields else None, message)


class AuctionCreateForm(AuctionTermsForm):
    """An item and its auction in one (photos included), checked by auctions.services."""

    duration_minutes = forms.IntegerField(
        label="Duration (minutes)", min_value=1, max_value=MAX_DURATION_MINUTES, initial=60
    )

    field_order = [
        "item_name", "item_description", "category", "photos", "starting_price",
        "reserve_price", "min_increment", "increments", "buy_now_price", "start_time",
        "duration_minutes", "extension_seconds",
    ]  # fmt: skip

    def service_arguments(self) -> dict[str, Any]:
        """Keyword arguments for auctions.services.auction_create."""
        data = self.cleaned_data
        category = data.get("category")
        return {
            "item_name": data["item_name"],
            "item_description": data["item_description"],
            "category": Category.objects.filter(slug=category).first() if category else None,
            **self.terms(),
            "start_time": self.local_time("start_time"),
            "duration_seconds": data["duration_minutes"] * 60,
            "photos": self.uploads(),
        }


class AuctionEditForm(AuctionTermsForm):
    """A pending auction's terms, as shown at `version` (spec §9): saved only if unchanged."""

    version = forms.IntegerField(widget=forms.HiddenInput, min_value=0)
    end_time = forms.DateTimeField(
        label="End time",
        widget=forms.DateTimeInput({"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    remove_photos = forms.MultipleChoiceField(
        label="Remove photos", required=False, widget=forms.CheckboxSelectMultiple
    )

    field_order = [
        "item_name", "item_description", "category", "photos", "remove_photos",
        "starting_price", "reserve_price", "min_increment", "increments", "buy_now_price",
        "start_time", "end_time", "extension_seconds",
    ]  # fmt: skip

    def __init__(self, *args: Any, auction: Auction, **kwargs: Any) -> None:
        kwargs.setdefault("initial", _edit_initial(auction))
        super().__init__(*args, **kwargs)
        self.fields["start_time"].help_text = "When bidding opens; a time still to come."
        self.fields["start_time"].required = True
        removable = self.fields["remove_photos"]
        assert isinstance(removable, forms.MultipleChoiceField)
        removable.choices = [
            (str(photo.id), f"photo {photo.position}") for photo in auction.item.images.all()
        ]

    def changes(self) -> dict[str, Any]:
        """What auctions.services.auction_update takes: the fields the editor changed.

        A field left as drawn is not sent, so what the form cannot show exactly (times
        to the second, an increment table that is not one of the site's) stays as it is.
        """
        data = self.cleaned_data
        every = {
            "item_name": data["item_name"],
            "item_description": data["item_description"],
            "category": data.get("category") or None,
            **self.terms(),
            "start_time": self.local_time("start_time"),
            "end_time": self.local_time("end_time"),
        }
        changed = set(self.changed_data)
        return {field: value for field, value in every.items() if field in changed}

    def photos_removed(self) -> list[UUID]:
        return [UUID(value) for value in self.cleaned_data.get("remove_photos") or []]


def _edit_initial(auction: Auction) -> dict[str, Any]:
    # In the shapes the fields clean to (text for money, aware times to the minute the
    # widget shows), so `changed_data` names exactly what the editor changed.
    return {
        "version": auction.version,
        "item_name": auction.item.name,
        "item_description": auction.item.description,
        "category": auction.item.category.slug if auction.item.category else "",
        "starting_price": money(auction.starting_price),
        "reserve_price": money(auction.reserve_price) or "",
        "min_increment": "" if auction.increments else money(auction.min_increment),
        "increments": _table_name(auction.increments),
        "buy_now_price": money(auction.buy_now_price) or "",
        "start_time": _to_the_minute(auction.start_time),
        "end_time": _to_the_minute(auction.end_time),
        "extension_seconds": auction.extension_seconds,
    }


def _to_the_minute(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def _table_name(table: object) -> str:
    if not table:
        return ""
    for name, rows in increment_tables().items():
        if [list(row) for row in rows] == table:
            return name
    return ""


class StaffAuctionCreateForm(AuctionCreateForm):
    """Staff put up an auction for any user: the seller owns the new item."""

    seller = forms.ModelChoiceField(label="Seller", queryset=User.objects.order_by("username"))

    field_order = ["seller", *AuctionCreateForm.field_order]


class AuctionSearchForm(forms.Form):
    """The list page's search (spec §9): words, category, status, price range, order."""

    q = forms.CharField(label="Search", required=False, max_length=200)
    category = forms.ChoiceField(label="Category", required=False)
    status = forms.ChoiceField(
        label="Status",
        required=False,
        choices=[("", "any")] + [(s.value, s.label) for s in AuctionStatus],
    )
    min_price = forms.DecimalField(
        label="Price from", required=False, min_value=0, max_digits=12, decimal_places=2
    )
    max_price = forms.DecimalField(
        label="to", required=False, min_value=0, max_digits=12, decimal_places=2
    )
    ordering = forms.ChoiceField(
        label="Sort by",
        required=False,
        choices=[
            ("", "best match / ending soonest"),
            ("ending", "ending soonest"),
            ("newest", "newest"),
            ("price", "price, lowest first"),
            ("-price", "price, highest first"),
        ],
    )
    page = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choice = self.fields["category"]
        assert isinstance(choice, forms.ChoiceField)
        choice.choices = [("", "all")] + [(c.slug, c.name) for c in Category.objects.all()]

    def clean_q(self) -> str:
        text: str = self.cleaned_data["q"]
        if not is_storable_text(text):
            raise forms.ValidationError("The search contains characters that cannot be searched.")
        return text.strip()

    def is_search(self) -> bool:
        """Anything asked for beyond the front page."""
        return any(self.data.get(name) for name in self.fields if name != "page")

    def selector_arguments(self) -> dict[str, Any]:
        """Keyword arguments for auctions.selectors.auction_list."""
        data = self.cleaned_data
        category = data.get("category")
        return {
            "q": data.get("q") or None,
            "category": Category.objects.get(slug=category) if category else None,
            "status": data.get("status") or None,
            "min_price": data.get("min_price"),
            "max_price": data.get("max_price"),
            "ordering": data.get("ordering") or None,
        }


# What each kind of notification e-mail is, in the words of the e-mail settings page.
EMAIL_KIND_TEXT = {
    Kind.OUTBID: "when another bidder outbids you",
    Kind.ENDING_SOON: "when an auction you watch is about to end",
    Kind.WON: "when you win an auction",
    Kind.LOST: "when an auction you bid on goes to another bidder",
    Kind.SOLD: "when something you sell is sold",
    Kind.NOT_SOLD: "when your auction ends without a sale",
}


class EmailSettingsForm(forms.Form):
    """Which notifications come by e-mail: one checkbox per kind (spec §8)."""

    kinds = forms.MultipleChoiceField(
        label="E-mail me",
        required=False,
        choices=[(str(kind), text) for kind, text in EMAIL_KIND_TEXT.items()],
        widget=forms.CheckboxSelectMultiple,
    )
