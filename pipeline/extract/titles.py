"""The single-page title choice: the headline among the page's title sources."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urljoin, urlsplit

import lxml.etree
import lxml.html

from pipeline.extract.jsonld import first_meta, jsonld_str
from pipeline.extract.text import CJK, alnum_key, one_line

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


_SEGMENT_BREAK = re.compile(r"\s+[-|–—·•:»«~/*]+\s+|\s*[|｜]\s*|_+")
_DOMAIN = re.compile(r"^[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|info|biz|co|[a-z]{2})$", re.IGNORECASE)
_HOST_NOISE = {"www", "com", "net", "org", "co", "uk", "de", "fr", "html", "info", "news", "m", "amp"}
_MAX_LABEL_WORDS = 4
_MAX_LINK_LABEL_WORDS = 2
_SITE_AFFIX = 4  # letters around a host label in a site's name: "Die FURCHE" at furche.at
_MIN_LETTERS = 4
# Page chrome that some layouts put in an <h1> (a menu button, a skip link, the nav's heading):
# never a headline, however short.
_CHROME_WORDS = frozenset(
    {"menu", "menü", "navigation", "navigation und service", "sections", "page", "search", "suche"}
)
_SITE_IN_PARENS = re.compile(r"\s*\(([^()]{3,60})\)\s*$")
_ARCHIVE_SEGMENTS = frozenset({"blogarchive", "blogarchiv"})
_CHROME_MARKS = ("menu", "nav", "toggle", "skip", "logo", "sitename", "site-name", "site-title")


def _site_keys(sites: Sequence[str], url: str | None) -> tuple[set[str], set[str]]:
    """(keys of the site's names and of its section in the URL's first path segment, the labels
    of its host name): letters and digits only."""
    keys = {alnum_key(site) for site in sites} - {""}
    parts = urlsplit(url) if url else None
    host = (parts.hostname or "") if parts else ""
    labels = {part for part in host.lower().split(".") if len(part) >= 3 and part not in _HOST_NOISE}
    section = (parts.path if parts else "").strip("/").split("/", 1)[0]
    if section.isalpha() and len(section) >= 3:
        keys.add(section.lower())
    return keys | labels, labels


def _site_like(segment: str, keys: set[str], host_labels: set[str]) -> bool:
    """A title segment that names the site: one of its names, its domain, a host label's stem."""
    key = alnum_key(segment)
    if not key:
        return True
    if key in keys or _DOMAIN.match(segment.strip()):
        return True
    return len(key) >= 5 and any(
        label.startswith(key) or (label in key and len(key) - len(label) <= _SITE_AFFIX)
        for label in host_labels
    )


def strip_site_segments(title: str, keys: set[str], host_labels: set[str]) -> str:
    """Drop leading and trailing title segments that name the site ("Headline - Belfast Telegraph",
    "Headline_English_Xinhua"), compared on letters and digits against the site's names and host."""
    named = _SITE_IN_PARENS.search(title)
    if named and named.start() and _site_like(named.group(1), keys, host_labels):
        title = title[: named.start()]  # "Headline (neues deutschland)"
    breaks = list(_SEGMENT_BREAK.finditer(title))
    if not breaks:
        return title
    bounds = [0, *(pos for m in breaks for pos in (m.start(), m.end())), len(title)]
    segments = [(bounds[i], bounds[i + 1]) for i in range(0, len(bounds), 2)]
    first, last = 0, len(segments) - 1
    while last > first and _site_like(title[slice(*segments[last])], keys, host_labels):
        last -= 1
    while first < last and _site_like(title[slice(*segments[first])], keys, host_labels):
        first += 1
    stripped = title[segments[first][0] : segments[last][1]].strip()
    return stripped or title


def _label_checker(
    tree: lxml.html.HtmlElement, url: str | None, keys: set[str], host_labels: set[str]
) -> Callable[[str], bool]:
    """A test for text that labels a section or the site rather than heads an article.

    A label is short and is one of: the site's name or domain ("TimesLeader.com"); mostly not
    letters ("10°C"); or, in one or two words, the whole text of a link to another page
    ("Sport", "More News": navigation; a link to the page itself is its headline). A single
    word alone is no label: on the public test pages one-word headlines are common.
    Links are read only when a two-word candidate needs them.
    """
    links: set[str] | None = None
    here = urlsplit(url).path.rstrip("/") if url else ""

    def is_label(text: str) -> bool:
        nonlocal links
        words = text.split()
        if len(words) > _MAX_LABEL_WORDS or len(CJK.findall(text)) >= 6:
            return False
        if " ".join(words).casefold() in _CHROME_WORDS:
            return True
        if sum(ch.isalpha() for ch in text) < _MIN_LETTERS or _site_like(text, keys, host_labels):
            return True
        if len(words) > _MAX_LINK_LABEL_WORDS:
            return False
        if links is None:
            links = {
                alnum_key(a.text_content())
                for a in tree.iter("a")
                if len(a.text_content().split()) <= _MAX_LINK_LABEL_WORDS
                and urlsplit(urljoin(url or "", a.get("href") or "")).path.rstrip("/") != here
            }
        return alnum_key(text) in links

    return is_label


def _headline_element(
    tree: lxml.html.HtmlElement,
    clean: Callable[[str | None], str | None],
    is_label: Callable[[str], bool],
    page_title: str | None,
) -> str | None:
    """The page's headline element: the first ``<h1>`` that is no label;
    else a lower heading whose text is a segment of the ``<title>`` (old layouts put the logo
    or the section's name in the ``<h1>``)."""
    first: str | None = None
    for h1 in tree.iter("h1"):
        marks = f"{h1.get('class') or ''} {h1.get('id') or ''}".casefold()
        if any(mark in marks for mark in _CHROME_MARKS):
            continue  # the menu button or the site's name, styled as the page's top heading
        text = clean(h1.text_content())
        if text and not is_label(text):
            return text
        first = first or text
    if page_title:
        segments = {alnum_key(page_title)} | {alnum_key(seg) for seg in _SEGMENT_BREAK.split(page_title)}
        segments.discard("")
        for heading in tree.iter("h2", "h3", "h4"):
            text = clean(heading.text_content())
            if text and alnum_key(text) in segments and not is_label(text):
                return text
    return first


_QUOTE_MARKS = "\"'“”„«»‘’‚"
_MIN_HEADING_WORDS = 3


def _untruncated(title: str | None, candidates: Sequence[str | None]) -> str | None:
    """A title cut at a quote mark (``content="Biden de "unfit""`` ends at the second quote)
    is replaced by the candidate it begins that goes on with the quotation."""
    if not title:
        return title
    for other in candidates:
        if other and len(other) > len(title) and other.startswith(title):
            rest = other[len(title) :].lstrip()
            if rest[:1] in _QUOTE_MARKS:
                return other
    return title


def _first_heading(
    tree: lxml.html.HtmlElement, clean: Callable[[str | None], str | None], is_label: Callable[[str], bool]
) -> str | None:
    """The first ``<h2>`` of three words or more that is no label: the headline of a page whose
    every title source is a label ("Home", the site's name)."""
    for heading in tree.iter("h2"):
        text = clean(heading.text_content())
        if text and len(text.split()) >= _MIN_HEADING_WORDS and not is_label(text):
            return text
    return None


def title_sources(
    tree: lxml.html.HtmlElement, meta: dict[str, list[str]], article: dict[str, Any] | None, url: str | None
) -> list[str | None]:
    """The title candidates in the order of TITLE_SOURCE_VOTES, site names stripped.

    Candidates that are section or site labels are left out when any other candidate remains,
    so a page with a candidate never goes without a title.
    """
    sites = _site_names(meta, article, url)
    keys, host_labels = _site_keys(sites, url)
    title_el = next(tree.iter("title"), None)
    raw_title = one_line(title_el.text_content()) if title_el is not None else None
    if raw_title:  # "Site » Blog Archive » Headline": the trail names the site, as segments to
        # strip from every title source and as a label for the site's logo in the <h1>
        segments = [alnum_key(seg) for seg in _SEGMENT_BREAK.split(raw_title)]
        archive = [i for i, key in enumerate(segments) if key in _ARCHIVE_SEGMENTS]
        keys |= {key for key in segments[: archive[-1] + 1] if key} if archive else set()
    is_label = _label_checker(tree, url, keys, host_labels)

    def clean(title: str | None) -> str | None:
        cleaned = one_line(title)
        if not cleaned:
            return None
        return strip_site_segments(strip_site_name(cleaned, sites), keys, host_labels)

    page_title = clean(title_el.text_content()) if title_el is not None else None
    candidates = [
        clean(jsonld_str(article.get("headline"))) if article else None,
        clean(first_meta(meta, "og:title")),
        _headline_element(tree, clean, is_label, page_title),
        clean(first_meta(meta, "twitter:title")),
        page_title,
    ]
    candidates = [_untruncated(c, candidates) for c in candidates]
    kept = [c if c and not is_label(c) else None for c in candidates]
    if any(kept):
        return kept
    heading = _first_heading(tree, clean, is_label)
    return [None, None, heading, None, None] if heading else candidates
