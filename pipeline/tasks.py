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
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.config import Settings, load_settings
from pipeline.context import Context, open_context
from pipeline.errors import ConfigError
from pipeline.models import SOURCE_NAME_PATTERN, Source
from pipeline.timeutil import iso, parse_since

log = logging.getLogger(__name__)

# Feeds list articles a while after their publication time; re-reading this much before the last
# successful run costs nothing (the frontier skips known URLs) and loses no late entries.
SINCE_OVERLAP = timedelta(hours=6)
PARAM_KEYS = frozenset({"sources", "since", "recluster", "dry_run"})
_NAME = re.compile(SOURCE_NAME_PATTERN)


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
        since = iso(parsed)
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
    return iso(previous_success - SINCE_OVERLAP)


def valid_names(sources: Sequence[Source], limit: int = 40) -> str:
    """The enabled names, for an error message: a bad trigger shows what it could have asked."""
    names = sorted(s.name for s in sources if s.enabled)
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "") if names else "(none)"


def _select(config: Settings, names: Sequence[str]) -> list[Source]:
    from pipeline.sources import select

    registry = _registry(config)
    try:
        chosen = select(registry, list(names))
    except ConfigError as exc:
        raise ConfigError(f"{exc}; valid names: {valid_names(registry)}") from None
    if not chosen:
        raise ConfigError(
            "no enabled sources selected"
            + (f" among {', '.join(names)}; valid names: {valid_names(registry)}" if names else "")
        )
    return chosen


def load_sources(
    names: Sequence[str] | None = None, store_fallback: str | None = None
) -> dict[str, list[str]]:
    """Enabled source names by kind; unknown names or an empty selection are config errors."""
    by_kind: dict[str, list[str]] = {"rss": [], "sitemap": [], "html": []}
    for source in _select(settings(store_fallback), list(names or [])):
        by_kind.setdefault(source.kind, []).append(source.name)
    return by_kind


def prepare_run(
    params: Mapping[str, Any], previous_success: datetime | None = None, store_fallback: str | None = None
) -> dict[str, Any]:
    """Validate the params, the registry and the store URL, fix ``since``, split the chosen
    sources into shards, and bring the store's schema up to date once, before the mapped tasks
    open it concurrently. A manual run on a few sources runs only their shards, and in those
    only the chosen sources.

    A dry run stops short of the store and plans no shard, so every later task skips."""
    from pipeline.shards import plan_shards

    checked = validate_params(params)
    config = settings(store_fallback)
    chosen = _select(config, checked["sources"])
    shards = plan_shards(chosen, config.shard_count)
    plan = {
        "sources": [s.name for s in chosen],
        "shards": [] if checked["dry_run"] else [shard.as_dict() for shard in shards],
        "since": resolve_since(checked["since"], previous_success),
        "recluster": checked["recluster"],
        "dry_run": checked["dry_run"],
    }
    if checked["dry_run"]:
        where = safe_store_url(config.resolved_store_url)
    else:
        with open_context(config) as ctx:  # migrates
            where = ctx.store.safe_url
    kinds = Counter(s.kind for s in chosen)
    log.info(
        "%s: %d sources (%s) in %d of %d shards; since %s; recluster %s; store %s",
        "dry run, would run" if checked["dry_run"] else "run plan",
        len(chosen),
        ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())),
        len(shards),
        config.shard_count,
        plan["since"] or "(no limit)",
        plan["recluster"],
        where,
    )
    for shard in shards:
        log.info("  %s", shard.label if len(shard.sources) <= 3 else f"{shard.label} ({len(shard.sources)})")
    return plan


def safe_store_url(url: str) -> str:
    """The store URL, checked as the store would check it, with any password hidden."""
    from pipeline.store.core import Store

    return Store.parse_url(url).render_as_string(hide_password=True)


# -- discover and fetch ---------------------------------------------------------------------------


def fetch_shard(
    shard: Mapping[str, Any], since: str | None = None, store_fallback: str | None = None
) -> dict[str, Any]:
    """One shard's sources: feeds, crawls, then the feeds' pending pages (see
    :func:`pipeline.shards.fetch_shard`). Per-source counts go in the result; a source's own
    failure is logged and reported there (the run's last task fails the run for it) instead of
    failing the task, so a retry never refetches the healthy sources of its shard."""
    from pipeline.shards import fetch_shard as fetch

    names = [str(n) for n in shard.get("sources") or []]
    with _context(store_fallback) as ctx:
        sources = _chosen(ctx.settings, names)
        outcome = fetch(ctx, sources, parse_since(since))
    for name, entry in outcome.sources.items():
        if not entry.ok:
            log.warning("source %s failed: %s", name, entry.error)
        elif entry.warning:
            log.warning("source %s: malformed feed, kept what parsed: %s", name, entry.warning)
        else:
            log.info(
                "source %s: %d discovered, %d fetched, %d failed",
                name,
                entry.discovered,
                entry.fetched,
                entry.failed,
            )
    failed = outcome.failed
    log.info(
        "shard %s: %d sources ok, %d failed; pages %s",
        shard.get("shard"),
        len(outcome.sources) - len(failed),
        len(failed),
        ", ".join(f"{k} {v}" for k, v in sorted(outcome.fetch.items())) or "none fetched",
    )
    return {
        "shard": shard.get("shard"),
        "sources": {name: entry.as_dict() for name, entry in outcome.sources.items()},
        "fetched": dict(sorted(outcome.fetch.items())),
        "cleaned": dict(sorted(outcome.cleaned.items())),
        "crawl_requests": outcome.crawl_requests,
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
    total: dict[str, int] = dict.fromkeys(
        (
            "sources_ok",
            "sources_failed",
            "discovered",
            "pages_stored",
            "pages_failed",
            "articles_new",
            "articles_updated",
            "articles_dropped",
            "stories_new",
            "stories_updated",
        ),
        0,
    )
    for entry in per_source(results).values():
        total["sources_ok" if entry.get("ok") else "sources_failed"] += 1
        total["discovered"] += int(entry.get("discovered", 0))
    for item in results.get("shards") or []:
        fetched = (item or {}).get("fetched") or {}
        total["pages_stored"] += int(fetched.get("stored", 0))
        total["pages_failed"] += int(fetched.get("failed", 0)) + int(fetched.get("dropped", 0))
    # the shards clean as they fetch; the clean tasks take what they left
    cleaned = [(item or {}).get("cleaned") or {} for item in results.get("shards") or []]
    cleaned += [(item or {}).get("counts") or {} for item in results.get("cleaned") or []]
    for counts in cleaned:
        total["articles_new"] += int(counts.get("new", 0))
        total["articles_updated"] += int(counts.get("updated", 0))
        total["articles_dropped"] += int(counts.get("dropped", 0))
    stories = ((results.get("dedup") or {}).get("stories")) or {}
    total["stories_new"] = int(stories.get("new", 0))
    total["stories_updated"] = int(stories.get("updated", 0))
    return total


def per_source(results: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every source's counts from the shards' results, by name."""
    out: dict[str, dict[str, Any]] = {}
    for item in results.get("shards") or []:
        for name, entry in ((item or {}).get("sources") or {}).items():
            out[str(name)] = dict(entry)
    return dict(sorted(out.items()))


def failed_sources(results: Mapping[str, Any]) -> dict[str, str]:
    return {n: str(e.get("error") or "failed") for n, e in per_source(results).items() if not e.get("ok")}


def _health_warnings(
    ctx: Context, names: Sequence[str], started: str | None, failed: Mapping[str, str]
) -> list[str]:
    """Source-health flags (walls, dead selectors, silent feeds: outlets that break without
    failing). With the DAG run's start, this run is recorded first, as ``newsagg run`` does."""
    from pipeline import health

    started_at = parse_since(started, what="the DAG run's start")
    if started_at is not None:
        return health.after_dag_run(ctx.store, list(names), started_at, failed)
    return health.warnings(ctx.store, list(names) or None)


def summary_lines(summary: Mapping[str, Any]) -> list[str]:
    """The run's summary as a person reads it in the task log."""
    run = summary["run"]
    lines = [
        f"sources: {run['sources_ok']} ok, {run['sources_failed']} failed; "
        f"{run['discovered']} new URLs discovered",
        f"pages: {run['pages_stored']} stored, {run['pages_failed']} failed or dropped",
        f"articles: {run['articles_new']} new, {run['articles_updated']} updated, "
        f"{run['articles_dropped']} dropped",
        f"stories: {run['stories_new']} new, {run['stories_updated']} updated",
        "store now: " + ", ".join(f"{v} {k}" for k, v in sorted(summary["store"].items())),
    ]
    for name, why in sorted(summary["failed"].items()):
        lines.append(f"failed source {name}: {why}")
    lines.extend(f"health: {w}" for w in summary["warnings"])
    sources = summary["sources"]
    if sources:
        width = max(len(n) for n in sources)
        lines.append(f"{'source':<{width}}  kind     discovered  fetched  failed  state")
        for name, entry in sources.items():
            state = "ok" if entry.get("ok") else "FAILED"
            lines.append(
                f"{name:<{width}}  {entry.get('kind', ''):<7}  {entry.get('discovered', 0):>10}  "
                f"{entry.get('fetched', 0):>7}  {entry.get('failed', 0):>6}  {state}"
            )
    return lines


def publish(
    results: Mapping[str, Any] | None = None,
    store_fallback: str | None = None,
    started: str | None = None,
) -> dict[str, Any]:
    """The run's counts, per source and in total, the store's totals and the source-health
    warnings: what the run's log shows and the asset event tells downstream DAGs."""
    results = results or {}
    sources = per_source(results)
    with _context(store_fallback) as ctx:
        totals = ctx.store.counts()
        where = ctx.store.safe_url
        warnings = _health_warnings(ctx, list(sources), started, failed_sources(results))
    summary = {
        "run": summarise(results),
        "store": totals,
        "failed": failed_sources(results),
        "warnings": warnings,
        "sources": sources,
    }
    log.info("published to %s:\n%s", where, "\n".join(summary_lines(summary)))
    return summary
