"""The bounds every value written to the store must keep, derived from ``pipeline.store.schema``.

PostgreSQL refuses a ``varchar(N)`` value over N characters, any NUL, and integers past the
column's width; SQLite takes all of them, and both reject lone surrogates. A value from the web
that breaks one of these would fail its batch on every later run, so each value is made to fit
before it is written, the same way on both databases: strings lose NULs and lone surrogates
and are cut to the column's length, integers are clamped to the column's range, times are
made aware and kept within a range every datetime operation survives. Key columns (URLs) are
never cut, since a cut key names another row: the caller refuses that one value instead
(:func:`fits`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Integer, String, Table, Text

log = logging.getLogger(__name__)

# PostgreSQL's text holds up to 1 GB; nothing newsagg keeps needs more than this many characters.
TEXT_LIMIT = 2_000_000
INT_LIMITS = {Integer: (-(2**31), 2**31 - 1), BigInteger: (-(2**63), 2**63 - 1)}
# Any stored time: far enough from datetime.min/max that a year of window arithmetic cannot
# overflow, and within every database's range.
TS_MIN = datetime(1900, 1, 1, tzinfo=UTC)
TS_MAX = datetime(2200, 1, 1, tzinfo=UTC)
# A claimed publication or modification time (feeds, sitemaps, pages) outside these years is
# noise, as pipeline.extract's page dates already treat it.
PUBLISHED_FIRST_YEAR = 1990


def length(column: Column[Any]) -> int | None:
    """The most characters ``column`` keeps, or None when it is not a string column."""
    kind = column.type
    if isinstance(kind, String) and kind.length:
        return int(kind.length)
    if isinstance(kind, String | Text):
        return TEXT_LIMIT
    return None


def clean_text(value: str) -> str:
    """``value`` without NULs, with lone surrogates replaced (neither database stores them)."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def aware(value: datetime) -> datetime:
    """Naive times are UTC (SQLite hands them back naive); the result is aware UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 with an offset
        return TS_MIN if value.year < 2000 else TS_MAX


def plausible(value: datetime | None) -> datetime | None:
    """A claimed publication time, or None when its year lies outside 1990 .. next year."""
    if value is None:
        return None
    value = aware(value)
    if not PUBLISHED_FIRST_YEAR <= value.year <= datetime.now(UTC).year + 1:
        return None
    return value


def bound(column: Column[Any], value: Any) -> Any:
    """``value`` made to fit ``column`` (see the module docstring)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = clean_text(value)
        limit = length(column)
        return value[:limit] if limit is not None and len(value) > limit else value
    if isinstance(value, datetime):
        value = aware(value)
        return min(max(value, TS_MIN), TS_MAX)
    if isinstance(value, int) and not isinstance(value, bool):
        for kind, (low, high) in INT_LIMITS.items():
            if isinstance(column.type, kind):
                return min(max(value, low), high)
    return value


def fits(column: Column[Any], value: str) -> bool:
    """Whether a key value can be stored as it is (not too long, nothing to clean)."""
    limit = length(column)
    return (limit is None or len(value) <= limit) and clean_text(value) == value


class Bounds:
    """Bounds rows for one store and remembers what had to be cut, per column (the reason a
    value differs from what the web sent); each column is logged once."""

    def __init__(self) -> None:
        self.cut: Counter[str] = Counter()

    def row(self, table: Table, values: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in values.items():
            column = table.c.get(key)
            if column is None:
                out[key] = value
                continue
            fitted = bound(column, value)
            if fitted is not value and fitted != value:
                name = f"{table.name}.{key}"
                if not self.cut[name]:
                    log.warning("%s: a value did not fit the column and was cut to fit", name)
                self.cut[name] += 1
            out[key] = fitted
        return out

    def rows(self, table: Table, values: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [self.row(table, v) for v in values]

    def value(self, column: Column[Any], value: Any) -> Any:
        table = column.table
        assert isinstance(table, Table)
        return self.row(table, {column.key: value})[column.key]
