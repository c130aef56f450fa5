"""What a page states about its article: JSON-LD, Open Graph, ``<meta>``; authors and language."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import lxml.etree
import lxml.html

from pipeline.extract.dates import stated_date
from pipeline.extract.jsonld import (
    ARTICLE_TYPES,
    first_meta,
    jsonld_nodes,
    jsonld_str,
    jsonld_types,
    main_article,
    meta_values,
)
from pipeline.extract.liveblog import is_live_blog, live_entries
from pipeline.extract.result import charge
from pipeline.extract.text import one_line
from pipeline.extract.titles import pick_title, title_sources

# authors

_AUTHOR_SPLIT = re.compile(r"\s*(?:[,;|]|\s&\s|\s(?:and|und|og|och|en|e|y)\s)\s*", re.IGNORECASE)
_BYLINE_PREFIX = re.compile(
    r"^(?:(?:by|von|par|por|di|door|av|af|ved|от)\s+|(?:author|autor|autorin|auteur|автор)\b:?\s*)",
    re.IGNORECASE,
)

_TRAILING_NOTE = re.compile(r"\s*\([^()]{1,12}\)$")


def _clean_author(name: str) -> str | None:
    name = one_line(name) or ""
    name = _BYLINE_PREFIX.sub("", name).strip()
    name = _TRAILING_NOTE.sub("", name).strip(" ,;:-–—|")
    if not name or len(name) > 80 or "@" in name or name.startswith(("(", "[", "www.")):
        return None
    if name.isdigit() or not any(ch.isalpha() for ch in name):
        return None
    return name


def split_authors(names: Iterable[str]) -> tuple[str, ...]:
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


# language

_LANG = re.compile(r"^\s*([a-zA-Z]{2,3})(?:[-_][a-zA-Z0-9]+)*\s*$")


def _language(
    tree: lxml.html.HtmlElement, meta: dict[str, list[str]], article: dict[str, Any] | None
) -> str | None:
    candidates = [
        tree.get("lang"),
        tree.get("xml:lang"),
        jsonld_str(article.get("inLanguage")) if article else None,
        first_meta(meta, "content-language", "og:locale", "language", "dc.language"),
    ]
    for value in candidates:
        if not value:
            continue
        match = _LANG.match(value.split(",")[0])
        if match and len(match.group(1)) == 2:
            return match.group(1).lower()
    return None


@dataclass(slots=True)
class Metadata:
    title: str | None
    authors: tuple[str, ...]
    published_at: datetime | None
    language: str | None
    article_body: str | None
    headlines: tuple[str, ...]  # every title candidate, to drop a repeated headline from the body
    descriptions: tuple[str, ...]  # the standfirst candidates, see add_lead
    live_blog: bool = False
    live_entries: tuple[str, ...] = ()  # the entries a live blog's JSON-LD lists


def read_metadata(tree: lxml.html.HtmlElement, url: str | None) -> Metadata:
    """What the page says about itself; reads the tree without touching it."""
    meta = meta_values(tree)
    nodes = jsonld_nodes(tree)
    article = main_article([n for n in nodes if jsonld_types(n) & ARTICLE_TYPES], url)
    headlines = title_sources(tree, meta, article, url)
    title = pick_title(headlines)

    lang_tag = tree.get("lang") or first_meta(meta, "og:locale", "content-language")
    published = stated_date(tree, meta, article, url, lang_tag)

    authors: tuple[str, ...] = ()
    if article and article.get("author"):
        authors = split_authors(_jsonld_author_names(article["author"]))
    for key in ("author", "article:author", "byl", "parsely-author", "dc.creator"):
        if authors:
            break
        authors = split_authors(meta.get(key, []))

    body = jsonld_str(article.get("articleBody")) if article else None
    descriptions = [
        one_line(jsonld_str(article.get("description"))) if article else None,
        *(one_line(first_meta(meta, k)) for k in ("og:description", "description", "twitter:description")),
    ]
    return Metadata(
        title,
        authors,
        published,
        _language(tree, meta, article),
        body,
        tuple(h for h in headlines if h),
        tuple(dict.fromkeys(d for d in descriptions if d)),
        is_live_blog(tree, nodes),
        live_entries(nodes),
    )


def fallback_authors(tree: lxml.html.HtmlElement) -> tuple[str, ...]:
    """Byline markup (class="author", rel="author"...) when no metadata names anyone."""
    start = time.thread_time()
    try:
        from trafilatura.metadata import extract_author

        found = extract_author(tree)
    except Exception:  # a heuristic failing must not lose the article
        return ()
    finally:
        charge("trafilatura", start)
    return split_authors([found]) if found else ()
