"""One whole pipeline run, as ``newsagg run`` does it: discover, fetch, clean, dedup.

The DAG calls the same stage functions one task at a time; this module runs them at once (the
store is the hand-off) and builds the summary.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pipeline.clean import CleanOutcome, clean_pending
from pipeline.context import Context
from pipeline.dedup import dedup
from pipeline.extract import ExtractStats
from pipeline.health import SourceHealth, drops_since, record_run
from pipeline.ingest import FetchOutcome, fetch_sources
from pipeline.models import Source
from pipeline.progress import Progress
from pipeline.summary import format_summary
from pipeline.timeutil import now

if TYPE_CHECKING:
    from pipeline.crawl import CrawlResult

T = TypeVar("T")

log = logging.getLogger(__name__)
stage_log = logging.getLogger("newsagg")  # where Progress logs its stages


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
    """Fetch, crawl and clean at once, then dedup.

    Feed hosts are fetched in threads (each host at its delay), the crawl runs in its child
    process, and this thread cleans pages as they land in the store; dedup starts once the last
    page is clean. The store stays the hand-off between stages, as in the DAG's tasks, so a
    killed run resumes from what was committed.
    """
    progress = progress or Progress(enabled=False)
    summary = RunSummary()
    with ctx.store.run_lock():
        started = now()
        gathered = gather(ctx, sources, since, progress)
        fetch, cleaned = gathered.fetch, gathered.cleaned
        for outcome in fetch.feeds:
            if outcome.ok:
                summary.sources_ok.append(outcome.source)
                if outcome.error:
                    summary.feed_warnings[outcome.source] = outcome.error
            else:
                summary.sources_failed[outcome.source] = outcome.error or "failed"
            summary.discovered += outcome.new + outcome.requeued
        if gathered.crawl is not None:
            add_crawl(summary, gathered.crawl)
        summary.fetch.update(fetch.counts)
        summary.drops.update(fetch.failures)
        summary.articles.update(cleaned.counts)
        summary.articles["dropped"] += fetch.counts.get("failed", 0) + fetch.counts.get("dropped", 0)
        summary.drops.update(cleaned.drops)
        summary.extraction.add(cleaned.extraction)
        with progress.stage("dedup") as bar:
            deduped = dedup(ctx)
            bar.advance(deduped.articles)
        summary.stories.update(deduped.stories)
        summary.drops.update(drops_since(ctx.store, started))
        summary.health = record_run(ctx.store, sources, started, summary.sources_failed)
    return summary


@dataclass
class Gathered:
    """What one pass of fetch, crawl and clean did (``crawl`` is None without crawled sources)."""

    fetch: FetchOutcome
    crawl: CrawlResult | None
    cleaned: CleanOutcome


def gather(
    ctx: Context, sources: Sequence[Source], since: datetime | None = None, progress: Progress | None = None
) -> Gathered:
    """Fetch, crawl and clean ``sources`` at once: ``newsagg run`` before its dedup, and one
    Airflow fetch shard. The caller holds the run lock where it needs one."""
    progress = progress or Progress(enabled=False)
    feeds = [s for s in sources if s.kind == "rss"]
    crawled = [s for s in sources if s.kind != "rss"]
    preload_extractor()
    fetched = _Producer("fetch", lambda: _fetch(ctx, feeds, since))
    crawl = _Producer("crawl", lambda: run_crawl_result(ctx, crawled, since)) if crawled else None
    producers: list[_Producer[Any]] = [p for p in (fetched, crawl) if p is not None]
    for producer in producers:
        producer.start()
    try:
        with progress.stage("clean") as bar:
            cleaned = clean_pending(
                ctx,
                sources,
                on_progress=bar.advance,
                producing=lambda: any(p.running for p in producers),
            )
    except BaseException:
        # Ctrl-C or a failed clean: the producers are daemon threads and the crawl child
        # dies with this process, so nothing waits for a slow host before the exit.
        ctx.close_http()
        raise
    for producer in producers:
        producer.join()
    ctx.close_http()
    return Gathered(fetched.result(), crawl.result() if crawl is not None else None, cleaned)


def _fetch(ctx: Context, feeds: Sequence[Source], since: datetime | None) -> FetchOutcome:
    # "<stage>: started" marks where a run is, for logs and the crash-safety test's kill points
    stage_log.info("feeds: started")
    stage_log.info("fetch: started")
    # Crawled sources fetch their own articles under Scrapy's robots.txt rules; what they
    # leave pending waits for their next crawl.
    return fetch_sources(ctx, feeds, since)


class _Producer(Generic[T]):
    """A stage that stores pages in a thread while this one cleans; its error is re-raised."""

    def __init__(self, name: str, work: Callable[[], T]) -> None:
        self.name = name
        self._work = work
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            self._value = self._work()
        except BaseException as exc:
            self._error = exc

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self) -> None:
        self._thread.join()

    def result(self) -> T:
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


def preload_extractor() -> None:
    """Extraction workers start from a forkserver once fetch threads exist (forking a threaded
    process is unsafe); preloading the extractor there lets each worker inherit it instead of
    importing trafilatura again."""
    with contextlib.suppress(ValueError):  # no forkserver on this platform: spawn is used
        multiprocessing.get_context("forkserver").set_forkserver_preload(["pipeline.extract"])


def run_crawl_result(ctx: Context, sources: Sequence[Source], since: datetime | None) -> CrawlResult:
    from pipeline.crawl import run_crawl

    return run_crawl(ctx.settings, sources, since, run_lock_token=ctx.store.run_lock_token)


def add_crawl(summary: RunSummary, result: CrawlResult) -> None:
    summary.crawl_stats = result.stats
    for name in result.ok:
        summary.sources_ok.append(name)
    summary.sources_failed.update(result.failed)
    summary.discovered += result.discovered


def crawl_sources(
    ctx: Context, sources: Sequence[Source], since: datetime | None, summary: RunSummary
) -> None:
    """Sitemap and section-page sources go through the Scrapy crawl (in a subprocess)."""
    add_crawl(summary, run_crawl_result(ctx, sources, since))
