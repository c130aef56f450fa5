"""Live blogs: a page of timestamped entries rather than one article.

A live blog keeps its entries: those the page shows at the fetch, or, when script renders them
and the page shows only the lead, every entry the publisher's JSON-LD lists (``liveBlogUpdate``).
Never the lead alone when the entries can be had.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import lxml.html

from pipeline.extract.jsonld import jsonld_str, jsonld_types
from pipeline.extract.text import alnum_key, sanitize_text

__all__ = ["is_live_blog", "live_entries", "with_entries"]

_MARKER = re.compile(r"\blive[-_]?(?:blog|ticker|updates)\b", re.IGNORECASE)
_CONTAINERS = ("body", "main", "article")


def is_live_blog(tree: lxml.html.HtmlElement, nodes: list[dict[str, Any]]) -> bool:
    """JSON-LD says ``LiveBlogPosting``, or the page's body, main or article element is marked
    as a live blog in its class or id (a live-blog teaser in a sidebar does not count)."""
    if any("liveblogposting" in jsonld_types(node) for node in nodes):
        return True
    for tag in _CONTAINERS:
        for el in tree.iter(tag):
            if _MARKER.search(f"{el.get('class', '')} {el.get('id', '')}"):
                return True
    return False


def live_entries(nodes: list[dict[str, Any]]) -> tuple[str, ...]:
    """The entries of the page's ``LiveBlogPosting`` as listed (headline, then text, each)."""
    for node in nodes:
        if "liveblogposting" not in jsonld_types(node):
            continue
        updates = node.get("liveBlogUpdate")
        entries: list[str] = []
        for update in updates if isinstance(updates, list) else [updates]:
            if not isinstance(update, dict):
                continue
            parts = [jsonld_str(update.get("headline")), jsonld_str(update.get("articleBody"))]
            entry = sanitize_text("\n".join(dict.fromkeys(p for p in parts if p)))
            if entry:
                entries.append(entry)
        if entries:
            return tuple(entries)
    return ()


def with_entries(body: str, entries: Sequence[str]) -> str:
    """The body, or every listed entry when the visible page shows none of them.

    A live blog's page shows its entries as they were at the fetch, and that is what is kept;
    when the entries are rendered by script, the extracted body is the lead alone and the
    JSON-LD entries replace it, so the text of a live blog always holds its entries.
    """
    if not entries:
        return body
    body_key = alnum_key(body)
    for entry in entries[:3]:
        if alnum_key(entry)[:80] in body_key:
            return body
    return "\n".join(entries)
