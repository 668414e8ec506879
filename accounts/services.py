"""Accounts: signing up and API tokens (created once, stored hashed, revocable)."""

import hashlib
import secrets
from datetime import timedelta

from django.db import transaction
from django.db.models.functions import Now
from django.dispatch import Signal
from django.utils import timezone

from accounts.models import ApiToken, User

TOKEN_BYTES = 32
PREFIX_LENGTH = 8
# Writing last_used_at on every request would cost a write per request; once a minute will do.
LAST_USED_RESOLUTION = timedelta(minutes=1)

# Sent after a revocation commits, with `user_id` and `token_id`: delivery closes the
# connections that token opened (realtime registers the receiver; spec §11).
token_revoked = Signal()


def _token_hash(token: str) -> str:
    # Tokens are 256 random bits, so a fast hash is enough (no dictionary to guess from).
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def api_token_create(*, user: User, name: str = "") -> tuple[ApiToken, str]:
    """A new token for `user`: the stored record and the token itself, shown only once."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    record = ApiToken.objects.create(
        user=user,
        name=name.strip()[:100],
        prefix=token[:PREFIX_LENGTH],
        key_hash=_token_hash(token),
    )
    return record, token


def api_token_user(*, token: str) -> User | None:
    """The active user a token belongs to, or None."""
    record = api_token_check(token=token)
    return record.user if record is not None else None


def api_token_check(*, token: str) -> ApiToken | None:
    """The token's record (its user loaded) if it is valid and its user active, or None."""
    if not token or len(token) > 200:
        return None
    record = ApiToken.objects.select_related("user").filter(key_hash=_token_hash(token)).first()
    if record is None or not record.user.is_active:
        return None
    if record.last_used_at is None or timezone.now() - record.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=record.pk).update(last_used_at=Now())
    return record


def api_token_revoke(*, user: User, token_id: str) -> bool:
    """Delete one of `user`'s tokens. True if it existed. Once that commits, the connections
    the token opened are told (`token_revoked`)."""
    deleted, _ = ApiToken.objects.filter(user=user, id=token_id).delete()
    if deleted:
        transaction.on_commit(
            lambda: token_revoked.send(sender=ApiToken, user_id=user.id, token_id=str(token_id))
        )
    return deleted > 0


def user_create(*, username: str, password: str, email: str = "") -> User:
    return User.objects.create_user(username=username, password=password, email=email)
