"""The source registry: a YAML file validated when it is loaded, so a bad entry fails loudly
before any fetch, naming the source and the field.

Format (other tools rely on it)::

    sources:
      - name: wire            # unique, [a-z0-9_-]
        kind: rss             # rss | sitemap | html
        url: https://example.org/rss.xml
        language: en          # optional
        links: "a.story-link" # html only, required there: CSS selector (or "xpath:..." XPath)
        next_page: "a.next"   # html only, optional pagination selector
        max_pages: 5          # html only, optional page limit
        delay: 2.0            # optional politeness override (seconds between requests)
        enabled: true         # optional
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cssselect
import lxml.etree
import yaml

from pipeline.errors import ConfigError
from pipeline.models import SOURCE_KINDS, SOURCE_NAME_PATTERN, Source

_NAME = re.compile(SOURCE_NAME_PATTERN)
_ALLOWED = {"name", "kind", "url", "language", "links", "next_page", "max_pages", "delay", "enabled"}
_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")


def _where(index: int, entry: Any) -> str:
    name = entry.get("name") if isinstance(entry, dict) else None
    return f"source {name!r}" if isinstance(name, str) and name else f"source #{index + 1}"


def _validate(index: int, entry: Any, origin: str) -> Source:
    if not isinstance(entry, dict):
        raise ConfigError(f"{origin}: source #{index + 1} must be a mapping, got {type(entry).__name__}")
    where = f"{origin}: {_where(index, entry)}"
    unknown = sorted(set(entry) - _ALLOWED)
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r} (allowed: {', '.join(sorted(_ALLOWED))})")
    for key in ("name", "kind", "url"):
        if entry.get(key) in (None, ""):
            raise ConfigError(f"{where}: missing field {key!r}")
        if not isinstance(entry[key], str):
            raise ConfigError(f"{where}: field {key!r} must be a string")
    name = entry["name"]
    if not _NAME.match(name):
        raise ConfigError(f"{where}: field 'name' must match [a-z0-9][a-z0-9_.-]*, got {name!r}")
    kind = entry["kind"]
    if kind not in SOURCE_KINDS:
        raise ConfigError(f"{where}: field 'kind' must be one of {', '.join(SOURCE_KINDS)}, got {kind!r}")
    url = entry["url"].strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: field 'url' must be an absolute http(s) URL, got {url!r}")
    language = entry.get("language")
    if language is not None and (not isinstance(language, str) or not _LANG.match(language)):
        raise ConfigError(f"{where}: field 'language' must be a language code like 'en', got {language!r}")
    links = entry.get("links")
    next_page = entry.get("next_page")
    if kind == "html":
        if not isinstance(links, str) or not links.strip():
            raise ConfigError(f"{where}: field 'links' (article link selector) is required for kind html")
    elif links is not None or next_page is not None:
        field = "links" if links is not None else "next_page"
        raise ConfigError(f"{where}: field {field!r} only applies to kind html")
    if next_page is not None and (not isinstance(next_page, str) or not next_page.strip()):
        raise ConfigError(f"{where}: field 'next_page' must be a selector string")
    for field_name, selector in (("links", links), ("next_page", next_page)):
        if isinstance(selector, str):
            problem = selector_problem(selector)
            if problem:
                raise ConfigError(f"{where}: field {field_name!r}: {problem}")
    max_pages = entry.get("max_pages", 5)
    if isinstance(max_pages, bool) or not isinstance(max_pages, int) or not 1 <= max_pages <= 1000:
        raise ConfigError(f"{where}: field 'max_pages' must be an integer from 1 to 1000, got {max_pages!r}")
    delay = entry.get("delay")
    if delay is not None and (
        isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay <= 3600
    ):
        raise ConfigError(f"{where}: field 'delay' must be a number of seconds from 0 to 3600, got {delay!r}")
    enabled = entry.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{where}: field 'enabled' must be true or false, got {enabled!r}")
    return Source(
        name=name,
        kind=kind,
        url=url,
        language=language,
        links=links,
        next_page=next_page,
        max_pages=max_pages,
        delay=float(delay) if delay is not None else None,
        enabled=enabled,
    )


def selector_problem(selector: str) -> str | None:
    """Why a registry selector cannot be used (a CSS or "xpath:" syntax error), or None.

    Checked at load so a typo such as ``a[class=story-link`` stops the run before any fetch
    instead of failing the source on every crawl."""
    if selector.startswith("xpath:"):
        expression = selector.removeprefix("xpath:")
        try:
            lxml.etree.XPath(expression)
        except lxml.etree.XPathError as exc:
            return f"not a valid XPath expression {expression!r}: {exc}"
        return None
    try:
        cssselect.parse(selector)
    except cssselect.SelectorError as exc:
        return f"not a valid CSS selector {selector!r}: {exc}"
    return None


def parse_registry(text: str, origin: str = "<registry>") -> list[Source]:
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # 8x faster
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or "sources" not in data:
        raise ConfigError(f"{origin}: expected a top-level 'sources:' list")
    extra = sorted(set(data) - {"sources"})
    if extra:
        raise ConfigError(f"{origin}: unknown top-level key {extra[0]!r}")
    entries = data["sources"]
    if not isinstance(entries, list):
        raise ConfigError(f"{origin}: 'sources' must be a list")
    result: list[Source] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        source = _validate(index, entry, origin)
        if source.name in seen:
            raise ConfigError(f"{origin}: source {source.name!r}: duplicate name")
        seen.add(source.name)
        result.append(source)
    return result


def load_registry(path: str | Path) -> list[Source]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"source registry {path} not found (set NEWSAGG_SOURCES or --sources)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read source registry {path}: {exc}") from None
    return parse_registry(text, str(path))


def select(
    sources: Sequence[Source], only: Iterable[str] | None = None, kinds: Iterable[str] | None = None
) -> list[Source]:
    """Enabled sources, narrowed to ``only`` names (unknown names are an error) and ``kinds``."""
    chosen = [s for s in sources if s.enabled]
    if only:
        wanted = list(dict.fromkeys(only))
        known = {s.name for s in sources}
        missing = [n for n in wanted if n not in known]
        if missing:
            raise ConfigError(f"unknown source name(s): {', '.join(missing)}")
        chosen = [s for s in chosen if s.name in set(wanted)]
    if kinds is not None:
        kind_set = set(kinds)
        chosen = [s for s in chosen if s.kind in kind_set]
    return chosen
