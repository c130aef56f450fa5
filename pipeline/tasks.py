"""The DAG's task bodies: JSON in, JSON out, each wrapping the stage functions the CLI uses.

Airflow stays out of :mod:`pipeline`: the DAG file resolves the run's context (params, the
previous successful run, an optional Airflow Connection) into plain values, calls one function
here, and turns :class:`~pipeline.errors.NewsaggError` into Airflow's retry-or-fail decision.
Every function builds its own :class:`~pipeline.config.Settings` through ``load_settings`` (so the
store, registry and private-network switch are exactly what the CLI reads) and opens the store per
call, because each Airflow task is its own process. Results hold source names, page URLs (the
store's ids) and counts only: XCom never carries page bodies or article text.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.config import Settings, load_settings
from pipeline.context import Context, open_context
from pipeline.errors import ConfigError, FetchError
from pipeline.models import Source

log = logging.getLogger(__name__)

CRAWL_KINDS = ("sitemap", "html")
# Feeds list articles a while after their publication time; re-reading this much before the last
# successful run costs nothing (the frontier skips known URLs) and loses no late entries.
SINCE_OVERLAP = timedelta(hours=6)
PARAM_KEYS = frozenset({"sources", "since", "recluster", "dry_run"})
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


# -- configuration --------------------------------------------------------------------------------


def settings(store_fallback: str | None = None) -> Settings:
    """The CLI's settings; ``store_fallback`` (an Airflow Connection's URI) only fills a store URL
    that no file or environment variable gives, so the CLI and the DAG never disagree on one."""
    current = load_settings()
    if not current.store_url and store_fallback:
        current = load_settings({"store_url": store_fallback})
    return current


@contextmanager
def _context(store_fallback: str | None) -> Iterator[Context]:
    with open_context(settings(store_fallback)) as ctx:
        yield ctx


def _registry(config: Settings) -> list[Source]:
    from pipeline.sources import load_registry

    return load_registry(config.sources)


def _chosen(config: Settings, names: Sequence[str]) -> list[Source]:
    """The named sources, re-read from the registry (tasks get names, never Source objects)."""
    from pipeline.sources import select

    chosen = select(_registry(config), list(names))
    if not chosen and names:
        raise ConfigError(f"source(s) {', '.join(names)} are disabled in the registry")
    return chosen


def _one(config: Settings, name: str, kinds: Sequence[str]) -> Source:
    source = _chosen(config, [name])[0]
    if source.kind not in kinds:
        raise ConfigError(f"source {name!r} is a {source.kind} source, not {'/'.join(kinds)}")
    return source


def _refuse_early(config: Settings, source: Source) -> None:
    """The SSRF guard on the source's own URL before any work: a refusal (a private address
    without the switch, a bad scheme) is a :class:`RefusedError` no retry can fix, whereas the
    stage would only record it and the task would retry in vain."""
    from pipeline.net.client import check_url

    check_url(source.url, allow_private=config.allow_private_network)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    from pipeline.cli import parse_since as cli_parse_since

    return cli_parse_since(value)


# -- load and validate ----------------------------------------------------------------------------


def validate_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Check a run's params without touching anything, so a bad trigger fails before any work.

    The DAG's Param schemas already reject most of this in the trigger form; this repeats it for
    ``dags test``, the REST API with validation off, and callers outside Airflow."""
    unknown = sorted(set(params) - PARAM_KEYS)
    if unknown:
        raise ConfigError(f"unknown param(s): {', '.join(unknown)}")
    names = params.get("sources") or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"param 'sources' must be a list of source names, got {names!r}")
    bad = [n for n in names if not _NAME.match(n)]
    if bad:
        raise ConfigError(f"param 'sources': not a source name: {', '.join(map(repr, bad))}")
    since = params.get("since")
    if since in ("", None):
        since = None
    elif not isinstance(since, str):
        raise ConfigError(f"param 'since' must be an ISO date, got {since!r}")
    else:
        try:
            parsed = parse_since(since)
        except ConfigError:
            raise ConfigError(f"param 'since': not an ISO date or datetime: {since!r}") from None
        assert parsed is not None
        if parsed > datetime.now(UTC) + timedelta(days=1):
            raise ConfigError(f"param 'since' is in the future: {since!r}")
        since = _iso(parsed)
    flags = {}
    for key in ("recluster", "dry_run"):
        value = params.get(key, False)
        if not isinstance(value, bool):
            raise ConfigError(f"param {key!r} must be true or false, got {value!r}")
        flags[key] = value
    return {"sources": list(dict.fromkeys(names)), "since": since, **flags}


def resolve_since(param: str | None, previous_success: datetime | None) -> str | None:
    """The run's ``since``: the param if given, else shortly before the last successful run
    (so a rerun of one logical date sees the same window), else none (first run: everything)."""
    if param:
        return param
    if previous_success is None:
        return None
    if previous_success.tzinfo is None:
        previous_success = previous_success.replace(tzinfo=UTC)
    return _iso(previous_success - SINCE_OVERLAP)


def load_sources(
    names: Sequence[str] | None = None, store_fallback: str | None = None
) -> dict[str, list[str]]:
    """Enabled source names by kind; unknown names or an empty selection are config errors."""
    from pipeline.sources import select

    config = settings(store_fallback)
    chosen = select(_registry(config), list(names or []))
    if not chosen:
        raise ConfigError("no enabled sources selected" + (f" among {', '.join(names)}" if names else ""))
    by_kind: dict[str, list[str]] = {"rss": [], "sitemap": [], "html": []}
    for source in chosen:
        by_kind.setdefault(source.kind, []).append(source.name)
    return by_kind


def prepare_run(
    params: Mapping[str, Any], previous_success: datetime | None = None, store_fallback: str | None = None
) -> dict[str, Any]:
    """Validate the params, the registry and the store URL, fix ``since``, and bring the store's
    schema up to date once, before mapped tasks open it concurrently.

    A dry run stops short of the store and plans no source work, so every later task skips."""
    checked = validate_params(params)
    by_kind = load_sources(checked["sources"], store_fallback)
    config = settings(store_fallback)
    rss, crawl = by_kind["rss"], by_kind["sitemap"] + by_kind["html"]
    plan = {
        "sources": rss + crawl,
        "rss": [] if checked["dry_run"] else rss,
        "crawl": [] if checked["dry_run"] else crawl,
        "since": resolve_since(checked["since"], previous_success),
        "recluster": checked["recluster"],
        "dry_run": checked["dry_run"],
    }
    if checked["dry_run"]:
        where = safe_store_url(config.resolved_store_url)
    else:
        with open_context(config) as ctx:  # migrates
            where = ctx.store.safe_url
    log.info(
        "%s: feeds %s, crawls %s, since %s, recluster %s, store %s",
        "dry run, would run" if checked["dry_run"] else "run plan",
        rss or "none",
        crawl or "none",
        plan["since"] or "(no limit)",
        plan["recluster"],
        where,
    )
    return plan


def safe_store_url(url: str) -> str:
    """The store URL, checked as the store would check it, with any password hidden."""
    from pipeline.store.core import Store

    return Store.parse_url(url).render_as_string(hide_password=True)


# -- discover and fetch ---------------------------------------------------------------------------


def pull_feed(name: str, since: str | None = None, store_fallback: str | None = None) -> dict[str, Any]:
    """One feed source: the feed, then its pending article pages (as ``newsagg run`` does).

    A feed that could not be read raises FetchError after its pending pages are fetched, so the
    task is retried with backoff while what could be done is already stored."""
    from pipeline.ingest import fetch_pending
    from pipeline.ingest import pull_feed as pull

    with _context(store_fallback) as ctx:
        source = _one(ctx.settings, name, ("rss",))
        _refuse_early(ctx.settings, source)
        outcome = pull(ctx, source, parse_since(since))
        if outcome.error and outcome.ok:
            log.warning(
                "source %s: malformed feed, kept %d entries: %s", name, outcome.entries, outcome.error
            )
        fetched = fetch_pending(ctx, [source])
    for url, reason in sorted(fetched.failures.items()):
        log.warning("source %s: %s: %s", name, url, reason)
    if not outcome.ok:
        raise FetchError(f"source {name}: {outcome.error or 'feed failed'}", url=source.url)
    return {
        "source": name,
        "entries": outcome.entries,
        "new": outcome.new,
        "requeued": outcome.requeued,
        "not_modified": outcome.not_modified,
        "fetched": dict(sorted(fetched.counts.items())),
    }


def crawl_source(name: str, since: str | None = None, store_fallback: str | None = None) -> dict[str, Any]:
    """One sitemap or section-page source through the Scrapy crawl, then anything it left
    pending; a failed crawl raises FetchError (retryable) once the rest is stored."""
    from pipeline.crawl import run_crawl
    from pipeline.ingest import fetch_pending

    with _context(store_fallback) as ctx:
        source = _one(ctx.settings, name, CRAWL_KINDS)
        _refuse_early(ctx.settings, source)
        result = run_crawl(ctx.settings, [source], parse_since(since))
        fetched = fetch_pending(ctx, [source])
    stats = result.stats or {}
    if name in result.failed or name not in result.ok:
        raise FetchError(f"source {name}: {result.failed.get(name, 'crawl failed')}", url=source.url)
    return {
        "source": name,
        "discovered": result.discovered,
        "requests": int(stats.get("downloader/request_count", 0) or 0),
        "items": int(stats.get("item_scraped_count", 0) or 0),
        "fetched": dict(sorted(fetched.counts.items())),
    }


# -- clean ----------------------------------------------------------------------------------------


def _dirty_urls(ctx: Context, names: Sequence[str], after: str = "", last: str | None = None) -> list[str]:
    """URLs of stored pages that need cleaning, in the order ``clean_batch`` takes them."""
    return ctx.store.page_urls_to_clean(names, after, last)


def plan_clean(
    names: Sequence[str], batch_size: int | None = None, store_fallback: str | None = None
) -> list[dict[str, Any]]:
    """Split the pages awaiting cleaning into URL ranges ``(after, last]`` of one batch each.

    Ranges, not offsets: a batch that is retried after it committed finds nothing left in its
    range instead of eating into the next batch."""
    with _context(store_fallback) as ctx:
        size = batch_size or ctx.settings.clean_batch_size
        urls = _dirty_urls(ctx, names)
    batches = []
    after = ""
    for start in range(0, len(urls), size):
        chunk = urls[start : start + size]
        batches.append({"after": after, "last": chunk[-1], "pages": len(chunk)})
        after = chunk[-1]
    log.info("%d pages to clean in %d batches", len(urls), len(batches))
    return batches


def clean_batch(
    batch: Mapping[str, Any], names: Sequence[str], store_fallback: str | None = None
) -> dict[str, Any]:
    """Clean the pages of one planned range that still need it (one transaction)."""
    from pipeline.clean import clean_batch as clean

    after, last = str(batch.get("after", "")), str(batch["last"])
    with _context(store_fallback) as ctx:
        todo = _dirty_urls(ctx, names, after, last)
        if not todo:
            return {"after": after, "last": last, "pages": 0, "counts": {}}
        sources = _chosen(ctx.settings, names)
        outcome = clean(ctx, sources, after_url=after, limit=len(todo))
    for url, reason in sorted(outcome.drops.items()):
        log.info("dropped %s: %s", url, reason)
    return {"after": after, "last": last, "pages": len(todo), "counts": dict(sorted(outcome.counts.items()))}


# -- dedup and publish ----------------------------------------------------------------------------


def dedup(recluster: bool = False, store_fallback: str | None = None) -> dict[str, Any]:
    """Stories for what changed, under the store's run lock (a CLI run or recluster may be on)."""
    from pipeline.dedup import dedup as assign_stories

    with _context(store_fallback) as ctx, ctx.store.run_lock():
        outcome = assign_stories(ctx, recluster=recluster)
    return {
        "articles": outcome.articles,
        "stories": dict(sorted(outcome.stories.items())),
        "recluster": recluster,
    }


def summarise(results: Mapping[str, Any]) -> dict[str, int]:
    """Add up the per-task counts for the run's summary (and the asset event's extra)."""
    total: dict[str, int] = {
        "sources_ok": 0,
        "discovered": 0,
        "pages_stored": 0,
        "pages_crawled": 0,
        "pages_failed": 0,
        "articles_new": 0,
        "articles_updated": 0,
        "articles_dropped": 0,
        "stories_new": 0,
        "stories_updated": 0,
    }
    for item in list(results.get("feeds") or []) + list(results.get("crawls") or []):
        if not item:
            continue
        total["sources_ok"] += 1
        total["discovered"] += (
            int(item.get("new", 0)) + int(item.get("requeued", 0)) + int(item.get("discovered", 0))
        )
        fetched = item.get("fetched") or {}
        total["pages_stored"] += int(fetched.get("stored", 0))
        total["pages_crawled"] += int(item.get("items", 0))
        total["pages_failed"] += int(fetched.get("failed", 0)) + int(fetched.get("dropped", 0))
    for item in results.get("cleaned") or []:
        counts = (item or {}).get("counts") or {}
        total["articles_new"] += int(counts.get("new", 0))
        total["articles_updated"] += int(counts.get("updated", 0))
        total["articles_dropped"] += int(counts.get("dropped", 0))
    stories = ((results.get("dedup") or {}).get("stories")) or {}
    total["stories_new"] = int(stories.get("new", 0))
    total["stories_updated"] = int(stories.get("updated", 0))
    return total


def publish(results: Mapping[str, Any] | None = None, store_fallback: str | None = None) -> dict[str, Any]:
    """The run's counts and the store's totals: what the asset event tells downstream DAGs."""
    with _context(store_fallback) as ctx:
        totals = ctx.store.counts()
        where = ctx.store.safe_url
    summary = summarise(results or {})
    log.info("published: %s; store %s now holds %s", summary, where, totals)
    return {"run": summary, "store": totals}
