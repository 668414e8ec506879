"""How times are written on the wire, by every layer: ISO 8601 in UTC, and Unix seconds."""

from datetime import UTC, datetime
from typing import overload

ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@overload
def iso(moment: datetime) -> str: ...
@overload
def iso(moment: None) -> None: ...
@overload
def iso(moment: datetime | None) -> str | None: ...
def iso(moment: datetime | None) -> str | None:
    """A time as ISO 8601 in UTC with microseconds, e.g. 2026-11-24T10:00:00.000000Z."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime(ISO_FORMAT)


def unix_seconds(moment: datetime) -> float:
    """A time as Unix seconds with millisecond precision (the messages' `timestamp`)."""
    return round(moment.timestamp(), 3)
