"""E-mail of notifications: sent by a worker after commit, at most once each, none lost.

Beat runs `emails_send_pending` every few seconds. It claims due rows (`pending` →
`sending`, committed, SKIP LOCKED so workers share the work), sends them over one SMTP
connection, and marks each `sent`, `skipped` (no address, or the kind is off) or `failed`
(the server refused it for good). A server that is down or answers "try later" puts the
row back to `pending` with a growing wait: mail is delayed, never dropped (a recipient the
server defers for now waits alone; the rest of the batch goes on). A worker that
dies between claiming and marking leaves its rows `sending`: sending them again could
send them twice, so they stay (visible to staff) rather than break "at most once".
"""

import logging
import smtplib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Now
from django.urls import reverse
from django.utils import timezone

from infra.metrics import EMAILS
from notifications.models import EmailSettings, EmailState, Kind, Notification

logger = logging.getLogger(__name__)

BATCH = 100
# Waits between attempts while the mail server is unreachable: 30 s, 1 min, 2 min, … 1 h.
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 3600
_UNSUBSCRIBE_SALT = "notifications.unsubscribe"

SUBJECTS = {
    Kind.OUTBID: "You were outbid on {item}",
    Kind.ENDING_SOON: "{item} ends soon",
    Kind.WON: "You won {item}",
    Kind.LOST: "{item} went to another bidder",
    Kind.SOLD: "You sold {item}",
    Kind.NOT_SOLD: "{item} did not sell",
}

BODIES = {
    Kind.OUTBID: "Someone bid more than you on {item}. The price is now {price}.",
    Kind.ENDING_SOON: "{item}, which you are watching, ends soon. The price is {price}.",
    Kind.WON: "You won {item} for {price}.",
    Kind.LOST: "{item} was sold to another bidder for {price}.",
    Kind.SOLD: "{item} sold for {price}.",
    Kind.NOT_SOLD: "{item} ended without a sale.",
}


@dataclass(frozen=True)
class Unsubscribe:
    user_id: UUID
    kind: str


def unsubscribe_token(user_id: UUID, kind: str) -> str:
    """A signed, unguessable token that turns off one kind of mail for one user."""
    return signing.dumps({"u": str(user_id), "k": kind}, salt=_UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_read(token: str) -> Unsubscribe | None:
    """What a token from `unsubscribe_token` stands for, or None if it is not one."""
    try:
        value = signing.loads(token, salt=_UNSUBSCRIBE_SALT)
        return Unsubscribe(UUID(value["u"]), Kind(value["k"]))
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None


def retry_delay(attempts: int) -> timedelta:
    """How long to wait before attempt number `attempts + 1`."""
    return timedelta(
        seconds=min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), MAX_RETRY_SECONDS)
    )


def emails_send_pending(*, limit: int = BATCH) -> int:
    """Send the e-mail of due notifications; returns how many were sent."""
    claimed = _claim(limit)
    if not claimed:
        return 0
    sent = 0
    try:
        with get_connection(fail_silently=False) as mail:
            for index, notification in enumerate(claimed):
                try:
                    state = _send_one(mail, notification)
                except _Later as later:
                    if later.this_one_only:
                        # The server is there but defers this recipient: the rest go on.
                        _release([notification], later.reason, what="a recipient deferred")
                        continue
                    _release(claimed[index:], later.reason)
                    return sent
                _mark(notification, state)
                sent += state == EmailState.SENT
    except (OSError, smtplib.SMTPException) as exc:  # opening or closing the connection
        still_claimed = Notification.objects.filter(
            id__in=[n.id for n in claimed], email_state=EmailState.SENDING
        )
        _release(list(still_claimed), str(exc) or type(exc).__name__)
    return sent


class _Later(Exception):
    def __init__(self, reason: str, *, this_one_only: bool = False) -> None:
        self.reason = reason
        self.this_one_only = this_one_only


def _claim(limit: int) -> list[Notification]:
    with transaction.atomic():
        due = list(
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("user")
            .filter(email_state=EmailState.PENDING)
            .filter(Q(email_next_at__isnull=True) | Q(email_next_at__lte=Now()))
            .order_by("created_at")[:limit]
        )
        Notification.objects.filter(id__in=[n.id for n in due]).update(
            email_state=EmailState.SENDING
        )
    return due


def _send_one(mail: Any, notification: Notification) -> EmailState:
    user = notification.user
    if not user.email or notification.kind in _kinds_off(user.id):
        return EmailState.SKIPPED
    message = email_message(notification)
    message.connection = mail
    try:
        message.send()
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        if all(code >= 500 for code in codes):
            logger.warning("mail for notification %s refused: %s", notification.id, exc)
            return EmailState.FAILED
        raise _Later(str(exc), this_one_only=True) from exc
    except smtplib.SMTPResponseException as exc:
        if exc.smtp_code >= 500:
            logger.warning("mail for notification %s refused: %s", notification.id, exc)
            return EmailState.FAILED
        raise _Later(str(exc)) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise _Later(str(exc) or type(exc).__name__) from exc
    return EmailState.SENT


def _kinds_off(user_id: UUID) -> set[str]:
    row = EmailSettings.objects.filter(user_id=user_id).first()
    return set(row.kinds_off) if row else set()


def email_message(notification: Notification) -> EmailMessage:
    """The e-mail of one notification, with a link to the auction and one to unsubscribe."""
    data = notification.data
    words = {"item": data.get("item_name", "the item"), "price": data.get("price") or "-"}
    kind = Kind(notification.kind)
    unsubscribe = settings.SITE_URL + reverse(
        "notifications:unsubscribe", args=[unsubscribe_token(notification.user_id, kind)]
    )
    body = "\n\n".join(
        [
            BODIES[kind].format(**words),
            f"See it: {settings.SITE_URL}{data.get('url', '')}",
            f"Stop these e-mails ({kind.label.lower()}): {unsubscribe}",
        ]
    )
    return EmailMessage(
        subject=SUBJECTS[kind].format(**words),
        body=body + "\n",
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.user.email],
        headers={
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "X-Notification-Id": str(notification.id),
        },
    )


def _mark(notification: Notification, state: EmailState) -> None:
    Notification.objects.filter(id=notification.id).update(email_state=state)
    EMAILS.labels(str(state)).inc()


def _release(
    notifications: list[Notification], reason: str, *, what: str = "mail server unavailable"
) -> None:
    """Back to `pending`, each to be tried again after its next wait."""
    now = timezone.now()
    for notification in notifications:
        attempts = notification.email_attempts + 1
        Notification.objects.filter(id=notification.id).update(
            email_state=EmailState.PENDING,
            email_attempts=attempts,
            email_next_at=now + retry_delay(attempts),
        )
    EMAILS.labels("deferred").inc(len(notifications))
    if notifications:
        logger.warning(
            "%s (%s): %d e-mail(s) wait, next attempt in %d s",
            what,
            reason,
            len(notifications),
            retry_delay(notifications[0].email_attempts + 1).total_seconds(),
        )
