"""Articles: the upsert by canonical URL (with exact-duplicate marking) and the reads dedup,
explain and export take."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, func, select
from sqlalchemy import inspect as sa_inspect

from pipeline.models import Article, StoredArticle, UpsertResult
from pipeline.store.common import chunks
from pipeline.store.limits import aware, fits, plausible
from pipeline.store.schema import articles
from pipeline.store.views import v1_articles, v1_articles_live_blog
from pipeline.timeutil import now, utc

if TYPE_CHECKING:
    from pipeline.store.core import Store

log = logging.getLogger(__name__)


class Articles:
    """The ``articles`` table (and its v1 view, for the reader role)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._view_has_live_blog = False  # newsagg_v1_articles.live_blog seen (migration 0008)

    def live_blog_readable(self, conn: Connection) -> bool:
        """Whether the articles view has ``live_blog``: a reader may open a store its owner has
        not migrated yet (:meth:`Store.check_readable`), whose articles then read as no live blog."""
        if not self._view_has_live_blog:  # once it has the column it keeps it: no need to look again
            columns = sa_inspect(conn).get_columns(v1_articles.name)
            self._view_has_live_blog = any(c["name"] == "live_blog" for c in columns)
        return self._view_has_live_blog

    def live_blog_ids(self, article_ids: Sequence[str]) -> set[str]:
        """Which of these articles are live blogs, through the v1 view (the reader role can)."""
        found: set[str] = set()
        with self._store.begin() as conn:
            if not self.live_blog_readable(conn):
                return found
            for chunk in chunks(sorted(set(article_ids)), 500):
                query = select(v1_articles.c.article_id).where(
                    v1_articles.c.article_id.in_(chunk), v1_articles_live_blog
                )
                found.update(conn.execute(query).scalars())
        return found

    def upsert_article(self, conn: Connection, article: Article) -> UpsertResult:
        """Insert or update by canonical URL. Returns 'new', 'updated' or 'unchanged'."""
        return self.upsert_articles(conn, [article])[0]

    def upsert_articles(self, conn: Connection, batch: Sequence[Article]) -> list[UpsertResult]:
        """Insert or update a batch by canonical URL, in order, with a few statements.

        Returns 'new', 'updated' or 'unchanged' per article. An article whose text equals an
        earlier original's (content hash) is marked its exact duplicate (layer 1 of dedup): the
        earliest fetched original wins, counting the ones earlier in this batch.
        """
        from pipeline.store.changes import note_change  # change feed

        seen: set[str] = set()
        for i, article in enumerate(batch):  # a URL twice: the second sees the first's write
            if article.url in seen:
                return self.upsert_articles(conn, batch[:i]) + self.upsert_articles(conn, batch[i:])
            seen.add(article.url)
        existing: dict[str, Any] = {}
        for chunk in chunks([a.url for a in batch], 500):
            existing.update(
                (r.url, r) for r in conn.execute(select(articles).where(articles.c.url.in_(chunk)))
            )
        # originals (duplicate_of IS NULL) by content hash: {hash: {url: (fetched_at, id)}}
        originals: dict[str, dict[str, tuple[datetime, str]]] = {}
        for chunk in chunks(list({a.content_hash for a in batch}), 500):
            for r in conn.execute(
                select(
                    articles.c.url, articles.c.article_id, articles.c.content_hash, articles.c.fetched_at
                ).where(articles.c.content_hash.in_(chunk), articles.c.duplicate_of.is_(None))
            ):
                originals.setdefault(r.content_hash, {})[r.url] = (utc(r.fetched_at) or now(), r.article_id)
        results: list[UpsertResult] = []
        inserts: list[dict[str, Any]] = []
        for article in batch:
            if not fits(articles.c.url, article.url):  # never from the frontier, which refuses them
                results.append("dropped")
                continue
            values = self._store.bounds.row(
                articles,
                {
                    "source": article.source,
                    "title": article.title,
                    "authors": json.dumps(list(article.authors), ensure_ascii=False),
                    "published_at": plausible(article.published_at),
                    "language": article.language,
                    "text": article.text,
                    "content_hash": article.content_hash,
                    "live_blog": article.live_blog,
                },
            )
            others = [v for url, v in originals.get(article.content_hash, {}).items() if url != article.url]
            duplicate_of = min(others)[1] if others else None
            row = existing.get(article.url)
            if row is None:
                article_id = article.article_id
                fetched_at = self._store.bounds.value(articles.c.fetched_at, article.fetched_at) or now()
                inserts.append(
                    {
                        "article_id": article_id,
                        "url": article.url,
                        "fetched_at": fetched_at,
                        "updated_at": fetched_at,
                        "duplicate_of": duplicate_of,
                        "copy_of": None,
                        "story_id": None,
                        "dedup_sig": None,
                        **values,
                    }
                )
                note_change(conn, "article", article_id, "insert")  # change feed
                results.append("new")
            else:
                old = {k: getattr(row, k) for k in values}
                old["published_at"] = plausible(old["published_at"])
                if old == values and row.duplicate_of == duplicate_of:
                    results.append("unchanged")
                    continue
                # fetched_at stays the first fetch; updated_at is when the content last changed.
                conn.execute(
                    articles.update()
                    .where(articles.c.url == article.url)
                    .values(
                        updated_at=self._store.bounds.value(articles.c.updated_at, article.fetched_at),
                        duplicate_of=duplicate_of,
                        dedup_sig=None,
                        **values,
                    )
                )
                note_change(conn, "article", row.article_id, "update")  # change feed
                results.append("updated")
                article_id, fetched_at = row.article_id, utc(row.fetched_at) or now()
                originals.get(row.content_hash, {}).pop(article.url, None)
            if duplicate_of is None:
                originals.setdefault(article.content_hash, {})[article.url] = (fetched_at, article_id)
        if inserts:
            conn.execute(articles.insert(), inserts)
        return results

    def articles_between(self, start: datetime | None, end: datetime | None) -> list[StoredArticle]:
        """Articles whose publication (or fetch) time lies in [start, end]; all when open-ended."""
        when = func.coalesce(articles.c.published_at, articles.c.fetched_at)
        query = select(articles).order_by(articles.c.article_id)
        if start is not None:
            query = query.where(when >= aware(start))
        if end is not None:
            query = query.where(when <= aware(end))
        with self._store.begin() as conn:
            return [_article_row(r) for r in conn.execute(query)]

    def articles_to_dedup(self) -> list[StoredArticle]:
        """Articles new or changed since the last dedup (an upsert clears ``dedup_sig``)."""
        with self._store.begin() as conn:
            return [
                _article_row(r)
                for r in conn.execute(
                    select(articles).where(articles.c.dedup_sig.is_(None)).order_by(articles.c.article_id)
                )
            ]

    def articles_of_stories(
        self, story_ids: Iterable[str], known: Mapping[str, StoredArticle] | None = None
    ) -> list[StoredArticle]:
        """The articles of these stories (one query per 500 stories), in no particular order.

        ``known``: rows (as :meth:`articles_between` gives them) the caller already holds, by
        article id, whose content columns are current. For those only the columns dedup writes
        (``story_id``, ``copy_of``, ``dedup_sig``, ``change_seq``) are read, and the row returned
        is a copy of the known one with them; the others are read whole.
        """
        ids = sorted(set(story_ids))
        result: list[StoredArticle] = []
        with self._store.begin() as conn:
            if known is None:
                for chunk in chunks(ids, 500):
                    result.extend(
                        _article_row(r)
                        for r in conn.execute(select(articles).where(articles.c.story_id.in_(chunk)))
                    )
                return result
            unknown: list[str] = []
            for chunk in chunks(ids, 500):
                for r in conn.execute(
                    select(
                        articles.c.article_id,
                        articles.c.story_id,
                        articles.c.copy_of,
                        articles.c.dedup_sig,
                        articles.c.change_seq,
                    ).where(articles.c.story_id.in_(chunk))
                ):
                    row = known.get(r.article_id)
                    if row is None:
                        unknown.append(r.article_id)
                    else:
                        result.append(
                            replace(
                                row,
                                story_id=r.story_id,
                                copy_of=r.copy_of,
                                dedup_sig=r.dedup_sig,
                                change_seq=r.change_seq,
                            )
                        )
            for chunk in chunks(sorted(unknown), 500):
                result.extend(
                    _article_row(r)
                    for r in conn.execute(select(articles).where(articles.c.article_id.in_(chunk)))
                )
        return result

    def story_member_rows(self, story_ids: Sequence[str]) -> list[StoredArticle]:
        """The members of these stories with their text, read through the v1 articles view (the
        reader role can): what it takes to say why they are together when dedup has not yet."""
        return self._text_rows(v1_articles.c.story_id, story_ids)

    def article_text_rows(self, article_ids: Sequence[str]) -> list[StoredArticle]:
        """These articles with their text and story, through the v1 articles view (for
        ``newsagg explain``, which the reader role may run)."""
        return self._text_rows(v1_articles.c.article_id, article_ids)

    def _text_rows(self, key: Any, values: Sequence[str]) -> list[StoredArticle]:
        a = v1_articles.c
        rows: list[StoredArticle] = []
        with self._store.begin() as conn:
            for chunk in chunks(sorted(set(values)), 500):
                query = select(
                    a.article_id,
                    a.url,
                    a.source,
                    a.title,
                    a.published_at,
                    a.fetched_at,
                    a.language,
                    a.text,
                    a.story_id,
                ).where(key.in_(list(chunk)))
                for r in conn.execute(query.order_by(a.article_id)):
                    # as dedup reads them (_article_row), so both give a story the same evidence
                    rows.append(
                        StoredArticle(
                            article_id=r.article_id,
                            url=r.url,
                            source=r.source,
                            title=r.title,
                            published_at=plausible(r.published_at),
                            fetched_at=utc(r.fetched_at),
                            language=r.language,
                            text=r.text,
                            story_id=r.story_id,
                        )
                    )
        return rows

    def assign(self, conn: Connection, assignments: dict[str, tuple[str, str | None, str | None]]) -> int:
        """Set (story_id, copy_of, dedup_sig) per article id; returns rows changed.

        Compares first (one read per 500 articles) and writes only what differs, in one
        executemany per 500 articles.
        """
        from pipeline.store.changes import note_change  # change feed

        update = (
            articles.update()
            .where(articles.c.article_id == bindparam("b_article_id"))
            .values(
                story_id=bindparam("b_story_id"),
                copy_of=bindparam("b_copy_of"),
                dedup_sig=bindparam("b_dedup_sig"),
            )
        )
        changed = 0
        ids = sorted(assignments)
        for chunk in chunks(ids, 500):
            current = {
                r.article_id: (r.story_id, r.copy_of, r.dedup_sig)
                for r in conn.execute(
                    select(
                        articles.c.article_id, articles.c.story_id, articles.c.copy_of, articles.c.dedup_sig
                    ).where(articles.c.article_id.in_(chunk))
                )
            }
            writes: list[dict[str, Any]] = []
            for article_id in chunk:
                if current.get(article_id) != assignments[article_id]:
                    story_id, copy_of, sig = assignments[article_id]
                    writes.append(
                        {
                            "b_article_id": article_id,
                            "b_story_id": story_id,
                            "b_copy_of": copy_of,
                            "b_dedup_sig": sig,
                        }
                    )
                    if (current.get(article_id) or (None, None, None))[:2] != (story_id, copy_of):
                        note_change(conn, "article", article_id, "update")  # change feed
            if writes:
                conn.execute(update, writes)
                changed += len(writes)
        return changed


def dedup_signature(row: StoredArticle) -> str:
    """What dedup saw of an article; kept so a reader can tell which version was clustered."""
    published = row.published_at.isoformat() if row.published_at else ""
    key = "\x1f".join([row.title or "", row.content_hash, published, row.language or ""])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _article_row(r: Any) -> StoredArticle:
    return StoredArticle(
        article_id=r.article_id,
        url=r.url,
        source=r.source,
        title=r.title,
        published_at=plausible(r.published_at),  # a store written before the bounds
        fetched_at=utc(r.fetched_at),
        language=r.language,
        text=r.text,
        story_id=r.story_id,
        authors=tuple(json.loads(r.authors or "[]")),
        content_hash=r.content_hash,
        updated_at=utc(r.updated_at),
        duplicate_of=r.duplicate_of,
        copy_of=r.copy_of,
        dedup_sig=r.dedup_sig,
        change_seq=r.change_seq,
        live_blog=bool(r.live_blog),
    )
