"""The clean stage: stored raw pages to articles, in batches, on every core.

Works only from the store, so it can be re-run (``force``) after an extractor upgrade without
fetching anything again.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pipeline.context import Context
from pipeline.errors import ExtractionError
from pipeline.extract import Extracted, extract_many
from pipeline.models import Article, Source, content_hash_for
from pipeline.store import StoredPage, url_hints

log = logging.getLogger(__name__)


@dataclass
class CleanOutcome:
    counts: Counter[str] = field(default_factory=Counter)  # new / updated / unchanged / dropped
    drops: dict[str, str] = field(default_factory=dict)
    last_url: str = ""

    def merge(self, other: CleanOutcome) -> None:
        self.counts.update(other.counts)
        self.drops.update(other.drops)
        self.last_url = max(self.last_url, other.last_url)


def clean_batch(ctx: Context, sources: Sequence[Source] | None = None, after_url: str = "",
                limit: int | None = None, force: bool = False) -> CleanOutcome:
    """Clean up to ``limit`` pages after ``after_url`` (URL order): one transaction."""
    names = [s.name for s in sources] if sources is not None else None
    languages = {s.name: s.language for s in sources or ()}
    size = limit or ctx.settings.clean_batch_size
    batch = ctx.store.pages_to_clean(names, limit=size, after_url=after_url, force=force)
    outcome = CleanOutcome()
    if not batch:
        return outcome
    hints = url_hints(ctx.store, [p.url for p in batch])
    by_url = {p.url: p for p in batch}
    results = extract_many(((p.url, p.body, p.final_url) for p in batch),
                           workers=ctx.settings.extract_workers)
    with ctx.store.begin() as conn:
        for url, result in results:
            page = by_url[url]
            outcome.last_url = max(outcome.last_url, url)
            if isinstance(result, ExtractionError):
                reason = f"cannot clean: {result}"
                ctx.store.record_drop(conn, url, page.source, "clean", reason)
                outcome.counts["dropped"] += 1
                outcome.drops[url] = reason
            else:
                article = to_article(page, result, hints.get(url, (None, None)),
                                     languages.get(page.source))
                outcome.counts[ctx.store.upsert_article(conn, article)] += 1
                ctx.store.clear_drop(conn, url)
            ctx.store.mark_cleaned(conn, url, page.body_sha256)
    return outcome


def clean_pending(ctx: Context, sources: Sequence[Source] | None = None, force: bool = False,
                  on_progress: Callable[[int], None] | None = None) -> CleanOutcome:
    total = CleanOutcome()
    after = ""
    while True:
        outcome = clean_batch(ctx, sources, after_url=after, force=force)
        if not outcome.last_url:
            return total
        total.merge(outcome)
        after = outcome.last_url
        if on_progress:
            on_progress(sum(outcome.counts.values()))


def to_article(page: StoredPage, extracted: Extracted,
               hint: tuple[str | None, object], source_language: str | None) -> Article:
    hint_title, hint_published = hint
    published = extracted.published_at
    if published is None and hint_published is not None:
        published = hint_published  # type: ignore[assignment]
    return Article(url=page.url, source=page.source, title=extracted.title or hint_title,
                   authors=extracted.authors, published_at=published,
                   language=extracted.language or source_language, text=extracted.text,
                   content_hash=content_hash_for(extracted.text), fetched_at=page.fetched_at)
