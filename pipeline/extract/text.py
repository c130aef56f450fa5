"""Text hygiene: every string that leaves extraction goes through :func:`sanitize_text`."""

from __future__ import annotations

import html
import re
import unicodedata

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


def one_line(text: str | None) -> str | None:
    if not text:
        return None
    cleaned = " ".join(sanitize_text(text).split())
    return cleaned or None


NON_WORD = re.compile(r"[\W_]+")


def alnum_key(text: str) -> str:
    return NON_WORD.sub("", unicodedata.normalize("NFKC", text).casefold())


CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
