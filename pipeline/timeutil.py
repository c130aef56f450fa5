"""Time in one convention: aware UTC inside, ``...Z`` ISO strings outside.

SQLite hands back naive datetimes (stored as UTC), PostgreSQL aware ones, feeds and pages any
offset; every stage goes through these helpers so one instant always compares and prints the same.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.errors import ConfigError

# English month and weekday names: the date phrases, the name filter and the figures' place
# filter all read them
MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def utc(value: datetime | None) -> datetime | None:
    """Aware UTC in, aware UTC out; a naive value is taken to be UTC already (as stored)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def now() -> datetime:
    """Now, in UTC, with microseconds: a revision fetched within a second of the first fetch
    must still read as later than it (a story's ``last_updated`` depends on it)."""
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    """The wire form every consumer reads: UTC, ``Z`` suffix."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def parse_since(value: str | None, *, what: str = "--since") -> datetime | None:
    """A user's date or datetime (ISO 8601, any offset or ``Z``; naive means UTC) as aware UTC."""
    if value is None or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except ValueError:
        raise ConfigError(f"{what}: not an ISO date or datetime: {value!r}") from None
    except OverflowError:  # year 1 or 9999 with an offset
        raise ConfigError(f"{what}: out of range: {value!r}") from None
