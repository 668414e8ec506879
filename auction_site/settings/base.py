"""Settings shared by every environment, read from the environment (and `.env`) per spec §5."""

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import django_stubs_ext
import environ
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent.parent

# Lets Django's generic classes be subscripted (`admin.ModelAdmin[Auction]`) at run time,
# as their type stubs are.
django_stubs_ext.monkeypatch()

env = environ.Env()
# Real environment variables win over the file; ENV_FILE names another file (or /dev/null).
environ.Env.read_env(os.environ.get("ENV_FILE", BASE_DIR / ".env"), overwrite=False)


def _read_run_state(path: Path) -> None:
    """The URLs of the servers a running `scripts/run` started, so that `manage.py …` in
    another shell finds them with nothing set by hand (spec §11).

    scripts/stack.py writes the file (`.run/env`; RUN_ENV_FILE names another, or /dev/null)
    and removes it when it stops the servers; one whose writer is no longer running is
    ignored. A URL set in the environment or .env, under either of its names, wins.
    """
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return
    pairs = (line.partition("=") for line in lines if not line.startswith("#"))
    values = {name.strip(): value.strip() for name, _, value in pairs}
    try:
        os.kill(int(values.get("STACK_RUN_PID", "")), 0)
    except (ValueError, ProcessLookupError):
        return
    except PermissionError:
        pass  # alive, someone else's
    for name, aliases in (("DATABASE_URL", ("DB_URL",)), ("REDIS_URL", ("REDIS_ADDR",))):
        if values.get(name) and not any(os.environ.get(n) for n in (name, *aliases)):
            os.environ[name] = values[name]


_read_run_state(Path(os.environ.get("RUN_ENV_FILE", BASE_DIR / ".run" / "env")))


def _redis_url() -> str:
    """`REDIS_URL`, or one built from the original design's REDIS_ADDR, _PASSWORD and _DB."""
    if url := str(env.str("REDIS_URL", default="")):
        return url
    addr = str(env.str("REDIS_ADDR", default="127.0.0.1:6379"))
    password = str(env.str("REDIS_PASSWORD", default=""))
    auth = f":{quote(password, safe='')}@" if password else ""
    return f"redis://{auth}{addr}/{env.int('REDIS_DB', default=0)}"


DEBUG = env.bool("DEBUG", default=False)
HOST = env.str("HOST", default="127.0.0.1")
PORT = env.int("PORT", default=8000)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "channels",
    "django_celery_beat",
    "ninja",
    # The domain, lowest layer first: each imports only those above it in this list.
    "accounts",
    "notifications",
    "auctions",
    "bidding",
    # What the domain is reached through; then the project, which ties it all together.
    "realtime",
    "staff",
    "auction_site",
]

MIDDLEWARE = [
    # First: one access line per request, static files included (auction_site.access_log).
    "auction_site.access_log.AccessLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # The pages' Content-Security-Policy (CONTENT_SECURITY_POLICY below).
    "auction_site.csp.SiteCSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # With a replica: a request that wrote sends its author's reads to the primary.
    "auction_site.read_your_writes.ReadYourWritesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "auction_site.urls"
ASGI_APPLICATION = "auction_site.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                # The unread notification count in every page's header (spec §8).
                "pages.context.notifications",
            ],
        },
    },
]

# `DB_URL` is the original design's name for the same thing.
DATABASE_URL = env.str("DATABASE_URL", default="") or env.str(
    "DB_URL", default="postgres://auction:auction@127.0.0.1:5432/auction"
)
PREPARE_ONLY_WHEN_ASKED = 2**31 - 1
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
DATABASES["default"].update(
    {
        "ATOMIC_REQUESTS": False,
        # Connections are reused across requests; health checks drop broken ones.
        "CONN_MAX_AGE": env.int("DB_CONN_MAX_AGE", default=60),
        # A health check is a SELECT 1 before the first query of every request, and every
        # WebSocket database call counts as one: profiling showed it at 30% of a web
        # process's busy time. Off by default; a broken connection fails one call and is
        # then replaced.
        "CONN_HEALTH_CHECKS": env.bool("DB_CONN_HEALTH_CHECKS", default=False),
        "OPTIONS": {
            # Fail fast (readiness checks, requests) when the database cannot be reached.
            "connect_timeout": env.int("DB_CONNECT_TIMEOUT", default=5),
            # Django turns psycopg's server-side prepared statements off (threshold None,
            # for transaction-mode poolers), and then psycopg ignores even an explicit
            # `execute(..., prepare=True)`. The bid statement asks for it (planning it costs
            # as much as running it): a threshold no other query reaches prepares exactly
            # the statements that ask. DB_PREPARED_STATEMENTS=false behind such a pooler.
            "prepare_threshold": (
                PREPARE_ONLY_WHEN_ASKED
                if env.bool("DB_PREPARED_STATEMENTS", default=True)
                else None
            ),
        },
    }
)

# psycopg's connection pool (Django's "pool" option), the documented alternative to
# CONN_MAX_AGE under ASGI: each process keeps DB_POOL_MIN_SIZE to DB_POOL_MAX_SIZE
# connections and lends one per database call (spec §10).
if env.bool("DB_POOL", default=False):
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps them; Django must not
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DB_POOL_MAX_SIZE", default=20),
        "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
    }

# A streaming replica for the pages' and the API's lists and histories (spec §10,
# infra.replica); whoever wrote in the last REPLICA_READ_YOUR_WRITES_SECONDS reads the
# primary instead. Tests mirror it onto the primary.
DATABASE_REPLICA_URL = env.str("DATABASE_REPLICA_URL", default="")
if DATABASE_REPLICA_URL:
    _replica = env.db_url_config(DATABASE_REPLICA_URL)
    DATABASES["replica"] = {
        **DATABASES["default"],
        **_replica,
        "OPTIONS": {**DATABASES["default"]["OPTIONS"], **_replica.get("OPTIONS", {})},
        "TEST": {"MIRROR": "default"},
    }
REPLICA_READ_YOUR_WRITES_SECONDS = env.int("REPLICA_READ_YOUR_WRITES_SECONDS", default=10)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
# Django's password check behind a limit: LOGIN_FAILURE_LIMIT failures per username and
# client address in LOGIN_FAILURE_WINDOW_SECONDS, counted in Redis, then refusals (429 on
# the login page) until the window ends; 0 turns it off (auction_site.login_throttle).
AUTHENTICATION_BACKENDS = ["auction_site.login_throttle.ThrottledModelBackend"]
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_FAILURE_WINDOW_SECONDS = env.int("LOGIN_FAILURE_WINDOW_SECONDS", default=300)
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Where `collectstatic` puts them (a deployment step, spec §6).
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
# Uploaded files (item photos, spec §9): the local media folder, served by the app itself
# unless SERVE_MEDIA=0 (behind a proxy that serves MEDIA_ROOT at MEDIA_URL); or, when
# MEDIA_S3_BUCKET is set, any S3-compatible store through django-storages.
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "media")))
MEDIA_URL = env.str("MEDIA_URL", default="/media/")
SERVE_MEDIA = env.bool("SERVE_MEDIA", default=True)
MEDIA_STORAGE: dict[str, object] = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
if env.str("MEDIA_S3_BUCKET", default=""):
    MEDIA_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("MEDIA_S3_BUCKET"),
            # Another S3-compatible service (MinIO, R2, …); empty for AWS itself.
            "endpoint_url": env.str("MEDIA_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("MEDIA_S3_REGION", default="") or None,
            "access_key": env.str("MEDIA_S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("MEDIA_S3_SECRET_ACCESS_KEY", default="") or None,
            # A public bucket or CDN domain gives plain URLs; otherwise URLs are signed.
            "custom_domain": env.str("MEDIA_S3_CUSTOM_DOMAIN", default="") or None,
            "querystring_auth": env.bool("MEDIA_S3_SIGNED_URLS", default=True),
            "file_overwrite": False,
        },
    }
STORAGES = {
    "default": MEDIA_STORAGE,
    # WhiteNoise's hashed, compressed files once `collectstatic` has run; until then (or for
    # a file added since) plain names, which WhiteNoise serves from the source folders.
    "staticfiles": {"BACKEND": "auction_site.static_storage.ManifestOrPlainStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True


def _media_origins() -> list[str]:
    """Where item photos come from when they are not on this site (img-src)."""
    options: Any = MEDIA_STORAGE.get("OPTIONS", {})
    urls = [MEDIA_URL, options.get("endpoint_url") or ""]
    if domain := options.get("custom_domain"):
        urls.append(f"https://{domain}")
    elif (bucket := options.get("bucket_name")) and not options.get("endpoint_url"):
        urls.append(f"https://{bucket}.s3.amazonaws.com")
        if region := options.get("region_name"):
            urls.append(f"https://{bucket}.s3.{region}.amazonaws.com")
    origins = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.netloc:
            origins.append(f"{parts.scheme}://{parts.netloc}")
    return origins


# The pages' Content-Security-Policy (django-csp; auction_site.csp adds the page's own ws:
# or wss: origin to connect-src). No inline script or style anywhere: scripts and styles
# are files in static/. Photos may come from the media store; previews of a photo being
# uploaded are blob: URLs. CSP_EXTRA_IMG_SRC adds image sources (a CDN, say).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [
            SELF,
            "data:",
            "blob:",
            *_media_origins(),
            *env.list("CSP_EXTRA_IMG_SRC", default=[]),
        ],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

REDIS_URL = _redis_url()

# Pub/sub: one Redis subscription per process and group, fanned out in the process.
# CHANNEL_LAYER=list selects the list-based layer (kept for side-by-side measurement).
CHANNEL_LAYER_BACKENDS = {
    "pubsub": "realtime.layers.AuctionChannelLayer",
    "list": "channels_redis.core.RedisChannelLayer",
}
# Redis channel names start with it (channels-redis's own default).
CHANNEL_LAYER_PREFIX = "asgi"
# The channel layer's Redis servers (spec §10): CHANNEL_REDIS_URLS spreads the auctions'
# groups over several, by the layer's own consistent hash of the group's channel name, so
# every instance must list them in the same order; REDIS_URL's alone by default.
CHANNEL_REDIS_URLS = env.list("CHANNEL_REDIS_URLS", default=[]) or [REDIS_URL]
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": CHANNEL_LAYER_BACKENDS[env.str("CHANNEL_LAYER", default="pubsub")],
        "CONFIG": {
            "hosts": [{"address": url, "socket_connect_timeout": 2} for url in CHANNEL_REDIS_URLS],
            "prefix": CHANNEL_LAYER_PREFIX,
        },
    }
}

# Celery: JSON only, bounded task time, results are not needed. The broker may be a Redis
# of its own (spec §10); by default it is REDIS_URL's.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or REDIS_URL
CELERY_WORKER_CONSUMER = "auction_site.celery_consumer:QuickReconnectConsumer"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_TIME_LIMIT = 60
CELERY_TASK_SOFT_TIME_LIMIT = 45
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# Limits of the real-time API (spec §2, §5).
WS_MAX_MESSAGE_BYTES = env.int("WS_MAX_MESSAGE_BYTES", default=64 * 1024)
WS_MAX_SUBSCRIPTIONS = env.int("WS_MAX_SUBSCRIPTIONS", default=100)
BID_RATE_LIMIT = env.int("BID_RATE_LIMIT", default=10)
# Threads (each with its own database connection) a web process runs WebSocket calls in.
WS_DB_THREADS = env.int("WS_DB_THREADS", default=8)
# Live viewer counts (spec §8, realtime.viewers): each web process reports its counts and
# sends subscribers the changed totals every VIEWERS_INTERVAL_SECONDS; a process that has
# not reported for VIEWERS_TTL_SECONDS (at least twice the interval) counts no more.
VIEWERS_INTERVAL_SECONDS = env.float("VIEWERS_INTERVAL_SECONDS", default=1.0)
# How often a web process hands its subscribers their auctions' latest seq, so one that
# missed an auction's last event notices (realtime.latest).
LATEST_SEQ_CHECK_SECONDS = env.float("LATEST_SEQ_CHECK_SECONDS", default=2.0)
VIEWERS_TTL_SECONDS = env.float("VIEWERS_TTL_SECONDS", default=3.0)

# Soft close never moves an end past the original end plus this (spec §1).
AUCTION_MAX_EXTENSION_SECONDS = env.int("AUCTION_MAX_EXTENSION_SECONDS", default=3600)
# Increment tables an auction may name (spec §7) besides the site's own `standard`
# (auctions.pricing), as JSON: {"coins": [["0.00", "0.01"], ["10.00", "0.10"]]}.
AUCTION_INCREMENT_TABLES = env.json("AUCTION_INCREMENT_TABLES", default={})
# Offers for one auction are decided in batches of at most this many, by one of this many
# threads per web process (each batch: one transaction under the auction's row lock).
BID_BATCH_MAX = env.int("BID_BATCH_MAX", default=256)
BID_DECISION_THREADS = env.int("BID_DECISION_THREADS", default=8)

# Notifications (spec §8). A watched auction "ends soon" within this many seconds of its
# end; the check runs every NOTIFY_ENDING_SOON_CHECK_SECONDS.
NOTIFY_ENDING_SOON_SECONDS = env.int("NOTIFY_ENDING_SOON_SECONDS", default=900)
NOTIFY_ENDING_SOON_CHECK_SECONDS = env.int("NOTIFY_ENDING_SOON_CHECK_SECONDS", default=10)
# E-mail: SMTP from EMAIL_URL (e.g. smtp://user:password@host:587/?tls=True); without it,
# mail is written to the console. Links in mail start with SITE_URL.
_email = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS"))
EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL"))
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="auctions@localhost")
NOTIFY_EMAIL_CHECK_SECONDS = env.int("NOTIFY_EMAIL_CHECK_SECONDS", default=5)
SITE_URL = env.str("SITE_URL", default=f"http://{HOST}:{PORT}").rstrip("/")

# GET /metrics: with a token, scrapes must send it (Bearer); without, loopback only.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOG_FORMAT = env.str("LOG_FORMAT", default="text").lower()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "text",
        }
    },
    # Housekeeping that found nothing to do logs at DEBUG (spec §11; auction_site.logs).
    "filters": {"quiet_housekeeping": {"()": "auction_site.logs.QuietHousekeeping"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "celery.beat": {"filters": ["quiet_housekeeping"]},
        "celery.worker.strategy": {"filters": ["quiet_housekeeping"]},
        "celery.app.trace": {"filters": ["quiet_housekeeping"]},
    },
}
