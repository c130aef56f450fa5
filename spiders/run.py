"""The crawl's own process: ``python -m spiders.run JOB.json RESULT.json``.

Started by :func:`pipeline.crawl.run_crawl`, since Twisted's reactor runs once per process.
Settings come from the environment (``spiders.settings`` reads them like every newsagg entry
point), the sources and ``since`` from the job file. Each source is its own crawl; sources on
the same host run one after the other (Scrapy's per-host limits hold within one crawl only),
different hosts at once. The result file gets each source's outcome and Scrapy's stats summed
over the crawls.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from scrapy.crawler import AsyncCrawlerProcess, Crawler
from scrapy.settings import Settings as ScrapySettings

from pipeline.config import load_settings
from pipeline.context import Context, open_context
from pipeline.models import Source
from pipeline.net.client import fetch_concurrency
from pipeline.proc import die_with_parent
from spiders.news import SectionSpider, SitemapSpider, SourceSpider

SPIDERS: dict[str, type[SourceSpider]] = {"sitemap": SitemapSpider, "html": SectionSpider}


def scrapy_settings(overrides: dict[str, Any] | None = None) -> ScrapySettings:
    """The pinned settings, with ``run_crawl``'s overrides on top (benchmarks and tests); a
    dict override such as DOWNLOADER_MIDDLEWARES changes only the entries it names."""
    settings = ScrapySettings()
    settings.setmodule("spiders.settings", priority="project")
    for key, value in (overrides or {}).items():
        if isinstance(value, dict):
            value = {**settings.getdict(key), **value}
        settings.set(key, value, priority="cmdline")
    return settings


def merge_stats(per_crawl: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One flat stats dict: counters summed, peaks maxed, the run's first start and last
    finish, and finish reasons joined when the crawls ended differently."""
    merged: dict[str, Any] = {}
    reasons: list[str] = []
    for stats in per_crawl:
        for key, value in stats.items():
            if key == "finish_reason":
                reasons.append(str(value))
            elif isinstance(value, datetime):
                if key not in merged:
                    merged[key] = value
                else:
                    merged[key] = min(merged[key], value) if key == "start_time" else max(merged[key], value)
            elif isinstance(value, int | float) and not isinstance(value, bool):
                before = merged.get(key)
                if not isinstance(before, int | float):
                    merged[key] = value
                elif key.startswith("memusage/") or key.endswith("_max"):  # levels, not counts
                    merged[key] = max(before, value)
                else:
                    merged[key] = before + value
            else:
                merged.setdefault(key, value)
    if reasons:
        merged["finish_reason"] = ", ".join(sorted(set(reasons)))
    if "start_time" in merged and "finish_time" in merged:
        merged["elapsed_time_seconds"] = (merged["finish_time"] - merged["start_time"]).total_seconds()
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in sorted(merged.items())}


def crawl(
    sources: Sequence[Source], since: datetime | None, ctx: Context, settings: ScrapySettings
) -> dict[str, Any]:
    process = AsyncCrawlerProcess(settings)
    outcomes: dict[str, dict[str, Any]] = {}
    stats: list[dict[str, Any]] = []

    async def crawl_source(source: Source) -> None:
        spider_class = SPIDERS.get(source.kind)
        if spider_class is None:
            outcomes[source.name] = {"error": f"kind {source.kind!r} is not crawled", "discovered": 0}
            return
        crawler: Crawler = process.create_crawler(spider_class)
        try:
            await process.crawl(crawler, source=source, ctx=ctx, since=since)
        except Exception as exc:
            outcomes[source.name] = {
                "error": f"the crawler failed: {type(exc).__name__}: {exc}",
                "discovered": 0,
            }
            return
        spider = crawler.spider
        assert isinstance(spider, SourceSpider)
        outcomes[source.name] = {"error": spider.error, "discovered": spider.discovered}
        stats.append(crawler.stats.get_stats())

    # each host's crawl keeps its connections open until it ends: at most this many at once,
    # so descriptors follow the concurrency, not the number of crawled hosts
    hosts_at_once = asyncio.Semaphore(fetch_concurrency(ctx.settings))

    async def crawl_host(group: list[Source]) -> None:
        async with hosts_at_once:
            for source in group:
                await crawl_source(source)

    async def crawl_all() -> None:
        from twisted.internet import reactor

        by_host: dict[str, list[Source]] = defaultdict(list)
        for source in sources:
            by_host[urlsplit(source.url).netloc.lower()].append(source)
        try:
            await asyncio.gather(*(crawl_host(group) for group in by_host.values()))
        finally:
            with contextlib.suppress(RuntimeError):  # already stopping (a signal)
                reactor.stop()  # type: ignore[misc]  # twisted types the global reactor loosely

    asyncio.get_event_loop().create_task(crawl_all())
    process.start(stop_after_crawl=False)
    return {"sources": outcomes, "stats": merge_stats(stats)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spiders.run", description=__doc__)
    parser.add_argument("job", type=Path, help="JSON: sources, since, scrapy_settings")
    parser.add_argument("result", type=Path, help="where the JSON outcome is written")
    args = parser.parse_args(argv)
    job = json.loads(args.job.read_text(encoding="utf-8"))
    if job.get("parent_pid"):  # killed with the parent: no crawl writing outside the run's lock
        die_with_parent(int(job["parent_pid"]), job.get("cleanup", ()))
    sources = [Source(**entry) for entry in job["sources"]]
    since = datetime.fromisoformat(job["since"]) if job.get("since") else None
    settings = scrapy_settings(job.get("scrapy_settings"))
    with open_context(load_settings()) as ctx:  # migrates: idempotent, and safe to run first
        ctx.store.follow_run_lock(job.get("run_lock_token"))  # writes only while the parent's run holds it
        result = crawl(sources, since, ctx, settings)
    args.result.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
