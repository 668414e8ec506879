"""What the admin pages share: UUID search, view-only records, links to filtered lists."""

from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.contrib import admin
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html


def _as_uuid(text: str) -> UUID | None:
    try:
        return UUID(text.strip())
    except ValueError:
        return None


if TYPE_CHECKING:  # what the mixin is mixed into; at run time it adds only its method
    _SearchBase = admin.ModelAdmin[Any]
else:
    _SearchBase = object


class UuidSearchMixin(_SearchBase):
    """A search term that is a UUID finds rows by these id fields (using their index).

    Django's "=id" search would compare `id::text` case-insensitively, which scans the table.
    """

    uuid_search_fields: tuple[str, ...] = ("id",)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        if (uuid := _as_uuid(search_term)) is not None:
            return queryset.filter(
                Q.create([(field, uuid) for field in self.uuid_search_fields], connector=Q.OR)
            ), False
        return super().get_search_results(request, queryset, search_term)


class ReadOnlyAdminMixin:
    """Records nobody may add, change or delete by hand; staff may view them."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


def changelist_link(model: type[Model], text: str, **filters: Any) -> str:
    query = "&".join(f"{key}={value}" for key, value in filters.items())
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return format_html('<a href="{}?{}">{}</a>', url, query, text)
