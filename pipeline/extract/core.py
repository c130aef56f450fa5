"""The cleaning stage: fetched HTML bytes in, plain article text and metadata out.

Trafilatura finds the body; the metadata (title, date, authors, language) comes first from what
the publisher states about the article (JSON-LD, Open Graph, ``<meta>``, ``<time>``) because that
is more reliable than heuristics on the visible page. The page is parsed once and that tree is
shared by both. Every string that leaves this module went through :func:`sanitize_text`, so no
markup, control character or invalid code point reaches the store or the UI.
"""

from __future__ import annotations

import codecs
import html
import itertools
import json
import logging
import multiprocessing
import os
import re
import threading
import time
import unicodedata
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import lxml.etree
import lxml.html
from lxml.etree import ParserError

from pipeline.errors import ExtractionError

__all__ = [
    "ExtractStats",
    "Extracted",
    "decode_html",
    "extract",
    "extract_many",
    "parse_date",
    "sanitize_text",
]

LOGGER = logging.getLogger(__name__)

K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class Extracted:
    """One cleaned article."""

    title: str | None
    text: str  # body text, paragraphs separated by "\n"
    authors: tuple[str, ...]
    published_at: datetime | None  # timezone-aware UTC when known
    language: str | None  # ISO 639-1 like "en", "uk"


@dataclass(slots=True)
class ExtractStats:
    """CPU seconds spent extracting, summed over every process that did it.

    ``trafilatura_s`` is the time inside trafilatura's and htmldate's own calls; ``parse_s`` the
    HTML parse whose tree they work on; the rest of ``cpu_s`` is this module's own work (decoding,
    metadata, body clean-up). Lets a run tell how much of cleaning is the extractor itself.
    """

    pages: int = 0
    cpu_s: float = 0.0
    trafilatura_s: float = 0.0
    parse_s: float = 0.0
    # whole CPU time of the worker processes (start-up, unpickling, idle polling included);
    # 0 when extraction ran in the caller's process
    workers_s: float = 0.0

    def add(self, other: ExtractStats) -> None:
        self.pages += other.pages
        self.cpu_s += other.cpu_s
        self.trafilatura_s += other.trafilatura_s
        self.parse_s += other.parse_s
        self.workers_s += other.workers_s


# per-thread CPU clocks of the current thread's extractions (reset per chunk in workers)
_CLOCK = threading.local()


def _charge(key: str, since: float) -> None:
    setattr(_CLOCK, key, getattr(_CLOCK, key, 0.0) + time.thread_time() - since)


# -- decoding ----------------------------------------------------------------------------------

# WHATWG maps these labels to a superset encoding; browsers decode them that way, so pages
# written for browsers do too (e.g. "iso-8859-1" pages full of cp1252 curly quotes).
_ENCODING_ALIASES = {
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "l1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "iso-8859-9": "cp1254",
    "latin5": "cp1254",
    "tis-620": "cp874",
    "iso-8859-11": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "big5": "big5hkscs",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
}
_WIDE = {"utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"}
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([a-zA-Z0-9_.:\-]+)""", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([a-zA-Z0-9_.:\-]+)""")
_PRESCAN_BYTES = 16384
# C0 controls but \t \n \r, and DEL: single bytes in UTF-8, never inside a multi-byte sequence
_C0_BYTES = bytes([*range(0, 9), 11, 12, *range(14, 32), 127])
_C0 = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _codec(label: str | bytes | None) -> str | None:
    """The Python codec for a charset label, or None when the label is unknown."""
    if not label:
        return None
    if isinstance(label, bytes):
        label = label.decode("ascii", "ignore")
    label = label.strip().strip("\"'").lower()
    label = _ENCODING_ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def _sniff(body: bytes, declared_charset: str | None) -> tuple[str, int, bool]:
    """(codec, BOM length, whether the bytes decode strictly with it)."""
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return codec, len(bom), False
    declared = _codec(declared_charset)
    if declared in _WIDE and b"\x00" in body[:1024]:
        return declared, 0, False  # UTF-16 markup has NULs; without them the label is wrong
    if not body.isascii():
        try:
            body.decode("utf-8")
            return "utf-8", 0, True
        except UnicodeDecodeError:
            pass
    head = body[:_PRESCAN_BYTES]
    match = _XML_ENCODING.match(head) or _META_CHARSET.search(head)
    in_page = _codec(match.group(1)) if match else None
    if in_page in _WIDE:
        in_page = "utf-8"  # the label was readable as ASCII, so the page is not UTF-16
    candidates = [c for c in (declared, in_page) if c and c not in _WIDE] + ["utf-8"]
    for codec in candidates:
        try:
            body.decode(codec)
            return codec, 0, True
        except (UnicodeDecodeError, LookupError):
            continue
    return candidates[0], 0, False


def decode_html(body: bytes, declared_charset: str | None = None) -> str:
    """Bytes to text that is always valid: never raises on bad bytes.

    Order: a BOM wins; then bytes that are valid UTF-8 and not plain ASCII are UTF-8 whatever
    the labels say (mislabelled UTF-8 is common, while legacy-encoded prose is practically never
    valid UTF-8); then the declared (HTTP) charset, then ``<meta charset>``/XML declaration;
    then UTF-8. A label that fails strictly falls through to the next; the last resort is the
    first known label, else UTF-8, with replacement characters. Control characters but tab and
    newlines are dropped (NUL truncates text in C libraries downstream).
    """
    if isinstance(body, str):
        return _C0.sub("", body)
    codec, skip, _ = _sniff(body, declared_charset)
    return _C0.sub("", body[skip:].decode(codec, "replace"))


def _to_utf8(body: bytes, declared_charset: str | None) -> bytes:
    """The page as clean UTF-8 bytes for lxml, which parses bytes twice as fast as str."""
    codec, skip, strict = _sniff(body, declared_charset)
    data = body if codec == "utf-8" and strict else body[skip:].decode(codec, "replace").encode("utf-8")
    return data.translate(None, _C0_BYTES)


# -- text hygiene ------------------------------------------------------------------------------

_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9:-]*(?:\s[^<>]*)?/?>|<!--.*?-->|<!\[CDATA\[|\]\]>", re.DOTALL)
_TAG_START = re.compile(r"<(?=[a-zA-Z/!?])")
_SCRIPT_BLOCK = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_DANGEROUS_SCHEME = re.compile(r"\b(java|vb)script\s*:", re.IGNORECASE)
_EVENT_HANDLER = re.compile(r"\bon[a-z]{3,}\s*=\s*(?=[\"'\w])", re.IGNORECASE)
_SPACES = re.compile(r"[^\S\n]+")
# controls (C0 but newline and tab, DEL, C1), lone surrogates, non-characters, and the invisible
# soft hyphen / zero-width space / word joiner / BOM that break search and deduplication
_UNWANTED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\xad\u200b\u2060\ufeff\ud800-\udfff\ufffe\uffff]")
_ENTITY = re.compile(r"&(?:#\d+|#x[0-9a-fA-F]+|[a-zA-Z][a-zA-Z0-9]*);?")


def sanitize_text(text: str) -> str:
    """Plain text safe to store and show anywhere: no markup, no controls, valid UTF-8.

    Entities are resolved before tags are stripped, so markup that reached the text escaped
    (``&lt;script&gt;``) is removed too; a ``<`` left before a letter gets a space, and
    ``javascript:`` and ``onxxx=`` residue that no tag carries any more is defused. Lines are
    trimmed and blank lines dropped.
    """
    if not text:
        return ""
    if "&" in text and _ENTITY.search(text):
        text = html.unescape(text)
    if "<" in text:
        text = _SCRIPT_BLOCK.sub(" ", text)
        text = _TAG.sub(" ", text)
        text = _TAG_START.sub("< ", text)  # a truncated "<script" must not open a tag anywhere
    text = _UNWANTED.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _DANGEROUS_SCHEME.sub(lambda m: m.group(1) + "script ", text)
    text = _EVENT_HANDLER.sub(lambda m: m.group(0).rstrip().rstrip("=") + " ", text)
    text = unicodedata.normalize("NFC", text)
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def _one_line(text: str | None) -> str | None:
    if not text:
        return None
    cleaned = " ".join(sanitize_text(text).split())
    return cleaned or None


# -- input checks ------------------------------------------------------------------------------

_BINARY_MAGIC = (
    (b"%PDF", "PDF document"),
    (b"\x89PNG", "PNG image"),
    (b"GIF8", "GIF image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"PK\x03\x04", "ZIP archive"),
    (b"RIFF", "RIFF media"),
    (b"\x00\x00\x01\x00", "icon"),
    (b"OggS", "Ogg media"),
    (b"ID3", "MP3 audio"),
    (b"\x1a\x45\xdf\xa3", "Matroska/WebM media"),
    (b"%!PS", "PostScript document"),
    (b"{\\rtf", "RTF document"),
    (b"\xd0\xcf\x11\xe0", "MS Office document"),
)
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_BYTES = 20 * 1024 * 1024  # trafilatura's own file-size limit; real articles are < 2 MB
_HAS_TAG = re.compile(rb"<\s*[a-zA-Z!/]")
_XML_ROOT = re.compile(
    rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(rss|feed|urlset|"
    rb"sitemapindex|rdf:RDF|svg)\b",
    re.DOTALL | re.IGNORECASE,
)
_XML_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*\?>")


def _check_bytes(body: bytes, declared_charset: str | None) -> bytes:
    """Reject what is obviously not a web page, before paying for decoding and parsing."""
    head = body[:4096].lstrip()[:16] or body.lstrip()[:16]
    if not head:
        raise ExtractionError("not HTML: empty document")
    if head.startswith(_GZIP_MAGIC):
        # a server that sent a .gz with no Content-Encoding; inflate within a cap (gzip bombs)
        try:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            body = inflater.decompress(body, _MAX_BYTES)
        except zlib.error as exc:
            raise ExtractionError(f"not HTML: corrupt gzip data ({exc})") from None
        if inflater.unconsumed_tail:
            raise ExtractionError("not HTML: gzip data inflates beyond the size limit")
        return _check_bytes(body, declared_charset)
    for magic, what in _BINARY_MAGIC:
        if head.startswith(magic):
            raise ExtractionError(f"not HTML: {what}")
    if len(body) > _MAX_BYTES:
        raise ExtractionError(f"page too large: {len(body)} bytes (limit {_MAX_BYTES})")
    sample = body[:1024]
    wide = sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or (
        _codec(declared_charset) in _WIDE
    )
    if not wide and sum(1 for b in sample if b < 9 or 13 < b < 32) > len(sample) // 10:
        raise ExtractionError("not HTML: binary data")
    return body


def _check_markup(data: bytes) -> None:
    """``data`` is the page as UTF-8: reject JSON, feeds, sitemaps and plain text."""
    stripped = data[:4096].lstrip() or data.lstrip()
    if not stripped:
        raise ExtractionError("not HTML: empty document")
    if stripped[:1] in (b"{", b"["):
        raise ExtractionError("not HTML: looks like JSON")
    root = _XML_ROOT.match(stripped)
    if root:
        kind = root.group(1).decode("ascii")
        raise ExtractionError(f"not HTML: XML document <{kind}> (feed, sitemap or image)")
    if not _HAS_TAG.search(data):
        raise ExtractionError("not HTML: no markup found")


_PARSER = lxml.html.HTMLParser(
    encoding="utf-8", remove_comments=True, remove_pis=True, collect_ids=False, default_doctype=False
)


def _parse(data: bytes) -> lxml.html.HtmlElement:
    data = _XML_DECLARATION.sub(b"", data, count=1)  # it may name another encoding
    start = time.thread_time()
    try:
        tree = lxml.html.document_fromstring(data, parser=_PARSER)
    except (ParserError, ValueError) as exc:
        raise ExtractionError(f"not HTML: unparseable ({exc})") from None
    finally:
        _charge("parse", start)
    if tree is None:
        raise ExtractionError("not HTML: unparseable")
    return tree


# -- metadata ----------------------------------------------------------------------------------

_ARTICLE_TYPES = {
    "article",
    "newsarticle",
    "reportagenewsarticle",
    "analysisnewsarticle",
    "opinionnewsarticle",
    "backgroundnewsarticle",
    "reviewnewsarticle",
    "askpublicnewsarticle",
    "satiricalarticle",
    "blogposting",
    "liveblogposting",
    "socialmediaposting",
    "report",
    "techarticle",
    "scholarlyarticle",
    "advertisercontentarticle",
}
_JSONLD_FIX = re.compile(r"^\s*(?:<!--|//\s*<!\[CDATA\[|<!\[CDATA\[)|(?:-->|//\s*\]\]>|\]\]>)\s*$")


def _types(node: dict[str, Any]) -> set[str]:
    kind = node.get("@type")
    kinds = kind if isinstance(kind, list) else [kind]
    return {k.rsplit("/", 1)[-1].lower() for k in kinds if isinstance(k, str)}


def _walk_jsonld(data: Any, out: list[dict[str, Any]], depth: int = 0) -> None:
    if depth > 4:
        return
    if isinstance(data, list):
        for item in data:
            _walk_jsonld(item, out, depth + 1)
    elif isinstance(data, dict):
        if "@type" in data:
            out.append(data)
        for key in ("@graph", "mainEntity", "itemListElement"):
            if key in data:
                _walk_jsonld(data[key], out, depth + 1)


def _jsonld_nodes(tree: lxml.html.HtmlElement) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    for script in tree.iter("script"):
        if "ld+json" not in (script.get("type") or "").lower() or not script.text:
            continue
        raw = script.text
        try:
            data = json.loads(raw, strict=False)
        except ValueError:
            try:
                data = json.loads(_JSONLD_FIX.sub("", raw), strict=False)
            except ValueError:
                continue
        _walk_jsonld(data, nodes)
    return nodes


def _page_key(url: str) -> str:
    parts = urlsplit(url.strip())
    return (parts.hostname or "").removeprefix("www.") + parts.path.rstrip("/")


def _main_article(articles: list[dict[str, Any]], url: str | None) -> dict[str, Any] | None:
    """The article node about this page: pages also describe related or listed articles."""
    if not articles:
        return None
    if url and len(articles) > 1:
        page = _page_key(url)
        for node in articles:
            ids = [node.get("url"), node.get("@id"), node.get("mainEntityOfPage")]
            ids = [i.get("@id") if isinstance(i, dict) else i for i in ids]
            if any(isinstance(i, str) and i.startswith("http") and _page_key(i) == page for i in ids):
                return node
    return next((a for a in articles if _str(a.get("headline"))), articles[0])


def _str(value: Any) -> str | None:
    """A JSON-LD value as a string (first of a list, "@value"/"name" of an object)."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("@value") or value.get("name")
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


def _meta(tree: lxml.html.HtmlElement) -> dict[str, list[str]]:
    """All <meta> values by lowercased property/name/itemprop, in page order."""
    found: dict[str, list[str]] = {}
    for el in tree.iter("meta"):
        content = el.get("content")
        if content is None or not content.strip():
            continue
        for attr in ("property", "name", "itemprop", "http-equiv"):
            key = el.get(attr)
            if key:
                found.setdefault(key.strip().lower(), []).append(content.strip())
    return found


def _first(meta: dict[str, list[str]], *keys: str) -> str | None:
    for key in keys:
        values = meta.get(key)
        if values:
            return values[0]
    return None


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


# authors

_AUTHOR_SPLIT = re.compile(r"\s*(?:[,;|]|\s&\s|\s(?:and|und|og|och|en|e|y)\s)\s*", re.IGNORECASE)
_BYLINE_PREFIX = re.compile(
    r"^(?:(?:by|von|par|por|di|door|av|af|ved|от)\s+|(?:author|autor|autorin|auteur|автор)\b:?\s*)",
    re.IGNORECASE,
)

_TRAILING_NOTE = re.compile(r"\s*\([^()]{1,12}\)$")


def _clean_author(name: str) -> str | None:
    name = _one_line(name) or ""
    name = _BYLINE_PREFIX.sub("", name).strip()
    name = _TRAILING_NOTE.sub("", name).strip(" ,;:-–—|")
    if not name or len(name) > 80 or "@" in name or name.startswith(("(", "[", "www.")):
        return None
    if name.isdigit() or not any(ch.isalpha() for ch in name):
        return None
    return name


def _split_authors(names: Iterable[str]) -> tuple[str, ...]:
    out: dict[str, str] = {}
    for raw in names:
        if "://" in raw or raw.lstrip().startswith("/"):
            continue  # a profile link, not a name
        for part in _AUTHOR_SPLIT.split(raw):
            name = _clean_author(part)
            if name:
                out.setdefault(name.casefold(), name)
    return tuple(out.values())


def _jsonld_author_names(value: Any) -> list[str]:
    names: list[str] = []
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, list):
            names.extend(_jsonld_author_names(item))
        elif isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict):
            name = item.get("name")
            if isinstance(name, list):
                name = " ".join(n for n in name if isinstance(n, str))
            if not isinstance(name, str) or not name.strip():
                given, family = item.get("givenName"), item.get("familyName")
                name = " ".join(n for n in (given, family) if isinstance(n, str))
            if name.strip():
                names.append(name)
    return names


# titles

_TITLE_SEPARATORS = "|-–—·•*:：｜/／»«~‹›"
_WORD_JOINERS = "-/"  # also inside words ("KI-Foto", "24/7"): a separator only beside a space
_QUOTES = str.maketrans("‘’‚‛“”„‟", "''''\"\"\"\"")


def _site_names(meta: dict[str, list[str]], article: dict[str, Any] | None, url: str | None) -> list[str]:
    names = list(meta.get("og:site_name", ())) + list(meta.get("application-name", ()))
    publisher = article.get("publisher") if article else None
    if isinstance(publisher, list):
        publisher = publisher[0] if publisher else None
    if isinstance(publisher, dict) and isinstance(publisher.get("name"), str):
        names.append(publisher["name"])
    host = urlsplit(url).hostname if url else None
    if host:
        host = host.removeprefix("www.")
        names.append(host)
        names.append(host.rsplit(".", 1)[0])
    return [n for n in (_one_line(n) for n in names) if n]


def _strip_site_name(title: str, sites: Sequence[str]) -> str:
    """Drop the site's name as a title segment of its own, only when it is one of its names.

    "Headline | Site" and "Site | Headline" lose the name, and so does "Headline | Site News"
    (one more word after a bar); "Headline | Site | by Author" loses the name and what
    follows it, which must be shorter than the headline before it.
    """
    lowered = title.lower()
    if len(lowered) != len(title):
        lowered = title  # lowercasing changed the length ("İ"): positions must match title's
    for site in sorted(sites, key=len, reverse=True):
        if len(site) >= len(title) - 3:
            continue
        name = site.lower()
        start = -1
        while (start := lowered.find(name, start + 1)) >= 0:
            end = start + len(name)
            if (start and title[start - 1].isalnum()) or title[end : end + 1].isalnum():
                continue  # inside a word
            before, after = title[:start].rstrip(), title[end:].lstrip()
            if not after or (
                before[-1:] in ("|", "｜")
                and len(after.split()) == 1
                and not any(ch in _TITLE_SEPARATORS for ch in after)
            ):
                stripped = before.rstrip(_TITLE_SEPARATORS).rstrip()
                if stripped != before and stripped:
                    return stripped
            elif not before:
                stripped = after.lstrip(_TITLE_SEPARATORS).lstrip()
                if stripped != after and stripped:
                    return stripped
            elif (
                before[-1] in _TITLE_SEPARATORS and after[0] in _TITLE_SEPARATORS and len(after) < len(before)
            ):
                stripped = before.rstrip(_TITLE_SEPARATORS).rstrip()
                if stripped:
                    return stripped
    return title


def _norm_key(text: str) -> str:
    """Comparison key: case, spacing and typographic vs straight quotes do not count."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().translate(_QUOTES).split())


def _opens_segment(rest: str) -> bool:
    """``rest`` begins with a title separator (spaces around it allowed): a new segment."""
    stripped = rest.lstrip()
    if not stripped or stripped[0] not in _TITLE_SEPARATORS:
        return False
    return stripped[0] not in _WORD_JOINERS or len(stripped) < len(rest) or stripped[1:2].isspace()


def _decorates(longer: str, headline: str) -> bool:
    """``longer`` is ``headline`` dressed as whole segments: "Headline | Section" or
    "Kicker: Headline - Site". A kicker alone ("Kicker: Headline") does not count: publishers
    disagree on whether it belongs to the headline, so both stay separate candidates."""
    if len(headline.split()) < 2 and len(_CJK.findall(headline)) < 6:
        return False  # a one-word "headline" is a section name or a logo
    if longer.startswith(headline) and _opens_segment(longer[len(headline) :]):
        return True
    start = longer.find(headline, 1)
    while start > 0:
        if _opens_segment(longer[:start][::-1]) and _opens_segment(longer[start + len(headline) :]):
            return True
        start = longer.find(headline, start + 1)
    return False


# Votes of each title source, in trust order: JSON-LD headline, og:title, first <h1>,
# twitter:title, <title>. See _pick_title.
_TITLE_SOURCE_VOTES = (1, 1, 0, 0, -1)


def _pick_title(candidates: Sequence[str | None], votes: Sequence[int] = _TITLE_SOURCE_VOTES) -> str | None:
    """The headline among the title sources, given in the order of _TITLE_SOURCE_VOTES.

    Sources with the same text (see _norm_key), or with the text of another source dressed in
    section or site segments (see _decorates), name the same headline. A headline scores one
    vote for each of the JSON-LD headline and og:title among its sources and loses one if the
    <title> is among them; the best score wins, a tie goes to the more trusted source, and the
    text is that of the most trusted source naming it undressed. In effect a headline the
    publisher states (JSON-LD, og:title) beats <h1> and twitter:title, which decide only when
    none is stated; and when JSON-LD and og:title state two different headlines, the one that
    differs from the <title> wins. The <title> is the search-engine title, which a CMS
    presumably copies into the headline fields nobody edited, so the field that differs was
    written for the article. It is a weak signal: on the fundus development pages where the
    two disagreed and the <title> sided with one, the other was the expected headline 39
    times, the <title>'s side 21 times. Votes tuned on half of those pages' countries get
    0.86 of the titles right on the other half, against 0.80 for one vote per source; see
    ``benchmarks/extraction_quality.py --title-holdout``.
    """
    present = [(vote, text, _norm_key(text)) for vote, text in zip(votes, candidates, strict=False) if text]
    if not present:
        return None
    keys = [key for _, _, key in present]
    score: dict[str, int] = {}  # by headline key, in order of its most trusted source
    for vote, _, key in present:
        bases = [other for other in keys if other != key and _decorates(key, other)]
        core = min(bases, key=len) if bases else key
        score[core] = score.get(core, 0) + vote
    winner = max(score, key=score.__getitem__)  # the first of the best: the most trusted
    return next(text for _, text, key in present if key == winner)


# language

_LANG = re.compile(r"^\s*([a-zA-Z]{2,3})(?:[-_][a-zA-Z0-9]+)*\s*$")


def _language(
    tree: lxml.html.HtmlElement, meta: dict[str, list[str]], article: dict[str, Any] | None
) -> str | None:
    candidates = [
        tree.get("lang"),
        tree.get("xml:lang"),
        _str(article.get("inLanguage")) if article else None,
        _first(meta, "content-language", "og:locale", "language", "dc.language"),
    ]
    for value in candidates:
        if not value:
            continue
        match = _LANG.match(value.split(",")[0])
        if match and len(match.group(1)) == 2:
            return match.group(1).lower()
    return None


@dataclass(slots=True)
class _Metadata:
    title: str | None
    authors: tuple[str, ...]
    published_at: datetime | None
    language: str | None
    article_body: str | None
    headlines: tuple[str, ...]  # every title candidate, to drop a repeated headline from the body
    descriptions: tuple[str, ...]  # the standfirst candidates, see _add_lead


def _title_sources(
    tree: lxml.html.HtmlElement, meta: dict[str, list[str]], article: dict[str, Any] | None, url: str | None
) -> list[str | None]:
    """The title candidates in the order of _TITLE_SOURCE_VOTES, site names stripped."""
    sites = _site_names(meta, article, url)

    def clean(title: str | None) -> str | None:
        cleaned = _one_line(title)
        return _strip_site_name(cleaned, sites) if cleaned else None

    h1 = next(tree.iter("h1"), None)
    title_el = next(tree.iter("title"), None)
    return [
        clean(_str(article.get("headline"))) if article else None,
        clean(_first(meta, "og:title")),
        clean(h1.text_content()) if h1 is not None else None,
        clean(_first(meta, "twitter:title")),
        clean(title_el.text_content()) if title_el is not None else None,
    ]


def _metadata(tree: lxml.html.HtmlElement, url: str | None) -> _Metadata:
    """What the page says about itself; reads the tree without touching it."""
    meta = _meta(tree)
    nodes = _jsonld_nodes(tree)
    article = _main_article([n for n in nodes if _types(n) & _ARTICLE_TYPES], url)
    headlines = _title_sources(tree, meta, article, url)
    title = _pick_title(headlines)

    published = None
    date_sources: list[str | None] = [
        _str(article.get("datePublished")) if article else None,
        _first(
            meta,
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
            "dc.date",
            "dcterms.created",
            "date",
            "article.published",
            "cxenseparse:recs:publishtime",
        ),
        _str(article.get("dateCreated")) if article else None,
    ]
    for source in date_sources:
        published = parse_date(source)
        if published:
            break
    if published is None:
        for el in tree.iter("time"):
            published = parse_date(el.get("datetime"))
            if published:
                break

    authors: tuple[str, ...] = ()
    if article and article.get("author"):
        authors = _split_authors(_jsonld_author_names(article["author"]))
    for key in ("author", "article:author", "byl", "parsely-author", "dc.creator"):
        if authors:
            break
        authors = _split_authors(meta.get(key, []))

    body = _str(article.get("articleBody")) if article else None
    descriptions = [
        _one_line(_str(article.get("description"))) if article else None,
        *(_one_line(_first(meta, k)) for k in ("og:description", "description", "twitter:description")),
    ]
    return _Metadata(
        title,
        authors,
        published,
        _language(tree, meta, article),
        body,
        tuple(h for h in headlines if h),
        tuple(dict.fromkeys(d for d in descriptions if d)),
    )


# -- body --------------------------------------------------------------------------------------

_ESCALATE_SHARE = 0.6  # fast text below this share of the biggest <p> block: run the full cascade


def _largest_paragraph_block(tree: lxml.html.HtmlElement) -> int:
    """Characters in the biggest run of sibling <p>: a cheap floor for the article's length."""
    blocks: dict[Any, int] = {}
    for p in tree.iter("p"):
        parent = p.getparent()
        blocks[parent] = blocks.get(parent, 0) + len(p.text_content())
    return max(blocks.values(), default=0)


def _body(tree: lxml.html.HtmlElement, url: str | None) -> str:
    """Trafilatura's fast mode first; its full cascade only when fast mode under-delivers.

    The full cascade runs readability and justext on every page to second-guess the main
    extractor, which costs a third of the time and rarely changes the result. Here it runs only
    when the fast text is shorter than a share of the page's biggest block of paragraphs, the
    same kind of signal (a bigger block the extractor missed) that makes readability win there.
    """
    text = _trafilatura(tree, url, fast=True)
    if len(text) < _ESCALATE_SHARE * _largest_paragraph_block(tree):
        full = _trafilatura(tree, url, fast=False)
        if len(full) > len(text):
            text = full
    return text


def _trafilatura(tree: lxml.html.HtmlElement, url: str | None, *, fast: bool) -> str:
    import trafilatura

    # comments are not the article; tables often are (results, figures)
    start = time.thread_time()
    try:
        document = trafilatura.bare_extraction(
            tree, url=url, fast=fast, include_comments=False, include_tables=True, with_metadata=False
        )
    finally:
        _charge("trafilatura", start)
    text = getattr(document, "text", None)
    return text if isinstance(text, str) else ""


_NON_WORD = re.compile(r"[\W_]+")


def _alnum_key(text: str) -> str:
    return _NON_WORD.sub("", unicodedata.normalize("NFKC", text).casefold())


_HEAD_LINES = 4
_MIN_LINK_KEY = 10
_MAX_LINK_LINE = 300  # characters: longer lines are prose, not a linked headline


def _drop_link_lists(tree: lxml.html.HtmlElement, body: str) -> str:
    """Drop runs of two or more lines that are each the whole text of a link on the page.

    Such runs are "related articles"/"read more" lists that slipped into the body; a single
    linked line can be part of the text, a list of them is navigation.
    """
    lines = body.split("\n")
    # a line can be a link's whole text only if it is headline-sized; and only a run of two
    # such lines can be dropped, so most bodies (long paragraphs) need no look at the links
    short = [len(line) <= _MAX_LINK_LINE for line in lines]
    if not any(a and b for a, b in itertools.pairwise(short)):
        return body
    keys = [_alnum_key(line) if ok else "" for line, ok in zip(lines, short, strict=True)]
    lengths = [len(key) for key in keys if len(key) > _MIN_LINK_KEY]
    if len(lengths) < 2:
        return body
    shortest = min(lengths) // 2  # most links are short menu items: no key needed for them
    links = {
        _alnum_key(text)
        for text in (a.text_content() for a in tree.iter("a"))
        if shortest <= len(text) <= 4 * _MAX_LINK_LINE
    }
    flags = [len(key) > _MIN_LINK_KEY and key in links for key in keys]
    if sum(flags) < 2:
        return body
    padded = [False, *flags, False]
    kept = [line for i, line in enumerate(lines) if not (flags[i] and (padded[i] or padded[i + 2]))]
    return "\n".join(kept) if kept else body


def _add_lead(tree: lxml.html.HtmlElement, body: str, descriptions: Sequence[str]) -> str:
    """Put the standfirst back in front of the body when the page shows it but the body lacks it.

    Body extractors often skip the lead paragraph (it sits above the article container, styled
    as a teaser). The page's own description is that lead when the same text is visible on the
    page; a description found only in metadata is a summary nobody reads there, so it stays out.
    Runs last: it strips scripts from ``tree`` to see only visible text.
    """
    body_key = _NON_WORD.sub("", body.casefold())
    wanted = []
    for description in descriptions:
        if len(description.split()) < 8:
            continue
        key = _NON_WORD.sub("", description.rstrip(".…").casefold())
        if key[:60] in body_key:
            return body  # the body has its lead; other descriptions are captions or teasers
        wanted.append((description, key))
    if not wanted:
        return body
    page = tree.find("body")
    if page is None:
        return body
    lxml.etree.strip_elements(
        page,
        "script",
        "style",
        "noscript",
        "template",
        "figure",
        "figcaption",
        "aside",
        "nav",
        "footer",
        with_tail=False,
    )
    visible = _NON_WORD.sub("", page.text_content().casefold())
    for description, key in wanted:
        if key in visible:
            return f"{description}\n{body}"
    return body


def _drop_repeated_header(body: str, headlines: Sequence[str], authors: Sequence[str]) -> str:
    """Drop the headline and a bare byline when the body repeats them in its first lines.

    They are already in ``title``/``authors``; left in, every consumer of ``text`` (dedup,
    summaries, clustering) sees them twice. Compared on letters and digits only, so a kicker
    glued to the headline ("Kicker:Headline") or different spacing still matches.
    """
    heads = {_alnum_key(h) for h in headlines} - {""}
    names = [k for k in (_alnum_key(a) for a in authors) if k]
    lines = body.split("\n")
    keep_from = 0
    for i, line in enumerate(lines[:_HEAD_LINES]):
        key = _alnum_key(line)
        byline = bool(names) and len(line) <= 80 and any(n in key and len(key) - len(n) <= 12 for n in names)
        if key in heads or byline:
            keep_from = i + 1  # short kicker/date lines above it go too
        elif len(line.split()) > 25:
            break  # real prose: the header, if any, is over
    return "\n".join(lines[keep_from:]) if keep_from < len(lines) else body


_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_MIN_PARAGRAPH = 50  # characters (CJK count double): the floor for one line of real prose


def _has_prose(body: str) -> bool:
    """A body needs one paragraph-sized line; menus and link lists salvaged by the fallbacks
    of a page without an article are all short lines."""
    return any(
        len(line) + len(_CJK.findall(line)) >= _MIN_PARAGRAPH
        for line in body.split("\n")
        if len(line) * 2 >= _MIN_PARAGRAPH
    )


def _words(text: str) -> int:
    return len(text.split())


def _fallback_date(tree: lxml.html.HtmlElement, url: str | None) -> datetime | None:
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
        _charge("trafilatura", start)
    return parse_date(found)


def _fallback_authors(tree: lxml.html.HtmlElement) -> tuple[str, ...]:
    """Byline markup (class="author", rel="author"...) when no metadata names anyone."""
    start = time.thread_time()
    try:
        from trafilatura.metadata import extract_author

        found = extract_author(tree)
    except Exception:
        return ()
    finally:
        _charge("trafilatura", start)
    return _split_authors([found]) if found else ()


def extract(html: bytes | str, url: str | None = None, *, charset: str | None = None) -> Extracted:
    """Clean one fetched page into an article.

    Raises ExtractionError when the input is not HTML or has no article body, and for any
    failure inside the parsers: a bad page must cost that page, never the batch.
    """
    try:
        return _extract(html, url, charset)
    except ExtractionError:
        raise
    except Exception as exc:
        raise ExtractionError(f"extraction failed: {type(exc).__name__}: {exc}") from exc


def _extract(html: bytes | str, url: str | None, charset: str | None) -> Extracted:
    if isinstance(html, bytes | bytearray | memoryview):
        data = _to_utf8(_check_bytes(bytes(html), charset), charset)
    elif isinstance(html, str):
        data = html.lstrip("\ufeff").encode("utf-8", "replace").translate(None, _C0_BYTES)
        if len(data) > _MAX_BYTES:
            raise ExtractionError(f"page too large: {len(data)} bytes (limit {_MAX_BYTES})")
    else:
        raise ExtractionError(f"not HTML: unsupported input type {type(html).__name__}")
    _check_markup(data)
    tree = _parse(data)
    meta = _metadata(tree, url)
    body = sanitize_text(_body(tree, url))
    if meta.article_body:
        # the publisher's own copy of the text: better than a body the heuristics cut short
        declared = sanitize_text(meta.article_body)
        if _words(declared) > 2 * _words(body) + 20:
            body = declared
    if not _has_prose(body):
        raise ExtractionError("no article body found")
    published = meta.published_at or _fallback_date(tree, url)
    authors = meta.authors or _fallback_authors(tree)
    body = _drop_repeated_header(body, meta.headlines, authors)
    body = _drop_link_lists(tree, body)
    body = _add_lead(tree, body, meta.descriptions)
    return Extracted(meta.title, body, authors, published, meta.language)


# -- many pages --------------------------------------------------------------------------------

_CHUNK = 4  # pages per task: amortises IPC while keeping the two cores evenly busy
_IN_FLIGHT_PER_WORKER = 4  # chunks queued per worker: bounds memory, hides result latency
_MIN_PARALLEL = 8  # fewer pages than this are cheaper in-process than starting workers

Task = tuple[bytes | str, str | None, str | None, Callable[[bytes], bytes] | None]
Result = Extracted | ExtractionError


def _extract_safely(task: Task) -> Result:
    html, url, charset, unpack = task
    try:
        if unpack is not None and isinstance(html, bytes):
            try:
                html = unpack(html)
            except Exception as exc:
                return ExtractionError(f"stored page is unreadable: {exc}")
        return extract(html, url, charset=charset)
    except ExtractionError as exc:
        return exc
    except Exception as exc:
        return ExtractionError(f"extraction failed: {type(exc).__name__}: {exc}")


def _extract_chunk(chunk: list[Task]) -> tuple[list[Result], ExtractStats]:
    """Extract a chunk and measure it: the stats travel back with the results."""
    _CLOCK.trafilatura = _CLOCK.parse = 0.0
    start = time.thread_time()
    results = [_extract_safely(task) for task in chunk]
    stats = ExtractStats(len(chunk), time.thread_time() - start, _CLOCK.trafilatura, _CLOCK.parse)
    return results, stats


_reported = 0.0  # a worker's process CPU time already reported with an earlier chunk


def _extract_chunk_in_worker(chunk: list[Task]) -> tuple[list[Result], ExtractStats]:
    """As _extract_chunk, plus this worker's CPU since its last report (its start, at first)."""
    global _reported
    results, stats = _extract_chunk(chunk)
    used = time.process_time()  # a new process's clock starts at zero, imports included
    stats.workers_s, _reported = used - _reported, used
    return results, stats


def _init_worker() -> None:
    """Import the heavy modules once per worker, not per task."""
    import signal

    import trafilatura  # noqa: F401

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and shuts down


def _mp_context() -> multiprocessing.context.BaseContext:
    """fork is cheapest (workers inherit the imports) but unsafe once threads exist."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _new_pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(workers, mp_context=_mp_context(), initializer=_init_worker)


def _tasks(
    items: Iterable[Sequence[Any]], unpack: Callable[[bytes], bytes] | None
) -> Iterator[tuple[Any, Task]]:
    for item in items:
        if len(item) == 3:
            key, html, url = item
            yield key, (html, url, None, unpack)
        else:
            key, html, url, charset = item
            yield key, (html, url, charset, unpack)


def extract_many(
    items: Iterable[tuple[K, bytes, str | None] | tuple[K, bytes, str | None, str | None]],
    workers: int = 0,
    stats: ExtractStats | None = None,
    unpack: Callable[[bytes], bytes] | None = None,
) -> Iterator[tuple[K, Extracted | ExtractionError]]:
    """Extract pages in parallel processes, yielding ``(key, result)`` in input order.

    Items are ``(key, html, url)`` or ``(key, html, url, charset)``; keys stay in this process,
    so they need not be picklable. Failures come back as ExtractionError values, never raised,
    so one bad page never stops a batch. ``workers=0`` means one per CPU; ``workers=1``, fewer
    than 8 items or a daemonic caller run in this process, where starting workers costs more
    than it saves. Pages go out in chunks of 4 and at most ``workers * 4`` chunks are in flight,
    so a generator input is read lazily and memory stays bounded. ``stats``, when given, is
    added the CPU time of every page (in whichever process extracted it). ``unpack`` (a
    module-level function, so workers can receive it) turns each stored blob into the page, in
    the worker: the caller then never holds or ships inflated pages.
    """
    workers = workers or os.cpu_count() or 1
    if multiprocessing.current_process().daemon:
        workers = 1  # daemonic processes (pool workers, celery) may not have children
    iterator = _tasks(items, unpack)
    head: list[tuple[Any, Task]] = []
    for pair in iterator:
        head.append(pair)
        if len(head) >= _MIN_PARALLEL:
            break
    if workers <= 1 or len(head) < _MIN_PARALLEL:
        for key, task in itertools.chain(head, iterator):
            [result], measured = _extract_chunk([task])
            if stats is not None:
                stats.add(measured)
            yield key, result
        return
    yield from _parallel(head, iterator, workers, stats)


def _chunks(
    head: list[tuple[Any, Task]], rest: Iterator[tuple[Any, Task]]
) -> Iterator[list[tuple[Any, Task]]]:
    chunk: list[tuple[Any, Task]] = []
    for pair in itertools.chain(head, rest):
        chunk.append(pair)
        if len(chunk) == _CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _parallel(
    head: list[tuple[Any, Task]], rest: Iterator[tuple[Any, Task]], workers: int, stats: ExtractStats | None
) -> Iterator[tuple[Any, Result]]:
    chunks = _chunks(head, rest)
    limit = workers * _IN_FLIGHT_PER_WORKER
    pool = _new_pool(workers)
    pending: deque[tuple[list[tuple[Any, Task]], Future[tuple[list[Result], ExtractStats]]]] = deque()
    try:
        while True:
            while len(pending) < limit and (chunk := next(chunks, None)) is not None:
                pending.append((chunk, pool.submit(_extract_chunk_in_worker, [t for _, t in chunk])))
            if not pending:
                return
            chunk, future = pending.popleft()
            try:
                results, measured = future.result()
            except BrokenProcessPool:
                # a worker died (segfault, OOM kill) and took every queued chunk with it: redo
                # them one page per task in a fresh pool so only the culprit page fails
                pool.shutdown(wait=False, cancel_futures=True)
                redo = [pair for c in (chunk, *(c for c, _ in pending)) for pair in c]
                pending.clear()
                LOGGER.warning("an extraction worker died; redoing %d pages one by one", len(redo))
                pool = _new_pool(workers)
                for key, task in redo:
                    try:
                        [result], measured = pool.submit(_extract_chunk_in_worker, [task]).result()
                        if stats is not None:
                            stats.add(measured)
                    except BrokenProcessPool:
                        LOGGER.warning("extraction worker died on %s", task[1] or key)
                        result = ExtractionError("extraction failed: the worker process died on this page")
                        pool.shutdown(wait=False, cancel_futures=True)
                        pool = _new_pool(workers)
                    yield key, result
                continue
            if stats is not None:
                stats.add(measured)
            for (key, _), result in zip(chunk, results, strict=True):
                yield key, result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
