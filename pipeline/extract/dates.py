"""Publication dates: parsing, and choosing the page's own original date."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import lxml.etree
import lxml.html

from pipeline.extract.result import charge

# dates

_ISO_LIKE = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?\s*"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?)?"
)
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:T?(\d{2})(\d{2})(\d{2})?)?(Z|[+-]\d{4})?$")


def _tz(offset: str | None) -> timezone:
    if not offset or offset == "Z":
        return UTC
    sign = -1 if offset[0] == "-" else 1
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def parse_date(value: str | None) -> datetime | None:
    """A published date as an aware UTC datetime; naive times are taken as UTC.

    Accepts ISO 8601 and its common variants, compact ``YYYYMMDD[HHMMSS]`` and RFC 2822. Years
    outside 1990 .. next year are treated as noise.
    """
    if not value:
        return None
    value = value.strip()
    result: datetime | None = None
    match = _ISO_LIKE.search(value) or _COMPACT_DATE.match(value)
    if match:
        year, month, day, hour, minute, second, offset = match.groups()
        try:
            result = datetime(
                int(year),
                int(month),
                int(day),
                int(hour or 0),
                int(minute or 0),
                int(second or 0),
                tzinfo=_tz(offset),
            )
        except ValueError:
            result = None
    if result is None:
        try:
            result = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if result.tzinfo is None:
            result = result.replace(tzinfo=UTC)
    if not 1990 <= result.year <= datetime.now(UTC).year + 1:
        return None
    return result.astimezone(UTC)


def fallback_date(tree: lxml.html.HtmlElement, url: str | None) -> datetime | None:
    """htmldate's page-wide search (URL, visible dates): slower, so only when nothing is stated."""
    try:
        from htmldate import find_date  # trafilatura's own date finder, installed with it
    except ImportError:  # pragma: no cover
        return None
    start = time.thread_time()
    try:
        found = find_date(tree, extensive_search=True, original_date=True, url=url)
    except Exception:  # a heuristic failing must not lose the article
        return None
    finally:
        charge("trafilatura", start)
    return parse_date(found)
