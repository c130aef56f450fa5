"""Discovery and fetching: feeds to the frontier, the frontier to raw pages.

``ingest_page`` is the single place a fetched article page enters the store; the feed path and
the Scrapy item pipeline both call it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import Connection

from pipeline.context import Context
from pipeline.errors import FetchError, NewsaggError
from pipeline.models import Source
from pipeline.parse.feeds import parse_feed
from pipeline.store.core import Discovered, PackedBody, PendingUrl, utc

log = logging.getLogger(__name__)

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
WRITE_BATCH = 50


@dataclass
class FeedOutcome:
    source: str
    ok: bool
    not_modified: bool = False
    entries: int = 0
    new: int = 0
    requeued: int = 0
    error: str | None = None  # why the source failed, or why its feed was malformed


def pull_feed(ctx: Context, source: Source, since: datetime | None = None) -> FeedOutcome:
    """Fetch one feed conditionally and queue its article URLs. Never raises for the source's
    own faults: the reason is returned and recorded, so one feed cannot stop the others."""
    store = ctx.store
    etag, last_modified = store.feed_validators(source.url)
    try:
        response = ctx.http.get(
            source.url,
            etag=etag,
            last_modified=last_modified,
            delay=source.delay,
            accept="application/rss+xml, application/atom+xml, "
            "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5",
        )
    except NewsaggError as exc:
        _record_feed_problem(ctx, source, str(exc))
        return FeedOutcome(source.name, ok=False, error=str(exc))
    if response.not_modified:
        return FeedOutcome(source.name, ok=True, not_modified=True)
    result = parse_feed(response.body, response.url, response.content_type)
    if not result.entries and result.bozo_reason:
        _record_feed_problem(ctx, source, result.bozo_reason)
        return FeedOutcome(source.name, ok=False, error=result.bozo_reason)
    since_utc = utc(since)
    found = [
        Discovered(
            url=e.url,
            source=source.name,
            title=e.title,
            published_at=e.published_at,
            lastmod=e.updated_at or e.published_at,
            fingerprint=e.fingerprint,
        )
        for e in result.entries
        if since_utc is None or e.published_at is None or e.published_at >= since_utc
    ]
    new, requeued = store.discover(found)
    # Validators are saved only after the entries are queued: a crash in between refetches.
    store.save_feed_validators(source.url, source.name, response.etag, response.last_modified)
    with store.begin() as conn:
        if result.bozo_reason:
            store.record_drop(
                conn,
                source.url,
                source.name,
                "feed",
                f"malformed feed, kept {len(result.entries)} entries: {result.bozo_reason}",
            )
        else:
            store.clear_drop(conn, source.url)
    return FeedOutcome(
        source.name,
        ok=True,
        entries=len(result.entries),
        new=new,
        requeued=requeued,
        error=result.bozo_reason,
    )


def _record_feed_problem(ctx: Context, source: Source, reason: str) -> None:
    log.warning("source %s failed: %s", source.name, reason)
    with ctx.store.begin() as conn:
        ctx.store.record_drop(conn, source.url, source.name, "feed", reason)


def is_html(content_type: str | None, body: bytes) -> bool:
    if content_type:
        return content_type.lower() in HTML_TYPES
    head = body[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<meta", b"<"))


def ingest_page(
    ctx: Context,
    conn: Connection,
    *,
    url: str,
    source: str,
    final_url: str,
    status: int,
    body: bytes,
    content_type: str | None,
    charset: str | None,
    etag: str | None,
    last_modified: str | None,
    packed: PackedBody | None = None,
) -> str:
    """Store one fetched article response. Returns 'stored', 'unchanged', 'not_modified' or
    'dropped'. The one entry point for pages, whoever fetched them."""
    store = ctx.store
    if status == 304:
        store.mark_url(conn, url, "fetched")
        return "not_modified"
    if not is_html(content_type, body):
        reason = f"not HTML ({content_type or 'unknown content type'})"
        store.mark_url(conn, url, "dropped", reason)
        store.record_drop(conn, url, source, "fetch", reason)
        return "dropped"
    changed = store.save_page(
        conn,
        url=url,
        source=source,
        final_url=final_url,
        body=body,
        content_type=content_type,
        charset=charset,
        etag=etag,
        last_modified=last_modified,
        packed=packed,
    )
    store.mark_url(conn, url, "fetched")
    store.clear_drop(conn, url)
    return "stored" if changed else "unchanged"


@dataclass
class FetchOutcome:
    counts: Counter[str] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)


def fetch_pending(
    ctx: Context,
    sources: Sequence[Source] | None = None,
    limit: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> FetchOutcome:
    """Fetch every pending article URL: one worker per host (politeness lives in the HTTP
    client), writes from this thread only, one transaction per batch."""
    from pipeline.net.client import Response

    delays = {s.name: s.delay for s in sources} if sources is not None else {}
    names = [s.name for s in sources] if sources is not None else None
    todo = ctx.store.pending(names, limit=limit)
    outcome = FetchOutcome()
    if not todo:
        return outcome
    by_host: dict[str, list[PendingUrl]] = defaultdict(list)
    for item in todo:
        by_host[urlsplit(item.url).netloc].append(item)
    hosts: queue.Queue[list[PendingUrl]] = queue.Queue()
    for items in by_host.values():
        hosts.put(items)
    results: queue.Queue[tuple[PendingUrl, object, PackedBody | None]] = queue.Queue(maxsize=256)

    def worker() -> None:
        while True:
            try:
                items = hosts.get_nowait()
            except queue.Empty:
                return
            for item in items:
                try:
                    response: object = ctx.http.get(
                        item.url,
                        etag=item.etag,
                        last_modified=item.last_modified,
                        delay=delays.get(item.source),
                    )
                except NewsaggError as exc:
                    response = exc
                except Exception as exc:  # a bug must not hang the writer: report it as a failure
                    response = FetchError(f"unexpected {type(exc).__name__}: {exc}", url=item.url)
                packed = None
                if (
                    isinstance(response, Response)
                    and response.status == 200
                    and is_html(response.content_type, response.body)
                ):
                    packed = PackedBody.of(response.body)  # here, in parallel (see PackedBody)
                results.put((item, response, packed))

    threads = [
        threading.Thread(target=worker, daemon=True, name=f"fetch-{i}")
        for i in range(max(1, min(ctx.settings.fetch_workers, len(by_host))))
    ]
    for thread in threads:
        thread.start()
    done = 0
    batch: list[tuple[PendingUrl, object, PackedBody | None]] = []
    while done < len(todo):
        batch.append(results.get())
        done += 1
        if len(batch) >= WRITE_BATCH or done == len(todo) or results.empty():
            _write_fetched(ctx, batch, outcome)
            batch = []
            if on_progress:
                on_progress(done, len(todo))
    for thread in threads:
        thread.join()
    return outcome


def _write_fetched(
    ctx: Context, batch: list[tuple[PendingUrl, object, PackedBody | None]], outcome: FetchOutcome
) -> None:
    from pipeline.net.client import Response

    with ctx.store.begin() as conn:
        for item, response, packed in batch:
            if isinstance(response, Response):
                result = ingest_page(
                    ctx,
                    conn,
                    url=item.url,
                    source=item.source,
                    final_url=response.url,
                    status=response.status,
                    body=response.body,
                    content_type=response.content_type,
                    charset=response.charset,
                    etag=response.etag,
                    last_modified=response.last_modified,
                    packed=packed,
                )
                outcome.counts[result] += 1
                if result == "dropped":
                    outcome.failures[item.url] = f"not HTML ({response.content_type})"
            else:
                assert isinstance(response, NewsaggError)
                reason = str(response)
                retryable = response.retryable and item.attempts + 1 < 3
                ctx.store.mark_url(conn, item.url, "failed" if retryable else "dropped", reason)
                ctx.store.record_drop(conn, item.url, item.source, "fetch", reason)
                outcome.counts["failed"] += 1
                outcome.failures[item.url] = reason
