"""Test settings: the real PostgreSQL and Redis the test command starts, fast hashing."""

from .base import *  # noqa: F403

SECRET_KEY = "test-only-secret-key"
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# tests/conftest.py gives each run a media folder of its own.
CELERY_TASK_ALWAYS_EAGER = False
# Tests never collect static files; whitenoise would warn about the missing folder.
MIDDLEWARE = [m for m in MIDDLEWARE if not m.startswith("whitenoise.")]  # noqa: F405
# Close connections after each use: consumer tests run queries in executor threads.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
# Viewer counts (spec §8) tick once an hour here (the first tick an hour after the first
# subscribe), so a test reading a connection's exact message sequence meets no `viewers`
# message; snapshots still carry counts. Tests of viewer counts ask for a fast tick.
VIEWERS_INTERVAL_SECONDS = 3600.0
# In-process tests that want it run realtime.latest's check themselves.
LATEST_SEQ_CHECK_SECONDS = 3600.0
