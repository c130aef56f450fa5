"""One whole pipeline run, as ``newsagg run`` does it: discover, fetch, clean, dedup.

The DAG calls the same stage functions one task at a time; this module only sequences them and
builds the summary.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipeline.clean import clean_pending
from pipeline.context import Context
from pipeline.dedup import dedup
from pipeline.extract.core import ExtractStats
from pipeline.health import SourceHealth, crawl_progress, drops_since, record_run
from pipeline.ingest import fetch_pending, pull_feed
from pipeline.models import Source
from pipeline.progress import Progress
from pipeline.store.core import now
from pipeline.summary import format_summary

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    sources_ok: list[str] = field(default_factory=list)
    sources_failed: dict[str, str] = field(default_factory=dict)
    feed_warnings: dict[str, str] = field(default_factory=dict)
    discovered: int = 0
    fetch: Counter[str] = field(default_factory=Counter)
    articles: Counter[str] = field(default_factory=Counter)
    drops: dict[str, str] = field(default_factory=dict)
    stories: Counter[str] = field(default_factory=Counter)
    crawl_stats: dict[str, Any] = field(default_factory=dict)
    extraction: ExtractStats = field(default_factory=ExtractStats)
    health: list[SourceHealth] = field(default_factory=list)

    @property
    def nothing_done(self) -> bool:
        return bool(self.sources_failed) and not self.sources_ok

    def lines(self) -> list[str]:
        return format_summary(self, self.health)


def run_pipeline(
    ctx: Context, sources: Sequence[Source], since: datetime | None = None, progress: Progress | None = None
) -> RunSummary:
    progress = progress or Progress(enabled=False)
    summary = RunSummary()
    with ctx.store.run_lock():
        started = now()
        feeds = [s for s in sources if s.kind == "rss"]
        crawled = [s for s in sources if s.kind != "rss"]
        with progress.stage("feeds", len(feeds)) as bar:
            for source in feeds:
                outcome = pull_feed(ctx, source, since)
                if outcome.ok:
                    summary.sources_ok.append(source.name)
                    if outcome.error:
                        summary.feed_warnings[source.name] = outcome.error
                else:
                    summary.sources_failed[source.name] = outcome.error or "failed"
                summary.discovered += outcome.new + outcome.requeued
                bar.advance()
        if crawled:
            with (
                progress.stage("crawl") as bar,
                progress.watch(bar, crawl_progress(ctx.store, crawled, started)),
            ):
                crawl_sources(ctx, crawled, since, summary)
        with progress.stage("fetch") as bar:
            last = [0]

            def fetched(done: int, total: int) -> None:
                bar.total(total)
                bar.advance(done - last[0])
                last[0] = done

            # Crawled sources fetch their own articles under Scrapy's robots.txt rules; what
            # they leave pending waits for their next crawl.
            fetch = fetch_pending(ctx, feeds, on_progress=fetched)
        ctx.close_http()  # clean and dedup need no sockets; see Context.close_http
        summary.fetch.update(fetch.counts)
        summary.drops.update(fetch.failures)
        with progress.stage("clean") as bar:
            cleaned = clean_pending(ctx, sources, on_progress=bar.advance)
        summary.articles.update(cleaned.counts)
        summary.articles["dropped"] += fetch.counts.get("failed", 0) + fetch.counts.get("dropped", 0)
        summary.drops.update(cleaned.drops)
        summary.extraction.add(cleaned.extraction)
        with progress.stage("dedup") as bar:
            result = dedup(ctx)
            bar.advance(result.articles)
        summary.stories.update(result.stories)
        summary.drops.update(drops_since(ctx.store, started))
        summary.health = record_run(ctx.store, sources, started, summary.sources_failed)
    return summary


def crawl_sources(
    ctx: Context, sources: Sequence[Source], since: datetime | None, summary: RunSummary
) -> None:
    """Sitemap and section-page sources go through the Scrapy crawl (in a subprocess)."""
    from pipeline.crawl import run_crawl

    result = run_crawl(ctx.settings, sources, since)
    summary.crawl_stats = result.stats
    for name in result.ok:
        summary.sources_ok.append(name)
    summary.sources_failed.update(result.failed)
    summary.discovered += result.discovered
