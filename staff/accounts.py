"""Staff admin for users and their API tokens (tokens are created by the service, never here)."""

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from accounts.models import ApiToken, User
from accounts.services import api_token_create
from staff.common import UuidSearchMixin

TOKEN_FIELDS = ("name", "prefix", "created_at", "last_used_at")


class ApiTokenInline(admin.TabularInline[ApiToken, User]):
    """A user's tokens: view and revoke (delete) only."""

    model = ApiToken
    fields = TOKEN_FIELDS
    readonly_fields = TOKEN_FIELDS
    extra = 0
    show_change_link = True

    # `obj` is the user whose tokens these are (the stubs type it as a token).
    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(User)
class UserAdmin(UuidSearchMixin, DjangoUserAdmin[User]):
    list_display = ("username", "email", "is_staff", "is_active", "date_joined", "last_login")
    readonly_fields = ("id", "last_login", "date_joined")
    fieldsets = (
        (None, {"fields": ("id", "username", "password")}),
        *(DjangoUserAdmin.fieldsets or ())[1:],
    )
    ordering = ("username",)
    inlines = (ApiTokenInline,)
    actions = ("create_api_token",)

    def get_inlines(self, request: HttpRequest, obj: User | None) -> tuple[Any, ...]:
        # A user being added has no tokens yet.
        return self.inlines if obj else ()

    def has_create_token_permission(self, request: HttpRequest) -> bool:
        # A token lets its holder act as the user, so it takes the right to add tokens.
        return request.user.has_perm("accounts.add_apitoken")

    @admin.action(
        description="Create an API token for the selected users", permissions=["create_token"]
    )
    def create_api_token(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            _, token = api_token_create(user=user, name=f"created in the admin by {request.user}")
            # Only the hash is stored: this message is the one time the token is shown.
            messages.success(
                request,
                f"API token for {user.username} (copy it now, it is not shown again): {token}",
            )


@admin.register(ApiToken)
class ApiTokenAdmin(UuidSearchMixin, admin.ModelAdmin[ApiToken]):
    """Tokens are listed and revoked here; they are created by `api_token_create` only
    (the users' action above, the account page, or `manage.py create_api_token`), since
    an add form could not show the token once or store only its hash."""

    list_display = ("prefix", "user", "name", "created_at", "last_used_at")
    list_select_related = ("user",)
    search_fields = ("user__username", "prefix", "name")
    uuid_search_fields = ("id", "user_id")
    fields = ("user", *TOKEN_FIELDS)
    readonly_fields = fields
    ordering = ("-created_at",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False
