"""Watching auctions, and recording, reading and marking each user's notifications (spec §8).

A notification is written by `RECORD_SQL`, in the transaction of the change that causes
it: the user's `Inbox.last_seq` moves on by the number of new notifications and they
take the seqs in between, so each user's seqs are 1, 2, 3, … with no gap and no repeat,
whichever instance wrote them. The same statement records the watches that bidding
implies. Callers that hold a Django transaction use `notices_record`; the bid engine runs
the statement in its own pipeline (`record_params`), guarded by the auction version it
wrote, so a batch that wrote nothing records nothing.

After commit the rows go to the publisher that delivery registered (`notifications`,
an `infra.outbox.Outbox`); a publish that never happens is made good by the sweep.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from django.db import connection, transaction
from django.db.models import Count, Max, Q, QuerySet
from django.db.models.functions import Now

from accounts.models import User
from infra.outbox import Outbox
from infra.times import iso, unix_seconds
from notifications.models import EmailSettings, Kind, Notification, Watch

# Delivery registers what publishes committed notifications (realtime, when it is ready).
notifications: Outbox[Notification] = Outbox("notifications")


@dataclass(frozen=True, slots=True)
class Notice:
    """A notification to record: for whom, what kind, about which auction, with what."""

    user_id: UUID
    kind: Kind
    auction_id: UUID
    data: dict[str, Any]


# Watches first, then each user's counter (in user order, so two transactions that
# notify the same users lock their counters in the same order), then the notifications,
# numbered after the counter's old value in the order given. All of it only if the guard
# holds: no guard, or the guarded auction has the version its writer just gave it.
RECORD_SQL = """
WITH allowed AS (
    SELECT %(guard_version)s::bigint IS NULL OR EXISTS (
        SELECT 1 FROM auctions_auction
        WHERE id = %(guard_auction)s::uuid AND version = %(guard_version)s::bigint
    ) AS ok
),
watched AS (
    INSERT INTO notifications_watch (user_id, auction_id)
    SELECT DISTINCT w.user_id, %(watch_auction)s::uuid
    FROM unnest(%(watchers)b::uuid[]) AS w(user_id)
    WHERE (SELECT ok FROM allowed)
    ON CONFLICT DO NOTHING
),
new AS (
    SELECT n.*
    FROM unnest(%(users)b::uuid[], %(kinds)b::text[], %(auctions)b::uuid[], %(data)b::jsonb[])
         WITH ORDINALITY AS n(user_id, kind, auction_id, data, position)
    WHERE (SELECT ok FROM allowed)
),
counts AS (
    SELECT user_id, count(*) AS added FROM new GROUP BY user_id
),
counters AS (
    INSERT INTO notifications_inbox AS inbox (user_id, last_seq)
    SELECT user_id, added FROM counts ORDER BY user_id
    ON CONFLICT (user_id) DO UPDATE SET last_seq = inbox.last_seq + EXCLUDED.last_seq
    RETURNING user_id, last_seq
)
INSERT INTO notifications_notification (user_id, seq, kind, auction_id, data, created_at)
SELECT new.user_id,
       counters.last_seq - counts.added
           + row_number() OVER (PARTITION BY new.user_id ORDER BY new.position),
       new.kind, new.auction_id, new.data, %(at)s
FROM new JOIN counts USING (user_id) JOIN counters USING (user_id)
ORDER BY new.position
RETURNING id, user_id, seq, kind, auction_id, data, created_at
"""


def record_params(
    notices: Sequence[Notice],
    *,
    at: datetime,
    watchers: Sequence[UUID] = (),
    watch_auction: UUID | None = None,
    guard_auction: UUID | None = None,
    guard_version: int | None = None,
) -> dict[str, Any]:
    """The parameters of `RECORD_SQL`."""
    return {
        "guard_auction": guard_auction,
        "guard_version": guard_version,
        "watchers": list(watchers),
        "watch_auction": watch_auction,
        "users": [notice.user_id for notice in notices],
        "kinds": [str(notice.kind) for notice in notices],
        "auctions": [notice.auction_id for notice in notices],
        "data": [json.dumps(notice.data) for notice in notices],
        "at": at,
    }


def recorded(rows: Sequence[tuple[Any, ...]]) -> list[Notification]:
    """The notifications `RECORD_SQL` returned, as (unsaved-looking) model instances."""
    return [
        Notification(
            id=id,
            user_id=user_id,
            seq=seq,
            kind=kind,
            auction_id=auction_id,
            data=json.loads(data) if isinstance(data, str) else data,
            created_at=created_at,
        )
        for id, user_id, seq, kind, auction_id, data, created_at in rows
    ]


def notices_record(
    notices: Sequence[Notice], *, at: datetime, watchers: Sequence[UUID] = (), auction_id: UUID
) -> list[Notification]:
    """Record `notices` (and `watchers` watching `auction_id`) in the current transaction;
    they are published once it commits."""
    if not notices and not watchers:
        return []
    connection.ensure_connection()
    raw = connection.connection
    params = record_params(notices, at=at, watchers=watchers, watch_auction=auction_id)
    # A plain psycopg cursor: Django's binds on the client, which cannot send binary.
    with connection.wrap_database_errors, psycopg.Cursor(raw) as cursor:
        cursor.execute(RECORD_SQL, params)
        rows = recorded(cursor.fetchall()) if cursor.description else []
    notifications.on_commit(rows)
    return rows


# Watching


def watch_add(*, user: User, auction_id: UUID) -> None:
    """`user` watches the auction (again: nothing changes). The caller checks it exists."""
    Watch.objects.get_or_create(user=user, auction_id=auction_id)


def watch_remove(*, user: User, auction_id: UUID) -> None:
    Watch.objects.filter(user=user, auction_id=auction_id).delete()


def is_watching(*, user: User, auction_id: UUID) -> bool:
    return Watch.objects.filter(user=user, auction_id=auction_id).exists()


# Reading


def notification_list(*, user: User, since_seq: int = 0, limit: int = 100) -> list[Notification]:
    """The user's notifications after `since_seq`, oldest first, at most `limit`."""
    return list(Notification.objects.filter(user=user, seq__gt=since_seq).order_by("seq")[:limit])


def notifications_latest(*, user: User, limit: int = 50) -> QuerySet[Notification]:
    """The user's latest notifications, newest first (the notifications page)."""
    return Notification.objects.filter(user=user).order_by("-seq")[:limit]


def notification_range(*, user_id: UUID, after: int, upto: int) -> list[Notification]:
    """The user's notifications with after < seq <= upto, in order (replays, gap fills)."""
    return list(
        Notification.objects.filter(user_id=user_id, seq__gt=after, seq__lte=upto).order_by("seq")
    )


def unread_count(*, user: User) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def header_counts(*, user: User) -> tuple[int, int]:
    """(unread count, latest seq) for every page's header, in one query."""
    counts = Notification.objects.filter(user=user).aggregate(
        unread=Count("id", filter=Q(read_at__isnull=True)), latest=Max("seq")
    )
    return counts["unread"], counts["latest"] or 0


def last_seq(*, user_id: UUID) -> int:
    """The seq of the user's latest notification (0 before the first)."""
    seq = (
        Notification.objects.filter(user_id=user_id)
        .order_by("-seq")
        .values_list("seq", flat=True)
        .first()
    )
    return seq or 0


def notifications_mark_read(*, user: User, upto_seq: int | None = None) -> int:
    """Mark the user's unread notifications read (up to `upto_seq`); returns how many."""
    unread = Notification.objects.filter(user=user, read_at__isnull=True)
    if upto_seq is not None:
        unread = unread.filter(seq__lte=upto_seq)
    return unread.update(read_at=Now())


# E-mail settings


def email_kinds_off(*, user: User) -> set[str]:
    settings_row = EmailSettings.objects.filter(user=user).first()
    return set(settings_row.kinds_off) if settings_row else set()


@transaction.atomic
def email_settings_set(*, user: User, kinds_on: Sequence[str]) -> None:
    """Keep e-mail on for `kinds_on` and off for every other kind."""
    off = sorted(kind for kind in Kind.values if kind not in set(kinds_on))
    EmailSettings.objects.update_or_create(user=user, defaults={"kinds_off": off})


@transaction.atomic
def email_kind_off(*, user_id: UUID, kind: str) -> None:
    """Stop e-mail of one kind (the unsubscribe link)."""
    row, _ = EmailSettings.objects.select_for_update().get_or_create(user_id=user_id)
    if kind not in row.kinds_off:
        row.kinds_off = sorted([*row.kinds_off, kind])
        row.save(update_fields=["kinds_off"])


def notification_as_message(notification: Notification) -> dict[str, Any]:
    """The WebSocket message of a notification (spec §8), live or replayed alike."""
    return {
        "type": "notification",
        "seq": notification.seq,
        "kind": notification.kind,
        "auction_id": str(notification.auction_id),
        "created_at": iso(notification.created_at),
        "data": notification.data,
        "timestamp": unix_seconds(notification.created_at),
    }
