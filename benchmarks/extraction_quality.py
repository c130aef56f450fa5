"""Extraction quality gate: pipeline.extract vs plain trafilatura on the fundus test pages.

Run ``python benchmarks/extraction_quality.py [--shared PATH]``; ``PATH`` is the shared directory
(default ``../shared`` next to the repository) holding ``data/extraction/fundus``. The data is read
in place. Without it the script says so and exits 0, so CI without the data set does not fail.
``--title-holdout`` instead checks whether the title rule generalises: it tunes the votes of
pipeline.extract's title sources on part of the pages and scores them on the rest (half of the
countries against the other half, each publisher against all others; see ``title_holdout``).

Method (the same for every page and both extractors):

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
* Date: correct when the extracted date, read as a UTC day, equals the expected timestamp's UTC
  day or the calendar day written in the expected string (its local day). The baseline gives a
  day only, compared the same way.
* Authors: set equality after the title normalisation of each name; only pages
  whose expected record has an ``authors`` field count (an empty list expects no authors).
  Trafilatura's single author string is split on ";".
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
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
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEFAULT_SHARED = REPO.parent / "shared"
FUNDUS = Path("data") / "extraction" / "fundus"

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")


@dataclass(frozen=True)
class Case:
    """One page and what fundus says it contains."""

    publisher: str
    url: str
    html_path: Path
    title: str | None
    body: str
    authors: tuple[str, ...] | None  # None: not part of the expected record
    published: str | None
    country: str = ""

    def html(self) -> bytes:
        return gzip.decompress(self.html_path.read_bytes())


@dataclass(frozen=True)
class Prediction:
    title: str | None
    text: str
    authors: tuple[str, ...]
    published: datetime | date | None


@dataclass
class PageScore:
    case: Case
    f1: float
    title_ok: bool
    date_ok: bool
    authors_ok: bool | None
    error: str | None = None


@dataclass
class Report:
    """Averages over pages; ``pages`` keeps the detail for the worst-page listing."""

    name: str
    body_f1: float
    title: float
    date: float
    authors: float
    seconds: float
    pages: list[PageScore] = field(default_factory=list)

    def figures(self) -> dict[str, float]:
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
    want = datetime.fromisoformat(expected)
    days = {want.date()}
    if want.tzinfo is not None:
        days.add(want.astimezone(UTC).date())
    if isinstance(extracted, datetime):
        got = (extracted.astimezone(UTC) if extracted.tzinfo else extracted).date()
    else:
        got = extracted
    return got in days


def authors_ok(extracted: Iterable[str], expected: tuple[str, ...] | None) -> bool | None:
    if expected is None:
        return None
    return {_norm(a) for a in extracted if _norm(a)} == {_norm(a) for a in expected if _norm(a)}


def score(case: Case, pred: Prediction | None, error: str | None = None) -> PageScore:
    if pred is None:
        return PageScore(
            case,
            0.0,
            title_ok(None, case.title),
            date_ok(None, case.published),
            authors_ok((), case.authors),
            error,
        )
    return PageScore(
        case,
        body_f1(pred.text, case.body),
        title_ok(pred.title, case.title),
        date_ok(pred.published, case.published),
        authors_ok(pred.authors, case.authors),
    )


# -- extractors --------------------------------------------------------------------------------

Runner = Callable[[list[Case]], Iterator[tuple[Case, Prediction | None, str | None]]]


def run_newsagg(cases: list[Case], workers: int = 0) -> Iterator[tuple[Case, Prediction | None, str | None]]:
    """pipeline.extract over every page (through extract_many, which calls extract per page)."""
    from pipeline.errors import ExtractionError
    from pipeline.extract import extract_many

    by_index = dict(enumerate(cases))
    items = ((i, c.html(), c.url) for i, c in by_index.items())
    for i, result in extract_many(items, workers=workers):
        if isinstance(result, ExtractionError):
            yield by_index[i], None, str(result)
        else:
            yield (
                by_index[i],
                Prediction(result.title, result.text, result.authors, result.published_at),
                None,
            )


def run_trafilatura(cases: list[Case]) -> Iterator[tuple[Case, Prediction | None, str | None]]:
    """The baseline: plain trafilatura.extract with metadata, one process."""
    import trafilatura

    for case in cases:
        out = trafilatura.extract(case.html(), url=case.url, with_metadata=True, output_format="json")
        if not out:
            yield case, None, "trafilatura returned nothing"
            continue
        doc = json.loads(out)
        day = None
        if doc.get("date"):
            try:
                day = date.fromisoformat(doc["date"][:10])
            except ValueError:
                day = None
        authors = tuple(a.strip() for a in (doc.get("author") or "").split(";") if a.strip())
        yield case, Prediction(doc.get("title"), doc.get("text") or "", authors, day), None


def evaluate(
    shared: Path | None = None, extractor: str = "newsagg", cases: list[Case] | None = None
) -> Report:
    """Score one extractor ("newsagg" or "trafilatura") on the fundus pages.

    Raises FileNotFoundError when the shared data is absent (callers decide whether to skip).
    """
    if cases is None:
        fundus = data_dir(shared)
        if fundus is None:
            raise FileNotFoundError(f"fundus data not found under {shared or DEFAULT_SHARED}")
        cases = load_cases(fundus)
    runner: Runner = run_newsagg if extractor == "newsagg" else run_trafilatura
    start = time.perf_counter()
    pages = [score(case, pred, err) for case, pred, err in runner(cases)]
    seconds = time.perf_counter() - start
    with_authors = [p.authors_ok for p in pages if p.authors_ok is not None]
    return Report(
        name=extractor,
        body_f1=statistics.fmean(p.f1 for p in pages),
        title=statistics.fmean(p.title_ok for p in pages),
        date=statistics.fmean(p.date_ok for p in pages),
        authors=statistics.fmean(with_authors) if with_authors else 0.0,
        seconds=seconds,
        pages=pages,
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
        return statistics.fmean(p.f1 + p.title_ok + p.date_ok for p in pages)

    print(f"\nworst publishers ({report.name}; F1, title/date/authors ok, url):")
    for publisher, pages in sorted(grouped.items(), key=lambda kv: badness(kv[1]))[:publishers]:
        print(f"  {publisher}")
        for p in sorted(pages, key=lambda p: p.f1):
            flags = "".join(
                "+" if ok else ("." if ok is None else "-") for ok in (p.title_ok, p.date_ok, p.authors_ok)
            )
            note = f"  [{p.error}]" if p.error else ""
            print(f"    {p.f1:5.3f} {flags} {p.case.url}{note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shared", type=Path, default=None, help=f"shared directory (default {DEFAULT_SHARED})"
    )
    parser.add_argument("--worst", type=int, default=15, help="publishers to list (default 15)")
    parser.add_argument("--no-baseline", action="store_true", help="skip plain trafilatura")
    parser.add_argument(
        "--title-holdout",
        action="store_true",
        help="only check how the title rule generalises (see title_holdout)",
    )
    args = parser.parse_args(argv)

    fundus = data_dir(args.shared)
    if fundus is None:
        print(f"skipped: no fundus data at {(args.shared or DEFAULT_SHARED) / FUNDUS} (pass --shared PATH)")
        return 0
    cases = load_cases(fundus)
    if args.title_holdout:
        figures = title_holdout(cases)
        print(f"title rule on {len(cases)} pages (votes {{-1,0,1,2}}^5 per source):")
        print(f"  shipped votes, all pages:                     {figures['shipped']:.3f}")
        print(f"  one vote per source, all pages (untuned):     {figures['one_vote_each']:.3f}")
        print(f"  best votes, all pages (in-sample):            {figures['best_in_sample']:.3f}")
        print(f"  tuned on half the countries, other half:      {figures['country_halves']:.3f}")
        print(f"  tuned without a publisher, on that publisher: {figures['leave_publisher_out']:.3f}")
        return 0
    reports = [evaluate(extractor="newsagg", cases=cases)]
    if not args.no_baseline:
        reports.append(evaluate(extractor="trafilatura", cases=cases))
    print(f"{len(cases)} pages from {len({c.publisher for c in cases})} publishers in {fundus}")
    print(f"{'extractor':<12} {'body F1':>8} {'title':>8} {'date':>8} {'authors':>8} {'secs':>7}")
    for r in reports:
        print(f"{r.name:<12} {r.body_f1:8.3f} {r.title:8.3f} {r.date:8.3f} {r.authors:8.3f} {r.seconds:7.1f}")
    for r in reports:
        _print_worst(r, args.worst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
