"""Bytes to text: which encoding a fetched page is really in."""

from __future__ import annotations

import codecs
import re

from w3lib.encoding import resolve_encoding

WIDE = {"utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"}
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([a-zA-Z0-9_.:\-]+)""", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([a-zA-Z0-9_.:\-]+)""")
_PRESCAN_BYTES = 16384
# C0 controls but \t \n \r, and DEL: single bytes in UTF-8, never inside a multi-byte sequence
C0_BYTES = bytes([*range(0, 9), 11, 12, *range(14, 32), 127])
_C0 = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def codec_for(label: str | bytes | None) -> str | None:
    """The Python codec for a charset label, or None when the label is unknown."""
    if not label:
        return None
    if isinstance(label, bytes):
        label = label.decode("ascii", "ignore")
    # WHATWG maps labels such as "iso-8859-1" to a superset encoding (cp1252); browsers decode
    # them that way, so pages written for browsers do too. w3lib holds that table.
    return resolve_encoding(label.strip().strip("\"'"))


def _sniff(body: bytes, declared_charset: str | None) -> tuple[str, int, bool]:
    """(codec, BOM length, whether the bytes decode strictly with it)."""
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return codec, len(bom), False
    declared = codec_for(declared_charset)
    if declared in WIDE and b"\x00" in body[:1024]:
        return declared, 0, False  # UTF-16 markup has NULs; without them the label is wrong
    if not body.isascii():
        try:
            body.decode("utf-8")
            return "utf-8", 0, True
        except UnicodeDecodeError:
            pass
    head = body[:_PRESCAN_BYTES]
    match = _XML_ENCODING.match(head) or _META_CHARSET.search(head)
    in_page = codec_for(match.group(1)) if match else None
    if in_page in WIDE:
        in_page = "utf-8"  # the label was readable as ASCII, so the page is not UTF-16
    candidates = [c for c in (declared, in_page) if c and c not in WIDE] + ["utf-8"]
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


def to_utf8(body: bytes, declared_charset: str | None) -> bytes:
    """The page as clean UTF-8 bytes for lxml, which parses bytes twice as fast as str."""
    codec, skip, strict = _sniff(body, declared_charset)
    data = body if codec == "utf-8" and strict else body[skip:].decode(codec, "replace").encode("utf-8")
    return data.translate(None, C0_BYTES)
