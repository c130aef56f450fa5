"""The bounds every value written to the store must keep, derived from ``pipeline.store.schema``.

PostgreSQL refuses a ``varchar(N)`` value over N characters, any NUL, and integers past the
column's width; SQLite takes all of them, and both reject lone surrogates. A value from the web
that breaks one of these would fail its batch on every later run, so each value is made to fit
before it is written, the same way on both databases: strings lose NULs and lone surrogates
and are cut to the column's length, integers are clamped to the column's range, times are
made aware and kept within a range every datetime operation survives. Key columns (URLs) are
never cut, since a cut key names another row: the caller refuses that one value instead
(:func:`fits`). JSON columns (``info={"json": N}``) take a mapping and keep its JSON within N
characters by dropping list entries, never by cutting the text, which would leave it unparsable.
"""

from __future__ import annotations

import json
import logging
import math
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
# Inside a JSON column's value: any string is cut to this many characters, any list to this many
# entries (what a hostile page can put into a story's evidence: a name, a number).
JSON_STRING_CHARS = 100
JSON_LIST_ITEMS = 12
# stories.evidence: a story's evidence is some 300-1,000 characters of JSON; this leaves room for
# every list full of long names without letting a hostile page make it a document
EVIDENCE_CHARS = 4000


def length(column: Column[Any]) -> int | None:
    """The most characters ``column`` keeps, or None when it is not a string column."""
    if "json" in column.info:
        return int(column.info["json"])
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


def json_text(value: Any) -> str:
    """The one JSON spelling of ``value`` (sorted keys, no spaces): equal values, equal text, so
    a rewrite of an unchanged value is seen as unchanged."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _json_fit(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)[:JSON_STRING_CHARS]
    if isinstance(value, Mapping):
        return {clean_text(str(k))[:JSON_STRING_CHARS]: _json_fit(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_fit(v) for v in value[:JSON_LIST_ITEMS]]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float):
        return value
    return clean_text(str(value))[:JSON_STRING_CHARS]


def _lists(value: Any) -> list[list[Any]]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _lists(v)]
    if isinstance(value, list):
        return [value, *(x for v in value for x in _lists(v))]
    return []


def fit_json(value: Mapping[str, Any], limit: int) -> str:
    """JSON of ``value`` within ``limit`` characters: strings and lists cut as inside every JSON
    column, then the longest list loses its last entries until the whole fits ("{}" if nothing
    is left to drop). The same value always gives the same text, and the text of a value that
    fits is the value's own (:func:`json_text`)."""
    fitted = _json_fit(value)
    text = json_text(fitted)
    while len(text) > limit:
        lists = [x for x in _lists(fitted) if x]
        if not lists:
            return "{}"
        max(lists, key=lambda x: len(json_text(x))).pop()
        text = json_text(fitted)
    return text


def bound(column: Column[Any], value: Any) -> Any:
    """``value`` made to fit ``column`` (see the module docstring)."""
    if value is None:
        return None
    if isinstance(value, Mapping) and "json" in column.info:
        return fit_json(value, int(column.info["json"]))
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


def as_stored(column: Column[Any], value: Any) -> Any:
    """``value`` as ``column`` gives it back once written: bounded, and a JSON column's value
    parsed again (what a read shows where it works the value out instead of reading it)."""
    fitted = bound(column, value)
    return json.loads(fitted) if isinstance(value, Mapping) and "json" in column.info else fitted


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
            if isinstance(value, Mapping) and "json" in column.info:  # cut unless it is its own text
                try:
                    value = json_text(value)
                except (TypeError, ValueError):
                    value = None
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
