"""Readers of what a page states in markup: JSON-LD nodes and ``<meta>`` values."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import lxml.etree
import lxml.html

ARTICLE_TYPES = {
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


def jsonld_types(node: dict[str, Any]) -> set[str]:
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


def jsonld_nodes(tree: lxml.html.HtmlElement) -> list[dict[str, Any]]:
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


def main_article(articles: list[dict[str, Any]], url: str | None) -> dict[str, Any] | None:
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
    return next((a for a in articles if jsonld_str(a.get("headline"))), articles[0])


def jsonld_str(value: Any) -> str | None:
    """A JSON-LD value as a string (first of a list, "@value"/"name" of an object)."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("@value") or value.get("name")
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


def meta_values(tree: lxml.html.HtmlElement) -> dict[str, list[str]]:
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


def first_meta(meta: dict[str, list[str]], *keys: str) -> str | None:
    for key in keys:
        values = meta.get(key)
        if values:
            return values[0]
    return None
