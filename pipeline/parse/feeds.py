"""The feed stage: bytes in, entries out.

feedparser is always handed the bytes newsagg fetched itself: given a string it would fetch URLs
and read local files. A malformed feed (bozo) still yields what it can; the reason is kept.
"""

from __future__ import annotations

import calendar
import hashlib
import re
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

from pipeline.extract import sanitize_text
from pipeline.parse.urls import canonicalize


@dataclass(frozen=True, slots=True)
class FeedEntry:
    url: str  # canonical article URL
    title: str | None
    published_at: datetime | None
    updated_at: datetime | None = None  # the entry's own update time; moves when it is revised
    fingerprint: str | None = None  # hash of what the entry says; changes when it is revised


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


# Entity bombs. feedparser hands internal entity declarations to expat only when they start a
# line, and expands the plain ones itself in its loose parser when expat refuses a document; a
# one-line DOCTYPE reaches expat intact. Either way a few declarations can expand to gigabytes
# (billion laughs: nested; quadratic blow-up: one long value referenced many times), so a feed
# whose general entities would add more than this many characters is refused before parsing.
_ENTITY_DECL = re.compile(r"""<!ENTITY\s+(\w[\w.-]*)\s+(["'])(.*?)\2""", re.S)
_ENTITY_REF = re.compile(r"&(\w[\w.-]*);")
MAX_ENTITY_EXPANSION = 1_000_000


def _entity_size(name: str, values: dict[str, str], sizes: dict[str, int], depth: int = 0) -> int:
    """Characters entity ``name`` expands to, capped just over the limit."""
    if name not in sizes:
        over = MAX_ENTITY_EXPANSION + 1
        sizes[name] = over  # a reference cycle, or nesting too deep, counts as too much
        if depth < 32:
            value = values[name]
            total = len(_ENTITY_REF.sub("", value)) + sum(
                _entity_size(ref, values, sizes, depth + 1)
                for ref in _ENTITY_REF.findall(value)
                if ref in values
            )
            sizes[name] = min(total, over)
    return sizes[name]


def _entity_expansion(body: bytes) -> int:
    """Characters the document's internal entity references would add (an upper bound)."""
    head = body[:4]
    encodings = ["latin-1"]  # ASCII-compatible: enough to see declarations and references
    if b"\x00" in head or head.startswith((b"\xff\xfe", b"\xfe\xff")):
        encodings = ["utf-16", "utf-16-le", "utf-16-be", "utf-32"]
    worst = 0
    for encoding in encodings:
        try:
            text = bytes(body).decode(encoding)
        except UnicodeDecodeError:
            continue
        if "<!ENTITY" not in text:
            continue
        values: dict[str, str] = {}
        for name, _, value in _ENTITY_DECL.findall(text):
            values.setdefault(name, value)
        sizes: dict[str, int] = {}
        uses = Counter(_ENTITY_REF.findall(_ENTITY_DECL.sub("", text)))
        worst = max(
            worst,
            sum(_entity_size(name, values, sizes) * count for name, count in uses.items() if name in values),
        )
    return worst


def parse_feed(body: bytes, url: str, content_type: str | None = None) -> FeedResult:
    """Parse feed bytes; never raises on bad input, the reason lands in ``bozo_reason``."""
    if not isinstance(body, bytes | bytearray):
        raise TypeError("parse_feed takes the fetched bytes, never a URL or path")
    if _entity_expansion(body) > MAX_ENTITY_EXPANSION:
        return FeedResult(
            title=None,
            entries=(),
            bozo_reason="not a feed (refused: internal "
            f"entities would expand it by over {MAX_ENTITY_EXPANSION:,} characters)",
        )
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    parsed = feedparser.parse(
        bytes(body), response_headers=headers, sanitize_html=True, resolve_relative_uris=True
    )
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
        summary = entry.get("summary")
        said = "\x1f".join(str(x) for x in (title, summary, published, updated))
        # Feed titles reach the store as fallbacks for page titles: plain text only.
        clean_title = " ".join(sanitize_text(title).split()) if isinstance(title, str) else ""
        entries.append(
            FeedEntry(
                url=entry_url,
                title=clean_title or None,
                published_at=published,
                updated_at=updated,
                fingerprint=hashlib.sha256(said.encode("utf-8")).hexdigest(),
            )
        )
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
