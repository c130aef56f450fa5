"""Raw pages as fetched and the drop log: what the clean stage reads and marks, and why a URL
gave no article."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, or_, select

from pipeline.models import DropStage
from pipeline.store.common import chunks
from pipeline.store.limits import fits
from pipeline.store.packing import PackedBody, pack, unpack
from pipeline.store.schema import drops, pages
from pipeline.timeutil import now, utc

if TYPE_CHECKING:
    from pipeline.store.core import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredPage:
    url: str
    source: str
    final_url: str
    fetched_at: datetime
    content_type: str | None
    charset: str | None
    body_sha256: str
    body_gz: bytes  # as stored (see pack); the clean stage unpacks it in its extract workers

    @property
    def body(self) -> bytes:
        return unpack(self.body_gz)


class Pages:
    """The ``pages`` and ``drops`` tables."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def save_page(
        self,
        conn: Connection,
        *,
        url: str,
        source: str,
        final_url: str,
        body: bytes,
        content_type: str | None,
        charset: str | None,
        etag: str | None,
        last_modified: str | None,
        packed: PackedBody | None = None,
    ) -> bool:
        """Keep the raw page (packed). Returns whether the stored body changed.

        ``packed``: the body already hashed and packed by the caller (see PackedBody)."""
        sha = packed.sha256 if packed is not None else hashlib.sha256(body).hexdigest()
        fitted = self._store.bounds.row(
            pages,
            {
                "source": source,
                "final_url": final_url,
                "content_type": content_type,
                "charset": charset,
                "etag": etag,
                "last_modified": last_modified,
            },
        )
        etag, last_modified = fitted["etag"], fitted["last_modified"]
        row = conn.execute(
            select(pages.c.body_sha256, pages.c.etag, pages.c.last_modified).where(pages.c.url == url)
        ).first()
        if row is not None and row.body_sha256 == sha:
            if (row.etag, row.last_modified) != (etag, last_modified):
                conn.execute(
                    pages.update().where(pages.c.url == url).values(etag=etag, last_modified=last_modified)
                )
            return False
        values = {
            **fitted,
            "fetched_at": now(),
            "body_sha256": sha,
            "body_gz": packed.packed if packed is not None else pack(body),
        }
        if row is None:
            conn.execute(pages.insert().values(url=url, cleaned_sha256=None, **values))
            return True
        conn.execute(pages.update().where(pages.c.url == url).values(**values))
        return True

    def page_urls_to_clean(
        self, sources: Sequence[str], after_url: str = "", last_url: str | None = None
    ) -> list[str]:
        """URLs of stored pages that need cleaning, in the order :meth:`pages_to_clean` takes them."""
        query = (
            select(pages.c.url)
            .where(pages.c.url > after_url, pages.c.source.in_(list(sources)), _needs_cleaning())
            .order_by(pages.c.url)
        )
        if last_url is not None:
            query = query.where(pages.c.url <= last_url)
        with self._store.begin() as conn:
            return [str(u) for u in conn.execute(query).scalars()]

    def pages_to_clean(
        self, sources: Sequence[str] | None = None, limit: int = 500, after_url: str = "", force: bool = False
    ) -> list[StoredPage]:
        query = select(pages).where(pages.c.url > after_url).order_by(pages.c.url).limit(limit)
        if not force:
            query = query.where(_needs_cleaning())
        if sources is not None:
            query = query.where(pages.c.source.in_(list(sources)))
        with self._store.begin() as conn:
            rows = conn.execute(query).all()
        return [_stored_page(r) for r in rows]

    def page_keys_fetched_since(
        self, since: datetime, sources: Sequence[str] | None = None
    ) -> list[tuple[str, str]]:
        """(url, body_sha256) of pages stored or changed at ``since`` or later that need
        cleaning; reads no bodies (the clean stage polls this while pages are still arriving; a
        page an earlier run cleaned moments ago is not cleaned again)."""
        query = select(pages.c.url, pages.c.body_sha256).where(pages.c.fetched_at >= since, _needs_cleaning())
        if sources is not None:
            query = query.where(pages.c.source.in_(list(sources)))
        with self._store.begin() as conn:
            return [(r.url, r.body_sha256) for r in conn.execute(query)]

    def pages_by_url(self, wanted: Sequence[str]) -> list[StoredPage]:
        result: list[StoredPage] = []
        with self._store.begin() as conn:
            for chunk in chunks(list(wanted), 500):
                rows = conn.execute(select(pages).where(pages.c.url.in_(chunk)).order_by(pages.c.url))
                result += [_stored_page(r) for r in rows]
        return result

    def mark_cleaned(self, conn: Connection, done: Sequence[tuple[str, str]]) -> None:
        """Record ``(url, body_sha256)`` pairs as cleaned: one statement for the batch."""
        if done:
            conn.execute(
                pages.update()
                .where(pages.c.url == bindparam("b_url"))
                .values(cleaned_sha256=bindparam("b_sha")),
                [{"b_url": url, "b_sha": sha} for url, sha in done],
            )

    # -- drops ---------------------------------------------------------------------------------

    def record_drop(self, conn: Connection, url: str, source: str, stage: DropStage, reason: str) -> None:
        reason = self._store.bounds.value(drops.c.reason, reason[:2000])
        source = self._store.bounds.value(drops.c.source, source)
        if not fits(drops.c.url, url):
            return
        row = conn.execute(select(drops.c.reason).where(drops.c.url == url, drops.c.stage == stage)).first()
        if row is None:
            conn.execute(drops.insert().values(url=url, stage=stage, source=source, reason=reason, at=now()))
        elif row.reason != reason:
            conn.execute(
                drops.update()
                .where(drops.c.url == url, drops.c.stage == stage)
                .values(reason=reason, at=now(), source=source)
            )

    def clear_drop(self, conn: Connection, url: str) -> None:
        self.clear_drops(conn, [url])

    def clear_drops(self, conn: Connection, done: Sequence[str]) -> None:
        for chunk in chunks(list(done), 500):
            conn.execute(drops.delete().where(drops.c.url.in_(chunk)))

    def drop_reasons(self) -> list[tuple[str, str, str, str]]:
        with self._store.begin() as conn:
            return [
                (r.url, r.source, r.stage, r.reason)
                for r in conn.execute(select(drops).order_by(drops.c.stage, drops.c.url))
            ]


def _needs_cleaning() -> Any:
    """A page never cleaned, or whose body changed since it was."""
    return or_(pages.c.cleaned_sha256.is_(None), pages.c.cleaned_sha256 != pages.c.body_sha256)


def _stored_page(r: Any) -> StoredPage:
    return StoredPage(
        r.url,
        r.source,
        r.final_url,
        utc(r.fetched_at) or now(),
        r.content_type,
        r.charset,
        r.body_sha256,
        r.body_gz,
    )
