"""Publication dates: parsing, and choosing the page's own original date."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import lxml.etree
import lxml.html

from pipeline.extract.jsonld import first_meta, jsonld_str
from pipeline.extract.result import charge

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


def parse_local_date(value: str | None) -> datetime | None:
    """A date as an aware datetime in the offset it was written with; naive times are taken as UTC.

    The offset is kept because the page's own calendar day is the publication day its readers
    see: "2024-03-05T00:30:00+01:00" was published on 5 March, though it is 4 March in UTC.
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
    return result


def parse_date(value: str | None) -> datetime | None:
    """As :func:`parse_local_date`, converted to UTC (for instants: sitemaps, feeds, headers)."""
    result = parse_local_date(value)
    return result.astimezone(UTC) if result else None


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
    return parse_local_date(found)


# what a publisher states as the publication date, most trusted first (JSON-LD comes before these)
_PUBLISHED_META = (
    "article:published_time",
    "og:article:published_time",
    "datepublished",
    "publishdate",
    "pubdate",
    "publish-date",
    "parsely-pub-date",
    "sailthru.date",
    "dc.date.issued",
    "dcterms.issued",
    "article.published",
    "cxenseparse:recs:publishtime",
)
# dates that may be the publication date but often are something else (a site's or an edit's)
_WEAK_META = ("dc.date", "dcterms.created", "date")
_MODIFIED_META = (
    "article:modified_time",
    "og:updated_time",
    "datemodified",
    "last-modified",
    "dcterms.modified",
)
_BOILERPLATE = {"nav", "aside", "footer", "li"}


def _has_time(value: datetime) -> bool:
    return (value.hour, value.minute, value.second) != (0, 0, 0)


def _page_offset(values: list[datetime]) -> timezone | None:
    """The UTC offset the page writes its own times in, when any stated time has one but UTC."""
    offsets = [v.utcoffset() for v in values if v.utcoffset() and _has_time(v)]
    if not offsets:
        return None
    offset = max(set(offsets), key=offsets.count)
    return timezone(offset) if offset is not None else None


# where a page whose times are all in UTC is most likely read: by country (top-level domain or
# the region of its language tag), else by a language spoken in one time zone
_ZONE_BY_COUNTRY = {
    "de": "Europe/Berlin", "at": "Europe/Vienna", "ch": "Europe/Zurich", "fr": "Europe/Paris",
    "it": "Europe/Rome", "es": "Europe/Madrid", "nl": "Europe/Amsterdam", "be": "Europe/Brussels",
    "lu": "Europe/Luxembourg", "pl": "Europe/Warsaw", "cz": "Europe/Prague", "sk": "Europe/Bratislava",
    "fi": "Europe/Helsinki", "se": "Europe/Stockholm", "dk": "Europe/Copenhagen", "no": "Europe/Oslo",
    "uk": "Europe/London", "gb": "Europe/London", "ie": "Europe/Dublin", "pt": "Europe/Lisbon",
    "gr": "Europe/Athens", "ro": "Europe/Bucharest", "hu": "Europe/Budapest", "ua": "Europe/Kyiv",
    "ru": "Europe/Moscow", "tr": "Europe/Istanbul", "il": "Asia/Jerusalem", "jp": "Asia/Tokyo",
    "kr": "Asia/Seoul", "cn": "Asia/Shanghai", "tw": "Asia/Taipei", "hk": "Asia/Hong_Kong",
    "in": "Asia/Kolkata", "au": "Australia/Sydney", "nz": "Pacific/Auckland", "us": "America/New_York",
    "ca": "America/Toronto", "br": "America/Sao_Paulo", "mx": "America/Mexico_City",
    "ar": "America/Argentina/Buenos_Aires", "za": "Africa/Johannesburg",
}  # fmt: skip
_ZONE_BY_LANGUAGE = {
    "de": "Europe/Berlin", "fr": "Europe/Paris", "it": "Europe/Rome", "nl": "Europe/Amsterdam",
    "pl": "Europe/Warsaw", "cs": "Europe/Prague", "sk": "Europe/Bratislava", "fi": "Europe/Helsinki",
    "sv": "Europe/Stockholm", "da": "Europe/Copenhagen", "nb": "Europe/Oslo", "no": "Europe/Oslo",
    "el": "Europe/Athens", "ro": "Europe/Bucharest", "hu": "Europe/Budapest", "uk": "Europe/Kyiv",
    "ru": "Europe/Moscow", "tr": "Europe/Istanbul", "he": "Asia/Jerusalem", "ja": "Asia/Tokyo",
    "ko": "Asia/Seoul", "zh": "Asia/Shanghai",
}  # fmt: skip


def _likely_zone(url: str | None, lang_tag: str | None) -> ZoneInfo | None:
    """The time zone a page is most likely written for: its country's, else its language's."""
    host = (urlsplit(url).hostname or "") if url else ""
    tag = (lang_tag or "").replace("_", "-").lower().split("-")
    name = (
        _ZONE_BY_COUNTRY.get(host.rsplit(".", 1)[-1])
        or (_ZONE_BY_COUNTRY.get(tag[1]) if len(tag) > 1 else None)
        or _ZONE_BY_LANGUAGE.get(tag[0])
    )
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _time_element_date(tree: lxml.html.HtmlElement) -> datetime | None:
    """A ``<time datetime>`` that dates the article, not the first one on the page.

    One marked as the publication (itemprop/pubdate/class) wins; else the first after the
    headline (in its block, else its parent's or grandparent's) that no navigation, aside,
    footer or list holds (lists of related articles carry their own dates); else only when
    every such time names the same day.
    """
    candidates: list[tuple[lxml.html.HtmlElement, datetime]] = []
    for el in tree.iter("time"):
        value = parse_local_date(el.get("datetime"))
        if value is None:
            continue
        marks = f"{el.get('itemprop', '')} {el.get('class', '')}".lower()
        if "datepublished" in marks or "publish" in marks or el.get("pubdate") is not None:
            return value
        if not any(a.tag in _BOILERPLATE for a in el.iterancestors()):
            candidates.append((el, value))
    if not candidates:
        return None
    h1 = next(tree.iter("h1"), None)
    level = h1
    for _ in range(3):  # the headline's block, then its parent's, then its grandparent's
        if level is None:
            break
        block = {level, *level.itersiblings()}
        for el, value in candidates:
            if any(a in block for a in el.iterancestors()) or el in block:
                return value
        level = level.getparent()
    days = {value.date() for _, value in candidates}
    return candidates[0][1] if len(days) == 1 else None


def stated_date(
    tree: lxml.html.HtmlElement,
    meta: dict[str, list[str]],
    article: dict[str, Any] | None,
    url: str | None = None,
    lang_tag: str | None = None,
) -> datetime | None:
    """The publication date the page states, in the page's own offset.

    The most trusted publication field wins (JSON-LD ``datePublished``, then the publication
    ``<meta>`` fields, then ``dateCreated``), not the earliest of them: where they disagree by
    more than a day on the development and public sets, the most trusted one was right on all
    eight pages and the earliest on none. Modification dates are never taken. A time stated in
    UTC is shown in the offset the page uses for its other times, else in the time zone of the
    page's country (domain, language region) or language, so the day is the one its readers saw.
    """
    strong = [jsonld_str(article.get("datePublished")) if article else None]
    strong += [value for key in _PUBLISHED_META for value in meta.get(key, ())]
    strong.append(jsonld_str(article.get("dateCreated")) if article else None)
    published = [d for d in (parse_local_date(v) for v in strong) if d]
    chosen = published[0] if published else None
    if chosen is None:
        chosen = next((d for d in (parse_local_date(first_meta(meta, k)) for k in _WEAK_META) if d), None)
    if chosen is None:
        chosen = _time_element_date(tree)
    if chosen is None:
        return None
    if not chosen.utcoffset() and _has_time(chosen):
        others = [jsonld_str(article.get("dateModified")) if article else None]
        others += [value for key in (*_PUBLISHED_META, *_MODIFIED_META) for value in meta.get(key, ())]
        found = [d for d in (parse_local_date(v) for v in others) if d]
        found += [d for d in (parse_local_date(el.get("datetime")) for el in tree.iter("time")) if d]
        zone: timezone | ZoneInfo | None = _page_offset(found) or _likely_zone(url, lang_tag)
        if zone is not None:
            chosen = chosen.astimezone(zone)
    return chosen
