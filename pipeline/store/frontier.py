"""The frontier: article URLs and their status, and what is kept of feeds and other discovery
documents (validators, bodies) between runs."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, or_, select

from pipeline.errors import StoreError
from pipeline.models import UrlStatus
from pipeline.store.common import chunks
from pipeline.store.limits import fits, plausible
from pipeline.store.packing import pack, unpack
from pipeline.store.schema import feed_state, pages, urls
from pipeline.timeutil import now, utc

if TYPE_CHECKING:
    from pipeline.store.core import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Discovered:
    """An article URL found by a feed, sitemap or section page."""

    url: str
    source: str
    title: str | None = None
    published_at: datetime | None = None
    lastmod: datetime | None = None
    fingerprint: str | None = None  # what the feed said of it; a change means the article changed


@dataclass(frozen=True, slots=True)
class PendingUrl:
    url: str
    source: str
    attempts: int
    etag: str | None
    last_modified: str | None


class Frontier:
    """The ``urls`` and ``feed_state`` tables."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- feed state ----------------------------------------------------------------------------

    def feed_validators(self, url: str) -> tuple[str | None, str | None]:
        with self._store.begin() as conn:
            row = conn.execute(
                select(feed_state.c.etag, feed_state.c.last_modified).where(feed_state.c.url == url)
            ).first()
        return (row.etag, row.last_modified) if row else (None, None)

    def save_feed_validators(
        self, url: str, source: str, etag: str | None, last_modified: str | None
    ) -> None:
        fitted = self._store.bounds.row(
            feed_state, {"source": source, "etag": etag, "last_modified": last_modified}
        )
        source, etag, last_modified = fitted["source"], fitted["etag"], fitted["last_modified"]
        if not fits(feed_state.c.url, url):
            log.warning("feed state of a URL longer than %d characters is not kept", 2048)
            return
        with self._store.begin() as conn:
            row = conn.execute(select(feed_state).where(feed_state.c.url == url)).first()
            if row is None:
                conn.execute(
                    feed_state.insert().values(url=url, source=source, etag=etag, last_modified=last_modified)
                )
            elif (row.etag, row.last_modified, row.source) != (etag, last_modified, source):
                conn.execute(
                    feed_state.update()
                    .where(feed_state.c.url == url)
                    .values(etag=etag, last_modified=last_modified, source=source)
                )

    def discovery_validators(self, url: str) -> tuple[str | None, str | None]:
        """(etag, last_modified) of a discovery document whose body is kept, else (None, None):
        what a conditional request may send. Reads no body; :meth:`discovery_state` does, once
        a 304 needs it."""
        with self._store.begin() as conn:
            row = conn.execute(
                select(feed_state.c.etag, feed_state.c.last_modified).where(
                    feed_state.c.url == url, feed_state.c.body_gz.is_not(None)
                )
            ).first()
        return (row.etag, row.last_modified) if row else (None, None)

    def discovery_state(
        self, url: str, max_bytes: int | None = None
    ) -> tuple[str | None, str | None, bytes | None, str | None]:
        """(etag, last_modified, body, content_type) kept for a robots.txt, sitemap or section
        page. ``body`` is None when none is kept, it is corrupt, or it inflates beyond
        ``max_bytes`` (the crawl's size cap may have been lowered since): without a body to
        stand in for a 304, the caller must not ask conditionally."""
        with self._store.begin() as conn:
            row = conn.execute(
                select(
                    feed_state.c.etag,
                    feed_state.c.last_modified,
                    feed_state.c.body_gz,
                    feed_state.c.content_type,
                ).where(feed_state.c.url == url)
            ).first()
        if row is None:
            return None, None, None, None
        body: bytes | None = None
        if row.body_gz is not None:
            with contextlib.suppress(StoreError):
                body = unpack(row.body_gz, max_bytes)
        return row.etag, row.last_modified, body, row.content_type

    def save_discovery_state(
        self,
        url: str,
        source: str,
        etag: str | None,
        last_modified: str | None,
        body: bytes | None,
        content_type: str | None,
    ) -> bool:
        """Keep a discovery document's validators and its body (packed), writing only when one
        of them changed: a run that finds every document unchanged writes no row. A response
        without validators cannot be asked for conditionally, so its body is not kept.
        Returns whether a row was written."""
        etag = etag if etag is not None and len(etag) <= 512 else None
        last_modified = last_modified if last_modified is not None and len(last_modified) <= 128 else None
        if etag is None and last_modified is None:
            body = content_type = None
        content_type = content_type[:255] if content_type else None
        if not fits(feed_state.c.url, url):
            return False
        source = self._store.bounds.value(feed_state.c.source, source)
        content_type = self._store.bounds.value(feed_state.c.content_type, content_type)
        with self._store.begin() as conn:
            row = conn.execute(select(feed_state).where(feed_state.c.url == url)).first()
            if row is None and body is None and etag is None and last_modified is None:
                return False
            if row is not None:
                try:
                    old_body = unpack(row.body_gz) if row.body_gz is not None else None
                except StoreError:
                    old_body = b"\0corrupt"  # never equal to a body: rewritten below
                # the source is not compared: sources sharing a host share its robots.txt
                if (row.etag, row.last_modified, row.content_type, old_body) == (
                    etag,
                    last_modified,
                    content_type,
                    body,
                ):
                    return False
            values = {
                "source": source,
                "etag": etag,
                "last_modified": last_modified,
                "content_type": content_type,
                "fetched_at": now(),
                "body_gz": None if body is None else pack(body),
            }
            if row is None:
                conn.execute(feed_state.insert().values(url=url, **values))
            else:
                conn.execute(feed_state.update().where(feed_state.c.url == url).values(**values))
        return True

    # -- frontier ------------------------------------------------------------------------------

    def discover(self, found: Iterable[Discovered]) -> tuple[int, int]:
        """Add new URLs as pending; re-queue known ones whose lastmod moved. Returns (new, requeued)."""
        found = list({d.url: d for d in found}.values())
        refused = [d.url for d in found if not fits(urls.c.url, d.url)]
        if refused:  # a cut URL would name another page: that one URL is refused
            self._store.bounds.cut["urls.url (refused)"] += len(refused)
            log.warning(
                "refused %d discovered URL(s) that do not fit the store, e.g. %.120r",
                len(refused),
                refused[0],
            )
            found = [d for d in found if fits(urls.c.url, d.url)]
        new = requeued = 0
        if not found:
            return 0, 0
        with self._store.begin() as conn:
            for chunk in chunks(found, 500):
                known = {
                    r.url: r
                    for r in conn.execute(
                        select(urls.c.url, urls.c.lastmod, urls.c.status, urls.c.fingerprint).where(
                            urls.c.url.in_([d.url for d in chunk])
                        )
                    )
                }
                inserts = []
                for d in chunk:
                    row = known.get(d.url)
                    if row is None:
                        inserts.append(
                            self._store.bounds.row(
                                urls,
                                {
                                    "url": d.url,
                                    "source": d.source,
                                    "discovered_at": now(),
                                    "hint_title": d.title,
                                    "hint_published_at": plausible(d.published_at),
                                    "lastmod": plausible(d.lastmod),
                                    "fingerprint": d.fingerprint,
                                    "status": "pending",
                                    "attempts": 0,
                                    "error": None,
                                },
                            )
                        )
                        continue
                    old, moved = utc(row.lastmod), plausible(d.lastmod)
                    fingerprint = self._store.bounds.value(urls.c.fingerprint, d.fingerprint)
                    newer = moved is not None and (old is None or moved > old)
                    # Many feeds revise an entry (headline, summary) without any date: the
                    # entry's fingerprint changing is then the only sign the article changed.
                    revised = fingerprint is not None and row.fingerprint not in (None, fingerprint)
                    if (newer or revised) and row.status in ("fetched", "dropped"):
                        conn.execute(
                            urls.update()
                            .where(urls.c.url == d.url)
                            .values(
                                lastmod=moved if newer else old,
                                fingerprint=fingerprint or row.fingerprint,
                                status="pending",
                                attempts=0,
                                error=None,
                            )
                        )
                        requeued += 1
                if inserts:
                    conn.execute(urls.insert(), inserts)
                    new += len(inserts)
        return new, requeued

    def known_urls(self, candidates: Iterable[str]) -> dict[str, datetime | None]:
        """Which of these URLs are already in the frontier, with their lastmod."""
        result: dict[str, datetime | None] = {}
        with self._store.begin() as conn:
            for chunk in chunks(list(candidates), 500):
                for row in conn.execute(select(urls.c.url, urls.c.lastmod).where(urls.c.url.in_(chunk))):
                    result[row.url] = utc(row.lastmod)
        return result

    def pending(
        self, sources: Sequence[str] | None = None, limit: int | None = None, max_attempts: int = 3
    ) -> list[PendingUrl]:
        query = (
            select(urls.c.url, urls.c.source, urls.c.attempts, pages.c.etag, pages.c.last_modified)
            .select_from(urls.outerjoin(pages, pages.c.url == urls.c.url))
            .where(
                or_(
                    urls.c.status == "pending",
                    and_(urls.c.status == "failed", urls.c.attempts < max_attempts),
                )
            )
            .order_by(urls.c.url)
        )
        if sources is not None:
            query = query.where(urls.c.source.in_(list(sources)))
        if limit is not None:
            query = query.limit(limit)
        with self._store.begin() as conn:
            return [
                PendingUrl(r.url, r.source, r.attempts, r.etag, r.last_modified) for r in conn.execute(query)
            ]

    def mark_url(self, conn: Connection, url: str, status: UrlStatus, error: str | None = None) -> None:
        values: dict[str, Any] = self._store.bounds.row(urls, {"status": status, "error": error})
        if status == "failed":
            values["attempts"] = urls.c.attempts + 1
        conn.execute(urls.update().where(urls.c.url == url).values(**values))

    def fail_url(
        self, conn: Connection, url: str, error: str, *, retryable: bool, max_attempts: int
    ) -> UrlStatus:
        """Count one failed fetch of ``url``: ``failed`` (asked again by a later run) until it has
        failed ``max_attempts`` times, then ``dropped``; a failure no retry can fix drops it at
        once. Returns the new status."""
        attempts = conn.execute(select(urls.c.attempts).where(urls.c.url == url)).scalar()
        tried = int(attempts or 0) + 1
        status: UrlStatus = "failed" if retryable and tried < max_attempts else "dropped"
        conn.execute(
            urls.update().where(urls.c.url == url).values(status=status, error=error, attempts=tried)
        )
        return status

    def url_hints(self, candidates: Sequence[str]) -> dict[str, tuple[str | None, datetime | None]]:
        """The feed's title and date for these URLs: a fallback when a page lacks its own."""
        result: dict[str, tuple[str | None, datetime | None]] = {}
        with self._store.begin() as conn:
            for chunk in chunks(list(candidates), 500):
                for row in conn.execute(
                    select(urls.c.url, urls.c.hint_title, urls.c.hint_published_at).where(
                        urls.c.url.in_(chunk)
                    )
                ):
                    result[row.url] = (row.hint_title, plausible(row.hint_published_at))
        return result
