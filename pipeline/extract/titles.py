"""The single-page title choice: the headline among the page's title sources."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import lxml.etree
import lxml.html

from pipeline.extract.jsonld import first_meta, jsonld_str
from pipeline.extract.text import CJK, one_line

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
    return [n for n in (one_line(n) for n in names) if n]


def strip_site_name(title: str, sites: Sequence[str]) -> str:
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
    if len(headline.split()) < 2 and len(CJK.findall(headline)) < 6:
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
# twitter:title, <title>. See pick_title.
TITLE_SOURCE_VOTES = (1, 1, 0, 0, -1)


def pick_title(candidates: Sequence[str | None], votes: Sequence[int] = TITLE_SOURCE_VOTES) -> str | None:
    """The headline among the title sources, given in the order of TITLE_SOURCE_VOTES.

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


def title_sources(
    tree: lxml.html.HtmlElement, meta: dict[str, list[str]], article: dict[str, Any] | None, url: str | None
) -> list[str | None]:
    """The title candidates in the order of TITLE_SOURCE_VOTES, site names stripped."""
    sites = _site_names(meta, article, url)

    def clean(title: str | None) -> str | None:
        cleaned = one_line(title)
        return strip_site_name(cleaned, sites) if cleaned else None

    h1 = next(tree.iter("h1"), None)
    title_el = next(tree.iter("title"), None)
    return [
        clean(jsonld_str(article.get("headline"))) if article else None,
        clean(first_meta(meta, "og:title")),
        clean(h1.text_content()) if h1 is not None else None,
        clean(first_meta(meta, "twitter:title")),
        clean(title_el.text_content()) if title_el is not None else None,
    ]
