"""The cleaning stage: fetched HTML bytes in, plain article text and metadata out.

Trafilatura finds the body; the metadata (title, date, authors, language) comes first from what
the publisher states about the article (JSON-LD, Open Graph, ``<meta>``, ``<time>``) because that
is more reliable than heuristics on the visible page. The page is parsed once and that tree is
shared by both. Every string that leaves this module went through :func:`sanitize_text`, so no
markup, control character or invalid code point reaches the store or the UI.
"""

from __future__ import annotations

import codecs
import re
import time
import zlib

import lxml.etree
import lxml.html
from lxml.etree import ParserError

from pipeline.errors import ExtractionError, NoBodyError
from pipeline.extract.body import (
    add_lead,
    body_text,
    drop_link_lists,
    drop_repeated_header,
    has_prose,
    word_count,
)
from pipeline.extract.charset import C0_BYTES, WIDE, codec_for, to_utf8
from pipeline.extract.dates import fallback_date
from pipeline.extract.language import not_language
from pipeline.extract.liveblog import with_entries
from pipeline.extract.metadata import fallback_authors, read_metadata
from pipeline.extract.result import Extracted, charge
from pipeline.extract.text import sanitize_text

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
        codec_for(declared_charset) in WIDE
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


def parse_html(data: bytes) -> lxml.html.HtmlElement:
    data = _XML_DECLARATION.sub(b"", data, count=1)  # it may name another encoding
    start = time.thread_time()
    try:
        tree = lxml.html.document_fromstring(data, parser=_PARSER)
    except (ParserError, ValueError) as exc:
        raise ExtractionError(f"not HTML: unparseable ({exc})") from None
    finally:
        charge("parse", start)
    if tree is None:
        raise ExtractionError("not HTML: unparseable")
    return tree


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
        data = to_utf8(_check_bytes(bytes(html), charset), charset)
    elif isinstance(html, str):
        data = html.lstrip("\ufeff").encode("utf-8", "replace").translate(None, C0_BYTES)
        if len(data) > _MAX_BYTES:
            raise ExtractionError(f"page too large: {len(data)} bytes (limit {_MAX_BYTES})")
    else:
        raise ExtractionError(f"not HTML: unsupported input type {type(html).__name__}")
    _check_markup(data)
    tree = parse_html(data)
    meta = read_metadata(tree, url)
    body = sanitize_text(body_text(tree, url))
    if meta.live_entries:
        body = sanitize_text(with_entries(body, meta.live_entries))
    elif meta.article_body:
        # the publisher's own copy of the text: better than a body the heuristics cut short
        declared = sanitize_text(meta.article_body)
        if word_count(declared) > 2 * word_count(body) + 20:
            body = declared
    problem = "no article body found" if not has_prose(body) else not_language(body)
    published = meta.published_at or fallback_date(tree, url)
    authors = meta.authors or fallback_authors(tree)
    if problem:
        if meta.title or published:
            # the page states what it is and when: keep that, so the page is not lost entirely
            partial = Extracted(meta.title, "", authors, published, meta.language, meta.live_blog)
            raise NoBodyError(problem, partial)
        raise ExtractionError(problem)
    body = drop_repeated_header(body, meta.headlines, authors)
    body = drop_link_lists(tree, body)
    body = add_lead(tree, body, meta.descriptions)
    return Extracted(meta.title, body, authors, published, meta.language, meta.live_blog)
