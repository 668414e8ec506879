"""Account forms: signing up and naming a new API token."""

from django import forms
from django.contrib.auth.forms import UserCreationForm

from accounts.models import User


class SignupForm(UserCreationForm):
    """Username, optional email and a password checked by AUTH_PASSWORD_VALIDATORS."""

    email = forms.EmailField(label="Email (optional)", required=False)

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        label="Token name",
        max_length=100,
        required=False,
        help_text="Optional: what the token is for, e.g. “trading bot”.",
    )
