"""The feed stage: bytes in, entries out.

feedparser is always handed the bytes newsagg fetched itself: given a string it would fetch URLs
and read local files. A malformed feed (bozo) still yields what it can; the reason is kept.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

from pipeline.urls import canonicalize


@dataclass(frozen=True, slots=True)
class FeedEntry:
    url: str  # canonical article URL
    title: str | None
    published_at: datetime | None
    updated_at: datetime | None = None  # the entry's own update time; moves when it is revised


@dataclass(frozen=True, slots=True)
class FeedResult:
    title: str | None
    entries: tuple[FeedEntry, ...]
    bozo_reason: str | None  # why the feed was not well-formed, when it was not


def _when(struct: Any) -> datetime | None:
    if not isinstance(struct, time.struct_time):
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(struct), tz=UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _entry_url(entry: Any, base: str) -> str | None:
    candidates: list[str] = []
    for link in entry.get("links") or []:
        href = link.get("href")
        if href and link.get("rel", "alternate") == "alternate":
            candidates.append(href)
    if entry.get("link"):
        candidates.append(entry["link"])
    guid = entry.get("id")
    if isinstance(guid, str) and guid.startswith(("http://", "https://")):
        candidates.append(guid)
    for candidate in candidates:
        absolute = urljoin(base, candidate.strip())
        if urlsplit(absolute).scheme in ("http", "https"):
            return canonicalize(absolute)
    return None


def parse_feed(body: bytes, url: str, content_type: str | None = None) -> FeedResult:
    """Parse feed bytes; never raises on bad input, the reason lands in ``bozo_reason``."""
    if not isinstance(body, bytes | bytearray):
        raise TypeError("parse_feed takes the fetched bytes, never a URL or path")
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    parsed = feedparser.parse(bytes(body), response_headers=headers, sanitize_html=True,
                              resolve_relative_uris=True)
    entries: list[FeedEntry] = []
    seen: set[str] = set()
    for entry in parsed.entries:
        entry_url = _entry_url(entry, url)
        if entry_url is None or entry_url in seen:
            continue
        seen.add(entry_url)
        title = entry.get("title")
        updated = _when(dict.get(entry, "updated_parsed"))  # no fallback to published
        published = _when(entry.get("published_parsed")) or updated
        entries.append(FeedEntry(url=entry_url, title=title.strip() if isinstance(title, str) else None,
                                 published_at=published, updated_at=updated))
    reason = None
    exc = parsed.get("bozo_exception")
    # A wrong Content-Type header is the server's mislabel, not a malformed feed.
    if parsed.get("bozo") and not isinstance(exc, feedparser.NonXMLContentType):
        reason = f"{type(exc).__name__}: {exc}" if exc is not None else "malformed feed"
        if not entries and not parsed.get("version"):
            reason = f"not a feed ({reason})"
    elif not parsed.get("version") and not entries:
        reason = "not a feed: no RSS, Atom or RDF document found"
    feed_title = parsed.feed.get("title") if parsed.get("feed") else None
    return FeedResult(title=feed_title, entries=tuple(entries), bozo_reason=reason)
