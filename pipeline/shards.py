"""Shards of the source registry: the unit of work the DAG maps over, and how one is fetched.

One task per source pays a process start, imports and an API round trip for a fetch that takes
milliseconds, and Airflow refuses a mapping over ``max_map_length`` (1,024) items. A shard is a
group of sources picked by a stable hash of their host, so every source of one host lands in the
same shard whatever the registry's order or size. Within a run a host is then only ever fetched
by one task, one process and one HTTP client, whose per-host spacing is the politeness rule: two
Celery workers never fetch one host at once. (Article pages on a host other than their feed's
are the exception: they follow their feed's shard.)
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pipeline.context import Context
from pipeline.errors import ConfigError, NewsaggError
from pipeline.models import Source

log = logging.getLogger(__name__)

# Well under Airflow's max_map_length (1,024), and more shards than that buy nothing: past a
# few per worker slot, each only adds a task's start-up.
MAX_SHARDS = 256


def host_of(url: str) -> str:
    """The politeness key a shard is chosen by: the URL's host name, lower case, without port."""
    return (urlsplit(url).hostname or "").lower().rstrip(".")


def shard_of(url: str, count: int) -> int:
    """A stable shard number for the URL's host: the same on every machine and every run."""
    digest = hashlib.blake2b(host_of(url).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


def check_count(count: int) -> int:
    if not 1 <= count <= MAX_SHARDS:
        raise ConfigError(f"shard_count must be from 1 to {MAX_SHARDS}, got {count}")
    return count


@dataclass(frozen=True)
class Shard:
    index: int
    sources: tuple[str, ...]

    @property
    def label(self) -> str:
        """How the shard's mapped task is labelled in the UI: its number and first sources."""
        names = ", ".join(self.sources[:3])
        more = f" +{len(self.sources) - 3}" if len(self.sources) > 3 else ""
        return f"shard {self.index}: {names}{more}"

    def as_dict(self) -> dict[str, Any]:
        return {"shard": self.index, "sources": list(self.sources), "label": self.label}


def plan_shards(sources: Sequence[Source], count: int) -> list[Shard]:
    """The non-empty shards for these sources, in shard order, sources in registry order."""
    check_count(count)
    groups: dict[int, list[str]] = {}
    for source in sources:
        groups.setdefault(shard_of(source.url, count), []).append(source.name)
    return [Shard(index, tuple(names)) for index, names in sorted(groups.items())]


@dataclass
class SourceResult:
    """One source's share of a run, as the shard's summary and the run's summary show it."""

    name: str
    kind: str
    ok: bool = True
    error: str | None = None
    warning: str | None = None
    discovered: int = 0
    fetched: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "ok": self.ok, "discovered": self.discovered}
        out.update(fetched=self.fetched, failed=self.failed)
        if self.error:
            out["error"] = self.error[:300]
        if self.warning:
            out["warning"] = self.warning[:300]
        return out


@dataclass
class ShardResult:
    sources: dict[str, SourceResult] = field(default_factory=dict)
    fetch: Counter[str] = field(default_factory=Counter)
    cleaned: Counter[str] = field(default_factory=Counter)  # articles new / updated / dropped ...
    crawl_requests: int = 0

    @property
    def failed(self) -> dict[str, str]:
        return {n: r.error or "failed" for n, r in self.sources.items() if not r.ok}


def fetch_shard(ctx: Context, sources: Sequence[Source], since: datetime | None = None) -> ShardResult:
    """Discover, fetch and clean one shard's sources at once, as ``newsagg run`` does for the
    whole registry (see :func:`pipeline.run.gather`): pages are cleaned while the shard's hosts
    are still being fetched, so the run's clean tasks only pick up what is left. A source's own
    fault is recorded in its result and never stops the others; only a store or configuration
    fault raises."""
    from pipeline.net.client import check_url
    from pipeline.run import gather

    result = ShardResult()
    usable: list[Source] = []
    for source in sources:
        entry = result.sources[source.name] = SourceResult(source.name, source.kind)
        try:  # a refused URL (private address, bad scheme) is not fetched at all
            check_url(source.url, allow_private=ctx.settings.allow_private_network)
        except NewsaggError as exc:
            entry.ok, entry.error = False, f"refused: {exc}"
            continue
        usable.append(source)
    if not usable:
        return result
    gathered = gather(ctx, usable, since)
    fetched = gathered.fetch
    for outcome in fetched.feeds:
        entry = result.sources[outcome.source]
        entry.ok, entry.discovered = outcome.ok, outcome.new + outcome.requeued
        if outcome.ok:
            entry.warning = outcome.error
        else:
            entry.error = outcome.error or "feed failed"
    for name, entry in result.sources.items():
        entry.fetched += fetched.fetched_by_source[name]
        entry.failed += fetched.failed_by_source[name]
    result.fetch.update(fetched.counts)
    result.cleaned.update(gathered.cleaned.counts)
    crawl = gathered.crawl
    if crawl is not None:
        crawled = [s for s in usable if s.kind != "rss"]
        result.crawl_requests = int((crawl.stats or {}).get("downloader/request_count", 0) or 0)
        for source in crawled:
            entry = result.sources[source.name]
            if source.name in crawl.failed or source.name not in crawl.ok:
                entry.ok, entry.error = False, crawl.failed.get(source.name, "crawl failed")
        if len(crawled) == 1:  # the crawl counts discoveries per run, not per source
            result.sources[crawled[0].name].discovered = crawl.discovered
    return result
