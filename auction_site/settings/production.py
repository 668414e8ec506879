"""Production settings: refuse to start without a real SECRET_KEY; HTTPS by environment.

`manage.py check --deploy` reports nothing when configured as the README's "Production"
section says: behind a TLS proxy, BEHIND_TLS_PROXY=1 (and SECURE_HSTS_PRELOAD=1 once the
domain may be preloaded). The quick start runs these settings over plain HTTP on loopback,
so none of this is on by default.
"""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import env

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. Put it in the environment or in .env "
        '(for example: python -c "import secrets; print(secrets.token_urlsafe(50))").'
    )

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# HTTPS. BEHIND_TLS_PROXY=1: TLS ends at a proxy that sets X-Forwarded-Proto (and strips any
# the client sent); requests it marks https are secure, and the rest follows by default:
# plain HTTP is redirected, cookies are sent over HTTPS only, and browsers are told to use
# nothing else for a year (HSTS, subdomains included). Each can be set on its own, with
# Django's name, e.g. when daphne itself terminates TLS.
BEHIND_TLS_PROXY = env.bool("BEHIND_TLS_PROXY", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=BEHIND_TLS_PROXY)
# Probes and scrapes reach the process directly over HTTP: never redirect them.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=BEHIND_TLS_PROXY)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=BEHIND_TLS_PROXY)
SECURE_HSTS_SECONDS = env.int(
    "SECURE_HSTS_SECONDS", default=365 * 24 * 3600 if BEHIND_TLS_PROXY else 0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool(
    "SECURE_HSTS_INCLUDE_SUBDOMAINS", default=SECURE_HSTS_SECONDS > 0
)
# Consent to be put on browsers' built-in HTTPS-only list: the domain's owner decides.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Django warns (W021) until preload is on; but asking browsers to hard-code HTTPS for the
# domain and every subdomain, with no quick way back, is the owner's decision, not a default.
SILENCED_SYSTEM_CHECKS = ["security.W021"]
