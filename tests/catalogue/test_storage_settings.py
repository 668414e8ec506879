"""Where photos are stored (spec §9): the local media folder by default, any S3-compatible
store by settings alone (django-storages). No network: building a storage and signing a
URL are local work.

Each case reads the settings module afresh (a copy of its own, under another name) with
the environment it names, and builds the storage its STORAGES select, as Django would.
"""

import importlib.util
import uuid
from pathlib import Path
from types import ModuleType

import pytest
from django.core.files.storage.handler import StorageHandler

BASE_SETTINGS = Path(__file__).resolve().parents[2] / "auction_site" / "settings" / "base.py"
S3_ENV = {
    "MEDIA_S3_BUCKET": "auction-photos",
    "MEDIA_S3_ACCESS_KEY_ID": "AKIAEXAMPLE",
    "MEDIA_S3_SECRET_ACCESS_KEY": "secret-example",
    "MEDIA_S3_REGION": "eu-west-1",
}


@pytest.fixture
def settings_with(monkeypatch):
    monkeypatch.setenv("ENV_FILE", "/dev/null")  # a developer's .env must not leak in
    # No credentials, region or metadata lookups from the machine's own AWS setup.
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("MEDIA_ROOT", "MEDIA_URL", "SERVE_MEDIA", *S3_ENV):
        monkeypatch.delenv(name, raising=False)
    for name in ("ENDPOINT_URL", "CUSTOM_DOMAIN", "SIGNED_URLS"):
        monkeypatch.delenv(f"MEDIA_S3_{name}", raising=False)

    def read(**env: str) -> ModuleType:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        spec = importlib.util.spec_from_file_location(f"settings_{uuid.uuid4().hex}", BASE_SETTINGS)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return read


def default_storage_of(module: ModuleType):
    return StorageHandler(module.STORAGES)["default"]


def test_by_default_photos_go_to_the_local_media_folder(settings_with, tmp_path):
    module = settings_with(MEDIA_ROOT=str(tmp_path))
    assert module.STORAGES["default"] == {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    media_root, media_url = module.MEDIA_ROOT, module.MEDIA_URL
    assert (media_root, media_url) == (tmp_path, "/media/")
    assert module.SERVE_MEDIA is True


def test_behind_a_proxy_the_app_leaves_the_media_folder_to_it(settings_with):
    module = settings_with(SERVE_MEDIA="0", MEDIA_URL="https://cdn.example.com/media/")
    assert module.SERVE_MEDIA is False
    assert module.MEDIA_URL == "https://cdn.example.com/media/"


def test_an_s3_bucket_selects_the_django_storages_backend(settings_with):
    module = settings_with(**S3_ENV, MEDIA_S3_ENDPOINT_URL="https://s3.minio.example:9000")
    assert module.STORAGES["default"]["BACKEND"] == "storages.backends.s3.S3Storage"

    storage = default_storage_of(module)

    assert type(storage).__module__ + "." + type(storage).__name__ == (
        "storages.backends.s3.S3Storage"
    )
    assert storage.bucket_name == "auction-photos"
    assert storage.endpoint_url == "https://s3.minio.example:9000"
    assert storage.region_name == "eu-west-1"
    assert storage.file_overwrite is False  # two photos never share a name
    # Signed by default, so a private bucket's photos can still be shown.
    url = storage.url("items/abc/photo.jpg")
    assert url.startswith("https://s3.minio.example:9000/auction-photos/items/abc/photo.jpg?")
    assert "Signature=" in url


def test_a_public_domain_gives_plain_urls(settings_with):
    module = settings_with(
        **S3_ENV, MEDIA_S3_CUSTOM_DOMAIN="photos.example.com", MEDIA_S3_SIGNED_URLS="0"
    )
    storage = default_storage_of(module)
    assert storage.url("items/abc/photo.jpg") == "https://photos.example.com/items/abc/photo.jpg"


def test_without_an_endpoint_it_is_aws_itself(settings_with):
    storage = default_storage_of(settings_with(**S3_ENV))
    assert storage.endpoint_url is None
    assert "auction-photos" in storage.url("items/abc/photo.jpg")
    assert ".amazonaws.com/" in storage.url("items/abc/photo.jpg")
