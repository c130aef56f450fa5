"""The clean stage: stored raw pages to articles, in batches, on every core.

Works only from the store, so it can be re-run (``force``) after an extractor upgrade without
fetching anything again. One pool of extraction workers serves the whole stage while this
process reads the next pages and writes the finished ones, so the cores stay on trafilatura.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pipeline.context import Context
from pipeline.errors import ExtractionError
from pipeline.extract import Extracted, ExtractStats, extract_many
from pipeline.models import Article, Source, content_hash_for
from pipeline.store.core import StoredPage, unpack, url_hints
from pipeline.timeutil import now

log = logging.getLogger(__name__)

ARRIVAL_POLL_S = 0.5  # while pages are still being fetched: how often to look for new ones,
ARRIVAL_POLL_MAX_S = 2.0  # backing off to this while none come
ARRIVAL_WINDOW = timedelta(seconds=30)  # "stored lately": a write commits within this of its stamp

Hint = tuple[str | None, datetime | None]  # the feed's title and date for a URL


@dataclass
class CleanOutcome:
    counts: Counter[str] = field(default_factory=Counter)  # new / updated / unchanged / dropped
    drops: dict[str, str] = field(default_factory=dict)
    last_url: str = ""
    extraction: ExtractStats = field(default_factory=ExtractStats)  # CPU time, all workers

    def merge(self, other: CleanOutcome) -> None:
        self.counts.update(other.counts)
        self.drops.update(other.drops)
        self.last_url = max(self.last_url, other.last_url)
        self.extraction.add(other.extraction)


def clean_batch(
    ctx: Context,
    sources: Sequence[Source] | None = None,
    after_url: str = "",
    limit: int | None = None,
    force: bool = False,
) -> CleanOutcome:
    """Clean up to ``limit`` pages after ``after_url`` (URL order): one transaction."""
    names = [s.name for s in sources] if sources is not None else None
    size = limit or ctx.settings.clean_batch_size
    batch = ctx.store.pages_to_clean(names, limit=size, after_url=after_url, force=force)
    return _clean(ctx, sources, _with_hints(ctx, [batch]), write_every=max(1, len(batch)))


def clean_pending(
    ctx: Context,
    sources: Sequence[Source] | None = None,
    force: bool = False,
    on_progress: Callable[[int], None] | None = None,
    producing: Callable[[], bool] | None = None,
) -> CleanOutcome:
    """Every page that needs cleaning; one transaction per ``clean_batch_size`` pages.

    With ``producing`` (true while fetchers may still store pages), pages are cleaned as they
    arrive and the stage ends once producing is over and every page stored by then is clean.
    """
    names = [s.name for s in sources] if sources is not None else None
    size = ctx.settings.clean_batch_size

    def batches() -> Iterator[list[StoredPage]]:
        after = ""
        while batch := ctx.store.pages_to_clean(names, limit=size, after_url=after, force=force):
            yield batch
            after = batch[-1].url

    if producing is None:
        return _clean(ctx, sources, _with_hints(ctx, batches()), write_every=size, on_progress=on_progress)
    sent: set[tuple[str, str]] = set()  # (url, body hash) handed to the extractors already

    def fresh(batch: Sequence[StoredPage]) -> list[StoredPage]:
        new = [p for p in batch if (p.url, p.body_sha256) not in sent]
        sent.update((p.url, p.body_sha256) for p in new)
        return new

    def arriving() -> Iterator[list[StoredPage]]:
        # While pages arrive, only those stored lately are looked at (keys first, bodies for the
        # new ones): a full pass reads every unclean body. One full pass at the start finds what
        # an earlier run left; one at the end, once nothing more can arrive, finds anything the
        # lately-stored window missed (a write that committed long after it was stamped).
        for batch in batches():
            if new := fresh(batch):
                yield new
        pause = ARRIVAL_POLL_S
        while producing():
            since = now() - ARRIVAL_WINDOW
            keys = [k for k in ctx.store.page_keys_fetched_since(since, names) if k not in sent]
            for start in range(0, len(keys), size):
                if new := fresh(ctx.store.pages_by_url([url for url, _ in keys[start : start + size]])):
                    yield new
            sent.update(keys)  # asked once per body, even if its row went away meanwhile
            # each look is a scan of the pages table: pace them even while pages flow in
            pause = ARRIVAL_POLL_S if keys else min(ARRIVAL_POLL_MAX_S, pause * 2)
            time.sleep(pause)
        for batch in batches():
            if new := fresh(batch):
                yield new

    return _clean(ctx, sources, _with_hints(ctx, arriving()), write_every=size, on_progress=on_progress)


def _with_hints(ctx: Context, batches: Iterable[list[StoredPage]]) -> Iterator[tuple[StoredPage, Hint]]:
    for batch in batches:
        hints = url_hints(ctx.store, [p.url for p in batch])
        for page in batch:
            yield page, hints.get(page.url, (None, None))


def _clean(
    ctx: Context,
    sources: Sequence[Source] | None,
    pages: Iterable[tuple[StoredPage, Hint]],
    write_every: int,
    on_progress: Callable[[int], None] | None = None,
) -> CleanOutcome:
    """Extract ``pages`` (read lazily) in one pool; write each ``write_every`` in one transaction.

    A crash loses at most the unwritten batch: its pages are not marked cleaned, so the next
    run cleans them again.
    """
    languages = {s.name: s.language for s in sources or ()}
    total = CleanOutcome()
    done: list[tuple[StoredPage, Hint, Extracted | ExtractionError]] = []
    items = (((page, hint), page.body_gz, page.final_url, page.charset) for page, hint in pages)
    for (page, hint), result in extract_many(
        items, workers=ctx.settings.extract_workers, stats=total.extraction, unpack=unpack
    ):
        done.append((page, hint, result))
        if len(done) >= write_every:
            _write(ctx, done, languages, total, on_progress)
            done = []
    if done:
        _write(ctx, done, languages, total, on_progress)
    return total


def _write(
    ctx: Context,
    done: Sequence[tuple[StoredPage, Hint, Extracted | ExtractionError]],
    languages: dict[str, str | None],
    total: CleanOutcome,
    on_progress: Callable[[int], None] | None,
) -> None:
    store = ctx.store
    outcome = CleanOutcome()
    cleaned: list[Article] = []
    with store.begin() as conn:
        for page, hint, result in done:
            outcome.last_url = max(outcome.last_url, page.url)
            # A page without a body stays a drop, title and date or not: an article with no text
            # would reach dedup and consumers (a bot wall's "Just a moment..." as a story), and the
            # drop is what source health counts.
            if isinstance(result, ExtractionError):
                reason = f"cannot clean: {result}"
                store.record_drop(conn, page.url, page.source, "clean", reason)
                outcome.counts["dropped"] += 1
                outcome.drops[page.url] = reason
            else:
                cleaned.append(to_article(page, result, hint, languages.get(page.source)))
        outcome.counts.update(store.upsert_articles(conn, cleaned))
        store.clear_drops(conn, [a.url for a in cleaned])
        store.mark_cleaned(conn, [(p.url, p.body_sha256) for p, _, _ in done])
    total.merge(outcome)
    if on_progress:
        on_progress(len(done))


def to_article(page: StoredPage, extracted: Extracted, hint: Hint, source_language: str | None) -> Article:
    hint_title, hint_published = hint
    return Article(
        url=page.url,
        source=page.source,
        title=extracted.title or hint_title,
        authors=extracted.authors,
        published_at=extracted.published_at or hint_published,
        language=extracted.language or source_language,
        text=extracted.text,
        # no body (title and date only): hashing "" would make such pages copies of each other
        content_hash=content_hash_for(extracted.text or page.url),
        fetched_at=page.fetched_at,
        live_blog=extracted.live_blog,
    )
