"""HTTP API for the catalogue (spec §9): an item's photos, and the categories."""

from typing import Any

from django.http import HttpRequest
from ninja import Field, File, Router, Schema
from ninja.files import UploadedFile
from ninja.responses import Status

from accounts.requests import ApiRequest
from api.schemas import DESCRIPTION_SCHEMA, NAME_SCHEMA, ErrorOut
from auctions.formats import parse_uuid
from auctions.images import MAX_IMAGES_PER_ITEM
from auctions.models import Category
from auctions.selectors import item_photos_of
from auctions.services import Upload, category_get, item_create, item_images_add

items = Router(tags=["catalogue"])
categories = Router(tags=["catalogue"])


class PhotoListOut(Schema):
    images: list[dict[str, Any]]


class NewItemIn(Schema):
    name: str = Field(json_schema_extra=NAME_SCHEMA)
    description: str = Field("", json_schema_extra=DESCRIPTION_SCHEMA)
    category: str | None = Field(None, description="A category's slug (GET /api/categories/).")


class NewItemOut(Schema):
    id: str
    name: str
    description: str
    category: str | None
    images: list[dict[str, Any]]


@items.post(
    "/", response={201: NewItemOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 422: ErrorOut}
)
def create_item(request: ApiRequest, payload: NewItemIn) -> Status[dict[str, Any]]:
    """A new item of yours: add its photos, then auction it (`item_id`). An item in an
    active auction can no longer change."""
    category = None if payload.category is None else category_get(slug=payload.category)
    item = item_create(
        owner=request.auth, name=payload.name, description=payload.description, category=category
    )
    body: dict[str, Any] = {
        "id": str(item.id),
        "name": item.name,
        "description": item.description,
        "category": payload.category,
        "images": [],
    }
    return Status(201, body)


class CategoryOut(Schema):
    slug: str
    name: str


@items.post(
    "/{item_id}/images/",
    response={201: PhotoListOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut,
              409: ErrorOut, 413: ErrorOut, 422: ErrorOut},
    openapi_extra={"requestBody": {"content": {"multipart/form-data": {"schema": {
        "properties": {"images": {"minItems": 1, "maxItems": MAX_IMAGES_PER_ITEM}}}}}}},
)  # fmt: skip
def add_item_images(
    request: ApiRequest, item_id: str, images: File[list[UploadedFile]]
) -> Status[dict[str, Any]]:
    """Add photos to your item (multipart, field `images`, one or more files).

    JPEG, PNG or WebP, at most 10 MB each and 10 per item; checked by decoding them,
    turned upright and stripped of metadata. Any bad file refuses the whole upload (422
    `validation_error`) and stores nothing; an item on sale can no longer change (409
    `not_editable`).
    """
    uploads = [Upload(file=file, size=file.size or 0) for file in images]
    item_uuid = parse_uuid(item_id, "item")
    item_images_add(item_id=item_uuid, actor=request.auth, uploads=uploads)
    return Status(201, {"images": item_photos_of(item_id=item_uuid)})


@categories.get("/", response={200: list[CategoryOut], 401: ErrorOut})
def list_categories(request: HttpRequest) -> list[dict[str, str]]:
    """The categories an item can be in (managed by staff)."""
    return [{"slug": c.slug, "name": c.name} for c in Category.objects.all()]
