"""Headline boilerplate: each outlet's recurring prefixes and suffixes, learnt from its own titles.

Outlets wrap headlines in their name, city and section (``… - WMC Action News 5 - Memphis``,
``… | The China Post, Taiwan``, ``The Latest: …``). Those words are in every title of the
outlet, so as evidence they tie its unrelated reports together; and a reader wants the headline
alone. A segment cut off by a separator counts as boilerplate when the same outlet uses it in
at least two titles (or it is the outlet's og:site_name); an event is rarely reported twice by
one outlet with the same trailing words, and when it is, they are a section label anyway.
Learning is per outlet, so one outlet's habit never strips another's headline.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["TitleCleaner", "clean_title", "learn_cleaners"]

# " - ", " | ", " — ", " · ", " :: ", " » ": the separators outlets put between parts of a title
_SEP = re.compile(r"\s+(?:[-–—|·•»~]|::|//)\s+|\s*[|]\s*")
# a label before a colon: "The Latest: …", "LIVE: …", "Ukraine war: …"
_PREFIX = re.compile(r"^\s*([^:]{2,40}?):\s+(?=\S)")
_MAX_AFFIX_WORDS = 8
# live-blog and rubric labels that are boilerplate wherever they appear, even once
_KNOWN_PREFIXES = frozenset(
    {
        "the latest",
        "live",
        "live updates",
        "breaking",
        "breaking news",
        "update",
        "updated",
        "watch",
        "video",
        "photos",
        "opinion",
        "analysis",
        "exclusive",
        "eilmeldung",
        "liveblog",
        "ticker",
        "en direct",
        "direct",
        "última hora",
        "ao vivo",
        "na żywo",
        "онлайн",
        "наживо",
        "срочно",
        "терміново",
    }
)


def _norm(segment: str) -> str:
    return " ".join(segment.split()).strip(" .,;:–—-").casefold()


def _suffixes(title: str) -> list[str]:
    """The trailing parts of a title after each separator, shortest first."""
    cuts = [m.start() for m in _SEP.finditer(title)]
    out = []
    for start in reversed(cuts):
        m = _SEP.match(title, start)
        assert m is not None
        tail = title[m.end() :]
        if tail.strip() and len(tail.split()) <= _MAX_AFFIX_WORDS:
            out.append(_norm(tail))
    return out


def _prefix(title: str) -> str | None:
    m = _PREFIX.match(title)
    if m is None or len(m.group(1).split()) > 4:
        return None
    return _norm(m.group(1))


def _site_affixes(site_name: str | None) -> set[str]:
    if not site_name or not site_name.strip():
        return set()
    name = _norm(site_name)
    return {name, name.removeprefix("the ")}


@dataclass
class TitleCleaner:
    """One outlet's learnt prefixes and suffixes (casefolded, whitespace-normalised)."""

    prefixes: set[str] = field(default_factory=set)
    suffixes: set[str] = field(default_factory=set)

    def clean(self, title: str) -> str:
        """The headline without the outlet's boilerplate; the title itself if nothing would be
        left (a title that is only the site name stays as it is)."""
        current = " ".join(title.split())
        for _ in range(4):  # "The Latest: … | Section - Site": a few layers at most
            before = current
            for m in _SEP.finditer(current):  # the earliest match: the longest learnt tail
                if _norm(current[m.end() :]) in self.suffixes and len(current[: m.start()].split()) >= 2:
                    current = current[: m.start()].rstrip()
                    break
            p = _PREFIX.match(current)
            if p is not None:
                label = _norm(p.group(1))
                if (label in self.prefixes or label in _KNOWN_PREFIXES) and len(
                    current[p.end() :].split()
                ) >= 2:
                    current = current[p.end() :].lstrip()
            if current == before:
                break
        return current or title


def learn_cleaners(
    titles: Iterable[tuple[str | None, str | None]],
    site_names: Mapping[str | None, str] | None = None,
    min_count: int = 2,
) -> dict[str | None, TitleCleaner]:
    """Per outlet key, the affixes it repeats: ``titles`` are (outlet, title) pairs.

    A suffix or prefix label is boilerplate when at least ``min_count`` distinct titles of the
    outlet carry it, or when it is the outlet's site name.
    """
    seen: dict[str | None, set[str]] = defaultdict(set)
    suffix_counts: dict[str | None, Counter[str]] = defaultdict(Counter)
    prefix_counts: dict[str | None, Counter[str]] = defaultdict(Counter)
    for key, title in titles:
        if not title:
            continue
        norm = " ".join(title.split())
        if norm in seen[key]:
            continue  # a repeated title (a republication) is not a habit
        seen[key].add(norm)
        suffix_counts[key].update(set(_suffixes(norm)))
        p = _prefix(norm)
        if p:
            prefix_counts[key][p] += 1
    out: dict[str | None, TitleCleaner] = {}
    for key in set(seen) | set(site_names or {}):
        site = _site_affixes((site_names or {}).get(key))
        out[key] = TitleCleaner(
            prefixes={p for p, n in prefix_counts[key].items() if n >= min_count} | site,
            suffixes={s for s, n in suffix_counts[key].items() if n >= min_count} | site,
        )
    return out


def clean_title(title: str | None, cleaner: TitleCleaner | None = None) -> str | None:
    """``title`` without boilerplate: the outlet's learnt affixes, else the known labels only."""
    if title is None:
        return None
    return (cleaner or TitleCleaner()).clean(title)
