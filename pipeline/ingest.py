"""Discovery and fetching: feeds to the frontier, the frontier to raw pages.

``ingest_page`` is the single place a fetched article page enters the store; the feed path and
the Scrapy item pipeline both call it.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import Connection

from pipeline.context import Context
from pipeline.errors import FetchError, NewsaggError
from pipeline.models import PageResult, Source, UrlStatus
from pipeline.net.client import OutOfDescriptorsError, Response, fetch_concurrency
from pipeline.parse.feeds import parse_feed
from pipeline.store.core import Discovered, PackedBody, PendingUrl
from pipeline.timeutil import utc

log = logging.getLogger(__name__)

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
WRITE_BATCH = 50
_DESCRIPTOR_WAITS = (0.05, 0.1, 0.2, 0.5, 1.0, 1.0, 2.0, 2.0, 5.0, 5.0, 0.0)  # then left pending


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
    return save_feed(ctx, source, fetch_feed(ctx, source), since)


def fetch_feed(ctx: Context, source: Source) -> Response | NewsaggError:
    """The feed's response, or why there is none: the network half of :func:`pull_feed`."""
    etag, last_modified = ctx.store.feed_validators(source.url)
    try:
        return ctx.http.get(
            source.url,
            etag=etag,
            last_modified=last_modified,
            delay=source.delay,
            accept="application/rss+xml, application/atom+xml, "
            "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5",
        )
    except NewsaggError as exc:
        return exc


def save_feed(
    ctx: Context, source: Source, response: Response | NewsaggError, since: datetime | None = None
) -> FeedOutcome:
    """Queue what a feed response lists (the store half of :func:`pull_feed`)."""
    store = ctx.store
    if isinstance(response, NewsaggError):
        _record_feed_problem(ctx, source, str(response))
        return FeedOutcome(source.name, ok=False, error=str(response))
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
) -> PageResult:
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


def record_fetch_failure(
    ctx: Context, conn: Connection, url: str, source: str, reason: str, retryable: bool
) -> UrlStatus:
    """The one rule for a failed article fetch, whoever fetched it (feed path or crawl).

    A retryable failure leaves the URL ``failed``, asked again by later runs, until it has
    failed ``fetch_attempts`` times; then, or at once when no retry can help, it is ``dropped``
    (until its feed or sitemap says it changed). Either way the reason is in ``drops``.
    Returns the URL's new status.
    """
    status = ctx.store.fail_url(
        conn, url, reason, retryable=retryable, max_attempts=ctx.settings.fetch_attempts
    )
    ctx.store.record_drop(conn, url, source, "fetch", reason)
    return status


@dataclass
class FetchOutcome:
    counts: Counter[str] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)
    feeds: list[FeedOutcome] = field(default_factory=list)  # fetch_sources only
    peak_hosts: int = 0  # hosts being fetched at once, at most
    fetched_by_source: Counter[str] = field(default_factory=Counter)  # pages stored, per source
    failed_by_source: Counter[str] = field(default_factory=Counter)  # failed or not HTML, per source


_Result = tuple[PendingUrl, "Response | NewsaggError", PackedBody | None]


class _Fetcher:
    """Host workers fetch; the thread that called :meth:`run` does every store write.

    A worker takes one unit of work (one host's pending URLs, or one feed host: its feeds, then
    what they list) and asks only that host, at its delay, so every host with work is asked at
    once up to :func:`fetch_concurrency`. Politeness itself is the HTTP client's per-host gate.
    """

    def __init__(self, ctx: Context, delays: dict[str, float | None], since: datetime | None = None) -> None:
        self.ctx = ctx
        self.delays = delays
        self.since = since
        self.results: queue.Queue[_Result | None] = queue.Queue(maxsize=256)
        self.errors: list[BaseException] = []  # a store failure in a worker, raised by run()
        self.feed_writes: queue.Queue[tuple[Source, Response | NewsaggError, threading.Event]] = queue.Queue()
        self.outcome = FetchOutcome()
        self._busy = 0
        self._lock = threading.Lock()

    def fetch_item(self, item: PendingUrl) -> None:
        for wait in _DESCRIPTOR_WAITS:
            try:
                response: Response | NewsaggError = self.ctx.http.get(
                    item.url,
                    etag=item.etag,
                    last_modified=item.last_modified,
                    delay=self.delays.get(item.source),
                )
            except OutOfDescriptorsError as exc:
                response = exc  # not the URL's fault: ask again once descriptors are free
                log.warning("%s; waiting %.2fs", exc, wait)
                time.sleep(wait)
                continue
            except NewsaggError as exc:
                response = exc
            except Exception as exc:  # a bug must not hang the writer: report it as a failure
                response = FetchError(f"unexpected {type(exc).__name__}: {exc}", url=item.url)
            break
        packed = None
        ok = isinstance(response, Response) and response.status == 200
        if ok and isinstance(response, Response) and is_html(response.content_type, response.body):
            packed = PackedBody.of(response.body)  # here, in parallel (see PackedBody)
        self.results.put((item, response, packed))

    def run(
        self,
        units: Sequence[Callable[[], None]],
        total: int,
        on_progress: Callable[[int, int], None] | None,
    ) -> FetchOutcome:
        work: queue.Queue[Callable[[], None]] = queue.Queue()
        for unit in units:
            work.put(unit)
        workers = min(fetch_concurrency(self.ctx.settings), len(units))
        remaining = [workers]

        def worker() -> None:
            try:
                while True:
                    try:
                        unit = work.get_nowait()
                    except queue.Empty:
                        return
                    with self._lock:
                        self._busy += 1
                        self.outcome.peak_hosts = max(self.outcome.peak_hosts, self._busy)
                    try:
                        unit()
                    except Exception as exc:
                        self.errors.append(exc)
                    finally:
                        with self._lock:
                            self._busy -= 1
            finally:
                with self._lock:
                    remaining[0] -= 1
                    last = remaining[0] == 0
                if last:
                    self.results.put(None)  # the writer's signal that nothing more comes

        threads = [threading.Thread(target=worker, daemon=True, name=f"fetch-{i}") for i in range(workers)]
        for thread in threads:
            thread.start()
        done = 0
        batch: list[_Result] = []
        finished = not threads
        while not finished:
            self._save_feeds()
            try:
                got = self.results.get(timeout=0.05)
            except queue.Empty:
                pass
            else:
                if got is None:
                    finished = True
                else:
                    batch.append(got)
                    done += 1
            if batch and (len(batch) >= WRITE_BATCH or finished or self.results.empty()):
                _write_fetched(self.ctx, batch, self.outcome)
                batch = []
                if on_progress:
                    on_progress(done, max(total, done))
        self._save_feeds()
        for thread in threads:
            thread.join()
        if self.errors:
            raise self.errors[0]
        return self.outcome

    def _save_feeds(self) -> None:
        """Feed responses are written here, in the writer's thread, like pages."""
        while True:
            try:
                source, response, saved = self.feed_writes.get_nowait()
            except queue.Empty:
                return
            try:
                self.outcome.feeds.append(save_feed(self.ctx, source, response, self.since))
            except BaseException as exc:
                self.errors.append(exc)
            finally:
                saved.set()


def fetch_pending(
    ctx: Context,
    sources: Sequence[Source] | None = None,
    limit: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> FetchOutcome:
    """Fetch every pending article URL: every host at once (up to :func:`fetch_concurrency`),
    each at its own delay; writes from this thread only, one transaction per batch."""
    delays = {s.name: s.delay for s in sources} if sources is not None else {}
    names = [s.name for s in sources] if sources is not None else None
    todo = ctx.store.pending(names, limit=limit, max_attempts=ctx.settings.fetch_attempts)
    if not todo:
        return FetchOutcome()
    fetcher = _Fetcher(ctx, delays)
    by_host: dict[str, list[PendingUrl]] = defaultdict(list)
    for item in todo:
        by_host[urlsplit(item.url).netloc].append(item)
    units = [functools.partial(_fetch_all, fetcher, items) for items in by_host.values()]
    return fetcher.run(units, len(todo), on_progress)


def _fetch_all(fetcher: _Fetcher, items: list[PendingUrl]) -> None:
    for item in items:
        fetcher.fetch_item(item)


def fetch_sources(
    ctx: Context,
    feeds: Sequence[Source],
    since: datetime | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> FetchOutcome:
    """Feeds and their articles at once: each feed host's worker pulls its feeds, then fetches
    what is pending for them, while the other hosts do the same. ``newsagg run``'s fetch."""
    fetcher = _Fetcher(ctx, {s.name: s.delay for s in feeds}, since)
    by_host: dict[str, list[Source]] = defaultdict(list)
    for source in feeds:
        by_host[urlsplit(source.url).netloc.lower()].append(source)

    def host(group: list[Source]) -> None:
        for source in group:
            response = fetch_feed(ctx, source)
            saved = threading.Event()
            fetcher.feed_writes.put((source, response, saved))
            saved.wait()
        pending = ctx.store.pending([s.name for s in group], max_attempts=ctx.settings.fetch_attempts)
        _fetch_all(fetcher, pending)

    units = [functools.partial(host, group) for group in by_host.values()]
    return fetcher.run(units, 0, on_progress)


def _write_fetched(ctx: Context, batch: list[_Result], outcome: FetchOutcome) -> None:
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
                    outcome.failed_by_source[item.source] += 1
                else:
                    outcome.fetched_by_source[item.source] += 1
            elif isinstance(response, OutOfDescriptorsError):
                outcome.counts["deferred"] += 1  # still pending: the next run asks again
            else:
                reason = str(response)
                record_fetch_failure(ctx, conn, item.url, item.source, reason, response.retryable)
                outcome.counts["failed"] += 1
                outcome.failures[item.url] = reason
                outcome.failed_by_source[item.source] += 1
