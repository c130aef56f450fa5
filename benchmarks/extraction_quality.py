"""Extraction quality gate: pipeline.extract vs plain trafilatura on the fundus test pages.

Run ``python benchmarks/extraction_quality.py [--shared PATH] [--data DIR] [--sets a,b]``; ``PATH``
is the shared directory (default ``../shared`` next to the repository) holding
``data/extraction/fundus``, the development set. ``DIR`` (default ``$NEWSAGG_EXTRACTION_DATA``, else
``/tmp/extdata``) holds public sets from other projects' repositories, each read in place from a
checkout of that repository (never copied into this one):

* ``DIR/readability``: a checkout of github.com/mozilla/readability; ``test/test-pages/*`` are
  130 pages (news, blogs, docs) with Readability.js's expected body (``expected.html``) and metadata.
  Its titles and dates are Readability.js's own output, not a hand label; scored all the same.
* ``DIR/newspaper4k``: a checkout of github.com/AndyTheFactory/newspaper4k; ``tests/data`` holds
  news pages (``html/``) with newspaper's expected text (``txt/``) and metadata (``metadata/``).
* ``DIR/go-trafilatura``: a checkout of github.com/markusmobius/go-trafilatura; ``test-files/
  comparison`` holds trafilatura's comparison pages (multilingual, many news), labelled in
  ``scripts/comparison/data.go`` with snippets the body must contain ("with") and must not
  ("without"), plus hand titles, dates and authors on most pages. Body is scored as trafilatura's
  own evaluation does it: snippet counts over the whole set, F1 of precision and recall.
* ``DIR/CleanPortalEval``: a checkout of github.com/ppke-nlpg/CleanPortalEval; 71 news and blog
  pages of four portals (2013) with hand-cleaned text in CleanEval's format. Body only.

A set whose directory is absent is skipped with a message; without any data the script exits 0,
so CI without the data does not fail.
``--title-holdout`` instead checks whether the title rule generalises: it tunes the votes of
pipeline.extract's title sources on part of the pages and scores them on the rest (half of the
countries against the other half, each publisher against all others; see ``title_holdout``).

Method (the same for every page and every extractor; a field a set does not label is not scored):

* Expected output: ``pages/<json>[parser_version]`` of each ``mapping.json`` row. The expected body
  is the summary paragraphs, then every section headline and paragraph, in page order.
* Body F1: both texts lose invisible format characters (Unicode category Cf: soft hyphen,
  zero-width space), are NFKC-normalised and casefolded, then split into word tokens (runs of
  ``\\w`` characters; each Han, kana character counts as one word because those scripts do not
  separate words with spaces). Shingles are the word 4-grams (a text shorter than 4 words is one
  shingle of all its words). Precision = |extracted ∩ expected| / |extracted| and recall =
  |extracted ∩ expected| / |expected|, counted as multisets (a repeated 4-gram counts as often as
  it occurs in both); F1 = 2PR / (P + R), 0 when either side is empty or extraction failed. The
  figure is the unweighted mean of the per-page F1.
* Title: exact match after dropping Cf characters, NFKC, casefold, folding typographic quotes
  into straight ones (‘ ’ ‚ ‛ to ', “ ” „ ‟ to ") and collapsing whitespace. The quote folding
  is there because fundus copies whichever source its parser reads (often og:title, with
  straight quotes) while the same page's JSON-LD and <h1> may carry typographic ones: one
  headline, typeset two ways. It applies to both extractors alike; « » and other quote
  styles are not folded, nor are dashes or other punctuation.
* Date: correct when the extracted date's calendar day (in the offset the extractor gives it: the
  page's own, for newsagg) equals the expected timestamp's UTC day or the calendar day written in
  the expected string (its local day). trafilatura and htmldate give a day only, compared the same
  way.
* Authors: set equality after the title normalisation of each name; only pages
  whose expected record has an ``authors`` field count (an empty list expects no authors).
  Trafilatura's single author string is split on ";".
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import random
import re
import statistics
import sys
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

DEFAULT_SHARED = REPO.parent / "shared"
FUNDUS = Path("data") / "extraction" / "fundus"

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")


ALL_FIELDS = frozenset({"body", "title", "date", "authors"})


@dataclass(frozen=True)
class Case:
    """One page and what its set says it contains; ``labels`` are the fields the set labels."""

    publisher: str
    url: str
    html_path: Path
    title: str | None
    body: str
    authors: tuple[str, ...] | None  # None: not part of the expected record
    published: str | None
    country: str = ""
    labels: frozenset[str] = ALL_FIELDS
    with_snippets: tuple[str, ...] = ()  # the body must contain these (go-trafilatura set)
    without_snippets: tuple[str, ...] = ()  # and must not contain these

    def html(self) -> bytes:
        raw = self.html_path.read_bytes()
        return gzip.decompress(raw) if self.html_path.suffix == ".gz" else raw


@dataclass(frozen=True)
class Prediction:
    title: str | None
    text: str
    authors: tuple[str, ...]
    published: datetime | date | None


@dataclass
class PageScore:
    case: Case
    f1: float | None
    title_ok: bool | None
    date_ok: bool | None
    authors_ok: bool | None
    error: str | None = None
    snippets: tuple[int, int, int, int] = (0, 0, 0, 0)  # true pos, false neg, true neg, false pos


@dataclass
class Report:
    """Averages over the pages that label each field; ``pages`` keeps the detail."""

    name: str
    body_f1: float | None
    title: float | None
    date: float | None
    authors: float | None
    seconds: float
    pages: list[PageScore] = field(default_factory=list)
    snippet_f1: float | None = None

    def figures(self) -> dict[str, float | None]:
        return {"body_f1": self.body_f1, "title": self.title, "date": self.date, "authors": self.authors}


def data_dir(shared: Path | None = None) -> Path | None:
    """The fundus directory, or None when the shared data is not there."""
    root = Path(shared) if shared is not None else DEFAULT_SHARED
    path = root / FUNDUS
    return path if (path / "mapping.json").is_file() else None


def _expected_body(body: dict) -> str:
    parts: list[str] = list(body.get("summary") or [])
    for section in body.get("sections") or []:
        parts.extend(section.get("headline") or [])
        parts.extend(section.get("paragraphs") or [])
    return "\n".join(parts)


def load_cases(fundus: Path) -> list[Case]:
    rows = json.loads((fundus / "mapping.json").read_text(encoding="utf-8"))
    records: dict[str, dict] = {}
    cases = []
    for row in rows:
        if row["json"] not in records:
            records[row["json"]] = json.loads((fundus / "pages" / row["json"]).read_text(encoding="utf-8"))
        expected = records[row["json"]][row["parser_version"]]
        authors = expected.get("authors")
        cases.append(
            Case(
                publisher=row["publisher"],
                url=row["url"],
                html_path=fundus / "pages" / row["html"],
                title=expected.get("title"),
                body=_expected_body(expected.get("body") or {}),
                authors=tuple(authors) if authors is not None and "authors" in row["fields"] else None,
                published=expected.get("publishing_date"),
                country=row.get("country", ""),
            )
        )
    return cases


# -- public sets -------------------------------------------------------------------------------

DEFAULT_DATA = Path(os.environ.get("NEWSAGG_EXTRACTION_DATA", "/tmp/extdata"))
_BLOCKS = {
    "p",
    "div",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "li",
    "pre",
    "blockquote",
    "tr",
    "br",
    "figcaption",
}


def _html_text(markup: str) -> str:
    """Visible text of an expected-output HTML fragment, one block per line."""
    import lxml.html

    root = lxml.html.fromstring(markup or "<div></div>")
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag in _BLOCKS:
            el.tail = "\n" + (el.tail or "")
    return "\n".join(line.strip() for line in root.text_content().split("\n") if line.strip())


def load_readability(root: Path) -> list[Case]:
    """Mozilla Readability's test pages: body, title, date (where stated) as Readability.js gives them."""
    cases = []
    for page in sorted((root / "test" / "test-pages").iterdir()):
        source, expected = page / "source.html", page / "expected.html"
        if not source.is_file() or not expected.is_file():
            continue
        meta_path = page / "expected-metadata.json"
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
        labels = {"body", "title"} | ({"date"} if meta.get("publishedTime") else set())
        cases.append(
            Case(
                publisher=page.name,
                url=f"http://fakehost/{page.name}/",
                html_path=source,
                title=meta.get("title"),
                body=_html_text(expected.read_text(encoding="utf-8")),
                authors=None,
                published=meta.get("publishedTime"),
                labels=frozenset(labels),
            )
        )
    return cases


def load_newspaper(root: Path) -> list[Case]:
    """newspaper4k's test pages that come with an expected text."""
    data = root / "tests" / "data"
    cases = []
    for html_path in sorted((data / "html").glob("*.html")):
        text_path = data / "txt" / f"{html_path.stem}.txt"
        if not text_path.is_file():
            continue
        meta_path = data / "metadata" / f"{html_path.stem}.json"
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
        labels = {"body"} | {k for k, f in (("title", "title"), ("date", "publish_date")) if meta.get(f)}
        cases.append(
            Case(
                publisher=html_path.stem,
                url=meta.get("url") or f"http://fakehost/{html_path.stem}.html",
                html_path=html_path,
                title=meta.get("title"),
                body=text_path.read_text(encoding="utf-8", errors="replace"),
                authors=None,
                published=meta.get("publish_date"),
                labels=frozenset(labels),
            )
        )
    return cases


_GO_ENTRY = re.compile(r'^\t"((?:[^"\\]|\\.)*)": \{\n(.*?)^\t\},?$', re.MULTILINE | re.DOTALL)
_GO_FIELD = re.compile(r"^\t\t(\w+):\s*(.*?),?$", re.MULTILINE)
_GO_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _go_strings(literal: str) -> list[str]:
    out = []
    for raw in _GO_STRING.findall(literal):
        try:
            out.append(json.loads(f'"{raw}"'))
        except ValueError:
            out.append(raw.replace('\\"', '"'))
    return out


def load_go_trafilatura(root: Path) -> list[Case]:
    """trafilatura's comparison pages with go-trafilatura's labels (snippets, title, date, authors)."""
    source = (root / "scripts" / "comparison" / "data.go").read_text(encoding="utf-8")
    pages = root / "test-files" / "comparison"
    cases = []
    for match in _GO_ENTRY.finditer(source):
        url = _go_strings(f'"{match.group(1)}"')[0]
        fields = dict(_GO_FIELD.findall(match.group(2)))
        names = _go_strings(fields.get("File", ""))
        if not names or not (pages / names[0]).is_file():
            continue
        title = (_go_strings(fields["Title"]) or [None])[0] if "Title" in fields else None
        day = (_go_strings(fields["Date"]) or [None])[0] if "Date" in fields else None
        authors = tuple(_go_strings(fields["Authors"])) if "Authors" in fields else None
        labels = {"snippets"} | {k for k, v in (("title", title), ("date", day), ("authors", authors)) if v}
        cases.append(
            Case(
                publisher=names[0],
                url=url,
                html_path=pages / names[0],
                title=title,
                body="",
                authors=authors,
                published=day,
                labels=frozenset(labels),
                with_snippets=tuple(_go_strings(fields.get("With", ""))),
                without_snippets=tuple(_go_strings(fields.get("Without", ""))),
            )
        )
    return cases


_CLEANEVAL_TAG = re.compile(r"^\s*<(?:h|p|l)>\s*", re.IGNORECASE | re.MULTILINE)


def load_cleanportaleval(root: Path) -> list[Case]:
    """CleanPortalEval's news and blog pages (BBC, MSNBC, WSJ and Washington Post blogs, 2013).

    Gold files are CleanEval text: a ``URL:`` line, then blocks opened by ``<h>``, ``<p>`` or
    ``<l>`` (headings, paragraphs, list items) with HTML entities left escaped. Body only: the
    first heading is usually the headline, but the set does not say so.
    """
    import html as html_lib

    cases = []
    for gold in sorted((root / "GoldStandard").glob("*.txt")):
        source = root / "input" / f"{gold.stem}.html"
        if not source.is_file():
            continue
        text = gold.read_text(encoding="utf-8", errors="replace")
        first, _, rest = text.lstrip("\ufeff \t\r\n").partition("\n")
        url = first[4:].strip() if first.startswith("URL:") else f"http://fakehost/{gold.stem}.html"
        body = html_lib.unescape(_CLEANEVAL_TAG.sub("\n", rest if first.startswith("URL:") else text))
        cases.append(
            Case(
                publisher=gold.stem.rsplit("_", 1)[0],
                url=url,
                html_path=source,
                title=None,
                body="\n".join(line.strip() for line in body.splitlines() if line.strip()),
                authors=None,
                published=None,
                labels=frozenset({"body"}),
            )
        )
    return cases


SETS: dict[str, tuple[str, Callable[[Path], list[Case]]]] = {
    "readability": ("readability", load_readability),
    "newspaper4k": ("newspaper4k", load_newspaper),
    "go-trafilatura": ("go-trafilatura", load_go_trafilatura),
    "cleanportaleval": ("CleanPortalEval", load_cleanportaleval),
}


# -- metrics -----------------------------------------------------------------------------------

_INVISIBLE = dict.fromkeys(i for i in range(0x10000) if unicodedata.category(chr(i)) == "Cf")


_QUOTES = str.maketrans("‘’‚‛“”„‟", "''''\"\"\"\"")


def _norm(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text.translate(_INVISIBLE)).casefold()
    return " ".join(folded.translate(_QUOTES).split())


def shingles(text: str, n: int = 4) -> Counter[tuple[str, ...]]:
    tokens = _TOKEN.findall(unicodedata.normalize("NFKC", text.translate(_INVISIBLE)).casefold())
    if not tokens:
        return Counter()
    if len(tokens) < n:
        return Counter([tuple(tokens)])
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def body_f1(extracted: str, expected: str) -> float:
    got, want = shingles(extracted), shingles(expected)
    if not got or not want:
        return 0.0
    common = sum((got & want).values())
    if not common:
        return 0.0
    precision = common / sum(got.values())
    recall = common / sum(want.values())
    return 2 * precision * recall / (precision + recall)


def title_ok(extracted: str | None, expected: str | None) -> bool:
    if not expected:
        return not extracted
    return extracted is not None and _norm(extracted) == _norm(expected)


def date_ok(extracted: datetime | date | None, expected: str | None) -> bool:
    if expected is None:
        return extracted is None
    if extracted is None:
        return False
    try:
        want = datetime.fromisoformat(expected.replace("Z", "+00:00"))
    except ValueError:
        return False
    days = {want.date()}
    if want.tzinfo is not None:
        days.add(want.astimezone(UTC).date())
    got = extracted.date() if isinstance(extracted, datetime) else extracted
    return got in days


def authors_ok(extracted: Iterable[str], expected: tuple[str, ...] | None) -> bool | None:
    if expected is None:
        return None
    return {_norm(a) for a in extracted if _norm(a)} == {_norm(a) for a in expected if _norm(a)}


def snippet_counts(extracted: str, case: Case) -> tuple[int, int, int, int]:
    """trafilatura's evaluation: (true pos, false neg, true neg, false pos) over the snippets."""
    text = " ".join(extracted.split())
    found = [" ".join(s.split()) in text for s in case.with_snippets]
    leaked = [" ".join(s.split()) in text for s in case.without_snippets]
    return sum(found), len(found) - sum(found), len(leaked) - sum(leaked), sum(leaked)


def score(
    case: Case, pred: Prediction | None, error: str | None = None, fields: frozenset[str] = ALL_FIELDS
) -> PageScore:
    labels = case.labels & fields
    p = pred or Prediction(None, "", (), None)
    return PageScore(
        case,
        (body_f1(p.text, case.body) if pred else 0.0) if "body" in labels else None,
        title_ok(p.title, case.title) if "title" in labels else None,
        date_ok(p.published, case.published) if "date" in labels else None,
        authors_ok(p.authors, case.authors) if "authors" in labels else None,
        error,
        snippet_counts(p.text, case) if "snippets" in labels else (0, 0, 0, 0),
    )


# -- extractors --------------------------------------------------------------------------------

Runner = Callable[[list[Case]], Iterator[tuple[Case, Prediction | None, str | None]]]


def run_newsagg(cases: list[Case], workers: int = 0) -> Iterator[tuple[Case, Prediction | None, str | None]]:
    """pipeline.extract over every page (through extract_many, which calls extract per page)."""
    from pipeline.errors import ExtractionError, NoBodyError
    from pipeline.extract import Extracted, extract_many

    by_index = dict(enumerate(cases))
    items = ((i, c.html(), c.url) for i, c in by_index.items())
    for i, result in extract_many(items, workers=workers):
        if isinstance(result, NoBodyError) and isinstance(result.partial, Extracted):
            result = result.partial  # no body, but the title and date it found still count
        if isinstance(result, ExtractionError):
            yield by_index[i], None, str(result)
        else:
            yield (
                by_index[i],
                Prediction(result.title, result.text, result.authors, result.published_at),
                None,
            )


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value[:10]) if value else None
    except ValueError:
        return None


def run_trafilatura(cases: list[Case]) -> Iterator[tuple[Case, Prediction | None, str | None]]:
    """The baseline: plain trafilatura.extract with metadata, one process."""
    import trafilatura

    for case in cases:
        out = trafilatura.extract(case.html(), url=case.url, with_metadata=True, output_format="json")
        if not out:
            yield case, None, "trafilatura returned nothing"
            continue
        doc = json.loads(out)
        authors = tuple(a.strip() for a in (doc.get("author") or "").split(";") if a.strip())
        yield case, Prediction(doc.get("title"), doc.get("text") or "", authors, _day(doc.get("date"))), None


def run_readability(cases: list[Case]) -> Iterator[tuple[Case, Prediction | None, str | None]]:
    """readability-lxml (the ``bench`` extra): body and title; it finds no date or author."""
    import logging

    from readability import Document

    from pipeline.extract import decode_html

    logging.getLogger("readability").setLevel(logging.CRITICAL)  # it logs every page it gives up on
    for case in cases:
        try:
            doc = Document(decode_html(case.html()), url=case.url)
            text = _html_text(doc.summary(html_partial=True))
            title = doc.short_title() or None
        except Exception as exc:  # a page it cannot read scores zero, like an empty result
            yield case, None, f"readability failed: {type(exc).__name__}"
            continue
        yield case, Prediction(title, text, (), None), None


def run_htmldate(cases: list[Case]) -> Iterator[tuple[Case, Prediction | None, str | None]]:
    """htmldate alone (its defaults, original date preferred): dates only."""
    from htmldate import find_date

    for case in cases:
        try:
            found = find_date(case.html(), url=case.url, original_date=True)
        except Exception as exc:
            yield case, None, f"htmldate failed: {type(exc).__name__}"
            continue
        yield case, Prediction(None, "", (), _day(found)), None


RUNNERS: dict[str, tuple[Runner, frozenset[str]]] = {
    "newsagg": (run_newsagg, ALL_FIELDS | {"snippets"}),
    "trafilatura": (run_trafilatura, ALL_FIELDS | {"snippets"}),
    "readability": (run_readability, frozenset({"body", "title", "snippets"})),
    "htmldate": (run_htmldate, frozenset({"date"})),
}


def _mean(values: Iterable[float | bool | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return statistics.fmean(present) if present else None


def evaluate(
    shared: Path | None = None, extractor: str = "newsagg", cases: list[Case] | None = None
) -> Report:
    """Score one extractor (a key of RUNNERS) on ``cases``, by default the fundus pages.

    Raises FileNotFoundError when the shared data is absent (callers decide whether to skip).
    """
    if cases is None:
        fundus = data_dir(shared)
        if fundus is None:
            raise FileNotFoundError(f"fundus data not found under {shared or DEFAULT_SHARED}")
        cases = load_cases(fundus)
    runner, fields = RUNNERS[extractor]
    start = time.perf_counter()
    pages = [score(case, pred, err, fields) for case, pred, err in runner(cases)]
    seconds = time.perf_counter() - start
    tp, fn, tn, fp = (sum(p.snippets[i] for p in pages) for i in range(4))
    snippet_f1 = None
    if "snippets" in fields and tp + fn + tn + fp:
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        snippet_f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Report(
        name=extractor,
        body_f1=_mean(p.f1 for p in pages),
        title=_mean(p.title_ok for p in pages),
        date=_mean(p.date_ok for p in pages),
        authors=_mean(p.authors_ok for p in pages),
        seconds=seconds,
        pages=pages,
        snippet_f1=snippet_f1,
    )


# -- title rule hold-out ----------------------------------------------------------------------


def _title_sources(case: Case) -> list[str | None]:
    """The title candidates pipeline.extract chooses from, for one page."""
    from pipeline.extract import charset, jsonld, page, titles

    tree = page.parse_html(charset.to_utf8(case.html(), None))
    meta = jsonld.meta_values(tree)
    articles = [n for n in jsonld.jsonld_nodes(tree) if jsonld.jsonld_types(n) & jsonld.ARTICLE_TYPES]
    return titles.title_sources(tree, meta, jsonld.main_article(articles, case.url), case.url)


def title_holdout(cases: list[Case], splits: int = 200, seed: int = 1) -> dict[str, float]:
    """Does the title rule generalise beyond the pages it was chosen on?

    The rule is a vote per title source (see pipeline.extract.titles.pick_title). Every vote vector in
    {-1, 0, 1, 2}^5 is scored on every page; then the votes are tuned (best total, ties
    averaged) on one part of the pages and scored on the rest: half of the countries against
    the other half (``splits`` random halvings, both ways round), and each publisher against
    all the others. The held-out figures are what to expect on publishers the rule never saw.
    """
    from pipeline.extract import titles as ex

    grid = list(itertools.product((-1, 0, 1, 2), repeat=len(ex.TITLE_SOURCE_VOTES)))
    sources = [_title_sources(case) for case in cases]
    hits = [
        [title_ok(ex.pick_title(src, votes), case.title) for src, case in zip(sources, cases, strict=True)]
        for votes in grid
    ]

    def held_out(train: list[int], test: list[int]) -> float:
        totals = [sum(row[i] for i in train) for row in hits]
        best = [row for row, total in zip(hits, totals, strict=True) if total == max(totals)]
        return statistics.fmean(statistics.fmean(row[i] for i in test) for row in best)

    rng = random.Random(seed)
    countries = sorted({case.country for case in cases})
    halves = []
    for _ in range(splits):
        chosen = set(rng.sample(countries, len(countries) // 2))
        one = [i for i, case in enumerate(cases) if case.country in chosen]
        other = [i for i, case in enumerate(cases) if case.country not in chosen]
        halves += [held_out(one, other), held_out(other, one)]
    publishers = sorted({case.publisher for case in cases})
    by_publisher = 0.0
    for publisher in publishers:
        test = [i for i, case in enumerate(cases) if case.publisher == publisher]
        train = [i for i, case in enumerate(cases) if case.publisher != publisher]
        by_publisher += held_out(train, test) * len(test)
    shipped = hits[grid.index(tuple(ex.TITLE_SOURCE_VOTES))]
    return {
        "shipped": statistics.fmean(shipped),
        "one_vote_each": statistics.fmean(hits[grid.index((1,) * len(grid[0]))]),
        "best_in_sample": max(statistics.fmean(row) for row in hits),
        "country_halves": statistics.fmean(halves),
        "leave_publisher_out": by_publisher / len(cases),
    }


# -- report ------------------------------------------------------------------------------------


def _print_worst(report: Report, publishers: int) -> None:
    grouped: dict[str, list[PageScore]] = defaultdict(list)
    for page in report.pages:
        grouped[page.case.publisher].append(page)

    def badness(pages: list[PageScore]) -> float:
        return statistics.fmean((p.f1 or 0) + bool(p.title_ok) + bool(p.date_ok) for p in pages)

    print(f"\nworst publishers ({report.name}; F1, title/date/authors ok, url):")
    for publisher, pages in sorted(grouped.items(), key=lambda kv: badness(kv[1]))[:publishers]:
        print(f"  {publisher}")
        for p in sorted(pages, key=lambda p: p.f1 or 0):
            flags = "".join(
                "+" if ok else ("." if ok is None else "-") for ok in (p.title_ok, p.date_ok, p.authors_ok)
            )
            note = f"  [{p.error}]" if p.error else ""
            print(f"    {p.f1 or 0:5.3f} {flags} {p.case.url}{note}")


def _cell(value: float | None) -> str:
    return f"{value:8.3f}" if value is not None else f"{'-':>8}"


def _print_table(title: str, reports: list[Report]) -> None:
    print(title)
    columns = " ".join(f"{c:>8}" for c in ("body F1", "snippets", "title", "date", "authors"))
    print(f"{'extractor':<12} {columns} {'secs':>7}")
    for r in reports:
        cells = " ".join(_cell(v) for v in (r.body_f1, r.snippet_f1, r.title, r.date, r.authors))
        print(f"{r.name:<12} {cells} {r.seconds:7.1f}")


def _print_title_holdout(cases: list[Case]) -> None:
    figures = title_holdout(cases)
    print(f"title rule on {len(cases)} pages (votes {{-1,0,1,2}}^5 per source):")
    print(f"  shipped votes, all pages:                     {figures['shipped']:.3f}")
    print(f"  one vote per source, all pages (untuned):     {figures['one_vote_each']:.3f}")
    print(f"  best votes, all pages (in-sample):            {figures['best_in_sample']:.3f}")
    print(f"  tuned on half the countries, other half:      {figures['country_halves']:.3f}")
    print(f"  tuned without a publisher, on that publisher: {figures['leave_publisher_out']:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shared", type=Path, default=None, help=f"shared directory (default {DEFAULT_SHARED})"
    )
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help=f"public sets' checkouts (default {DEFAULT_DATA})"
    )
    parser.add_argument("--sets", default=",".join(["fundus", *SETS]), help="comma-separated, default all")
    parser.add_argument(
        "--extractors", default=",".join(RUNNERS), help=f"comma-separated, of {', '.join(RUNNERS)}"
    )
    parser.add_argument("--worst", type=int, default=15, help="publishers to list (default 15)")
    parser.add_argument("--no-baseline", action="store_true", help="newsagg only")
    parser.add_argument(
        "--title-holdout",
        action="store_true",
        help="only check how the title rule generalises on fundus (see title_holdout)",
    )
    args = parser.parse_args(argv)
    extractors = ["newsagg"] if args.no_baseline else args.extractors.split(",")
    wanted = args.sets.split(",")

    fundus = data_dir(args.shared)
    missing_fundus = f"no fundus data at {(args.shared or DEFAULT_SHARED) / FUNDUS} (pass --shared PATH)"
    if args.title_holdout:
        if fundus is None:
            print(f"skipped: {missing_fundus}")
        else:
            _print_title_holdout(load_cases(fundus))
        return 0
    sets: list[tuple[str, list[Case]]] = []
    if "fundus" in wanted:
        if fundus is None:
            print(f"skipped fundus: {missing_fundus}")
        else:
            sets.append((f"fundus: {fundus}", load_cases(fundus)))
    for name, (subdir, loader) in SETS.items():
        if name not in wanted:
            continue
        root = args.data / subdir
        if not root.is_dir():
            print(f"skipped {name}: no checkout at {root} (pass --data DIR)")
            continue
        sets.append((f"{name}: {root}", loader(root)))
    for title, cases in sets:
        reports = [evaluate(extractor=name, cases=cases) for name in extractors]
        print()
        _print_table(f"{title} ({len(cases)} pages)", reports)
        for r in reports:
            if args.worst and r.name in ("newsagg", "trafilatura"):
                _print_worst(r, args.worst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
