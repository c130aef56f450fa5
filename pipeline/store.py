"""The store: SQLAlchemy Core over SQLite (embedded default, WAL) or PostgreSQL (production).

Writes compare before they write, so a rerun of the same input changes no row; every batch is one
transaction, so a failure half-way leaves the previous state.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import json
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, and_, create_engine, event, func, or_, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from pipeline.errors import ConfigError, StoreError
from pipeline.models import Article, Figure, Story, StoryArticle
from pipeline.schema import articles, drops, feed_state, figures, pages, stories, urls

MIGRATIONS = Path(__file__).with_name("migrations")


def utc(value: datetime | None) -> datetime | None:
    """Aware UTC in, aware UTC out; SQLite hands back naive datetimes that were stored as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def now() -> datetime:
    # Microseconds kept: a revision fetched within a second of the first fetch must still read
    # as later than it (a story's last_updated depends on it).
    return datetime.now(UTC)


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` as users write it and use the installed psycopg 3 driver."""
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


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


@dataclass(frozen=True, slots=True)
class StoredPage:
    url: str
    source: str
    final_url: str
    fetched_at: datetime
    content_type: str | None
    charset: str | None
    body_sha256: str
    body: bytes


class Store:
    """One database. Create with a URL; call :meth:`migrate` before use."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        try:
            parsed = make_url(self.url)
        except Exception as exc:  # sqlalchemy raises ArgumentError and friends
            raise ConfigError(f"bad store URL {url!r}: {exc}") from None
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise ConfigError(f"store URL {url!r}: only sqlite and postgresql are supported")
        self._lock_path: Path | None = None
        if self.dialect == "sqlite":
            database = parsed.database or ""
            if database and database != ":memory:":
                path = Path(database).expanduser()
                path.parent.mkdir(parents=True, exist_ok=True)
                self._lock_path = path.with_suffix(path.suffix + ".lock")
            self.engine: Engine = create_engine(self.url, connect_args={"timeout": 60})
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(self.url, pool_pre_ping=True)

    # -- lifecycle -----------------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (serialised across processes)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        try:
            with self.engine.begin() as conn:
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(4242001)"))
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot migrate store {self.safe_url}: {exc}") from exc

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction; any database error becomes a StoreError after the rollback."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"store {self.safe_url}: {exc.__class__.__name__}: {exc}") from exc

    @contextlib.contextmanager
    def run_lock(self) -> Iterator[None]:
        """Serialise whole runs on one store: a PostgreSQL advisory lock, or a lock file."""
        if self.dialect == "postgresql":
            with self.engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(4242002)"))
                conn.commit()
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(4242002)"))
                    conn.commit()
        elif self._lock_path is not None:
            with open(self._lock_path, "a+") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
        else:
            yield

    # -- feed state ----------------------------------------------------------------------------

    def feed_validators(self, url: str) -> tuple[str | None, str | None]:
        with self.begin() as conn:
            row = conn.execute(select(feed_state.c.etag, feed_state.c.last_modified)
                               .where(feed_state.c.url == url)).first()
        return (row.etag, row.last_modified) if row else (None, None)

    def save_feed_validators(self, url: str, source: str, etag: str | None,
                             last_modified: str | None) -> None:
        with self.begin() as conn:
            row = conn.execute(select(feed_state).where(feed_state.c.url == url)).first()
            if row is None:
                conn.execute(feed_state.insert().values(url=url, source=source, etag=etag,
                                                        last_modified=last_modified))
            elif (row.etag, row.last_modified, row.source) != (etag, last_modified, source):
                conn.execute(feed_state.update().where(feed_state.c.url == url)
                             .values(etag=etag, last_modified=last_modified, source=source))

    # -- frontier ------------------------------------------------------------------------------

    def discover(self, found: Iterable[Discovered]) -> tuple[int, int]:
        """Add new URLs as pending; re-queue known ones whose lastmod moved. Returns (new, requeued)."""
        found = list({d.url: d for d in found}.values())
        new = requeued = 0
        if not found:
            return 0, 0
        with self.begin() as conn:
            for chunk in _chunks(found, 500):
                known = {r.url: r for r in conn.execute(
                    select(urls.c.url, urls.c.lastmod, urls.c.status, urls.c.fingerprint)
                    .where(urls.c.url.in_([d.url for d in chunk])))}
                inserts = []
                for d in chunk:
                    row = known.get(d.url)
                    if row is None:
                        inserts.append({"url": d.url, "source": d.source, "discovered_at": now(),
                                        "hint_title": d.title, "hint_published_at": utc(d.published_at),
                                        "lastmod": utc(d.lastmod), "fingerprint": d.fingerprint,
                                        "status": "pending",
                                        "attempts": 0, "error": None})
                        continue
                    old, moved = utc(row.lastmod), utc(d.lastmod)
                    newer = moved is not None and (old is None or moved > old)
                    # Many feeds revise an entry (headline, summary) without any date: the
                    # entry's fingerprint changing is then the only sign the article changed.
                    revised = d.fingerprint is not None and row.fingerprint not in (None, d.fingerprint)
                    if (newer or revised) and row.status in ("fetched", "dropped"):
                        conn.execute(urls.update().where(urls.c.url == d.url).values(
                            lastmod=moved if newer else old, fingerprint=d.fingerprint or row.fingerprint,
                            status="pending", attempts=0, error=None))
                        requeued += 1
                if inserts:
                    conn.execute(urls.insert(), inserts)
                    new += len(inserts)
        return new, requeued

    def known_urls(self, candidates: Iterable[str]) -> dict[str, datetime | None]:
        """Which of these URLs are already in the frontier, with their lastmod."""
        result: dict[str, datetime | None] = {}
        with self.begin() as conn:
            for chunk in _chunks(list(candidates), 500):
                for row in conn.execute(select(urls.c.url, urls.c.lastmod).where(urls.c.url.in_(chunk))):
                    result[row.url] = utc(row.lastmod)
        return result

    def pending(self, sources: Sequence[str] | None = None, limit: int | None = None,
                max_attempts: int = 3) -> list[PendingUrl]:
        query = (select(urls.c.url, urls.c.source, urls.c.attempts, pages.c.etag,
                        pages.c.last_modified)
                 .select_from(urls.outerjoin(pages, pages.c.url == urls.c.url))
                 .where(or_(urls.c.status == "pending",
                            and_(urls.c.status == "failed", urls.c.attempts < max_attempts)))
                 .order_by(urls.c.url))
        if sources is not None:
            query = query.where(urls.c.source.in_(list(sources)))
        if limit is not None:
            query = query.limit(limit)
        with self.begin() as conn:
            return [PendingUrl(r.url, r.source, r.attempts, r.etag, r.last_modified)
                    for r in conn.execute(query)]

    def mark_url(self, conn: Connection, url: str, status: str, error: str | None = None) -> None:
        values: dict[str, Any] = {"status": status, "error": error}
        if status == "failed":
            values["attempts"] = urls.c.attempts + 1
        conn.execute(urls.update().where(urls.c.url == url).values(**values))

    # -- pages ---------------------------------------------------------------------------------

    def save_page(self, conn: Connection, *, url: str, source: str, final_url: str, body: bytes,
                  content_type: str | None, charset: str | None, etag: str | None,
                  last_modified: str | None) -> bool:
        """Keep the raw page (gzip). Returns whether the stored body changed."""
        sha = hashlib.sha256(body).hexdigest()
        row = conn.execute(select(pages.c.body_sha256, pages.c.etag, pages.c.last_modified)
                           .where(pages.c.url == url)).first()
        values = {"source": source, "final_url": final_url, "fetched_at": now(),
                  "content_type": content_type, "charset": charset, "etag": etag,
                  "last_modified": last_modified, "body_sha256": sha,
                  "body_gz": gzip.compress(body, compresslevel=6, mtime=0)}
        if row is None:
            conn.execute(pages.insert().values(url=url, cleaned_sha256=None, **values))
            return True
        if row.body_sha256 != sha:
            conn.execute(pages.update().where(pages.c.url == url).values(**values))
            return True
        if (row.etag, row.last_modified) != (etag, last_modified):
            conn.execute(pages.update().where(pages.c.url == url)
                         .values(etag=etag, last_modified=last_modified))
        return False

    def pages_to_clean(self, sources: Sequence[str] | None = None, limit: int = 500,
                       after_url: str = "", force: bool = False) -> list[StoredPage]:
        query = select(pages).where(pages.c.url > after_url).order_by(pages.c.url).limit(limit)
        if not force:
            query = query.where(or_(pages.c.cleaned_sha256.is_(None),
                                    pages.c.cleaned_sha256 != pages.c.body_sha256))
        if sources is not None:
            query = query.where(pages.c.source.in_(list(sources)))
        with self.begin() as conn:
            rows = conn.execute(query).all()
        return [StoredPage(r.url, r.source, r.final_url, utc(r.fetched_at) or now(), r.content_type,
                           r.charset, r.body_sha256, _gunzip(r.body_gz)) for r in rows]

    def mark_cleaned(self, conn: Connection, url: str, sha: str) -> None:
        conn.execute(pages.update().where(pages.c.url == url).values(cleaned_sha256=sha))

    # -- drops ---------------------------------------------------------------------------------

    def record_drop(self, conn: Connection, url: str, source: str, stage: str, reason: str) -> None:
        reason = reason[:2000]
        row = conn.execute(select(drops.c.reason).where(drops.c.url == url, drops.c.stage == stage)).first()
        if row is None:
            conn.execute(drops.insert().values(url=url, stage=stage, source=source, reason=reason,
                                               at=now()))
        elif row.reason != reason:
            conn.execute(drops.update().where(drops.c.url == url, drops.c.stage == stage)
                         .values(reason=reason, at=now(), source=source))

    def clear_drop(self, conn: Connection, url: str) -> None:
        conn.execute(drops.delete().where(drops.c.url == url))

    def drop_reasons(self) -> list[tuple[str, str, str, str]]:
        with self.begin() as conn:
            return [(r.url, r.source, r.stage, r.reason) for r in
                    conn.execute(select(drops).order_by(drops.c.stage, drops.c.url))]

    # -- articles ------------------------------------------------------------------------------

    def upsert_article(self, conn: Connection, article: Article) -> str:
        """Insert or update by canonical URL. Returns 'new', 'updated' or 'unchanged'."""
        from pipeline.changes import note_change  # change feed (issue 7)

        row = conn.execute(select(articles).where(articles.c.url == article.url)).first()
        values = {"source": article.source, "title": article.title,
                  "authors": json.dumps(list(article.authors), ensure_ascii=False),
                  "published_at": utc(article.published_at), "language": article.language,
                  "text": article.text, "content_hash": article.content_hash}
        duplicate_of = self._exact_duplicate_of(conn, article)
        if row is None:
            conn.execute(articles.insert().values(
                article_id=article.article_id, url=article.url, fetched_at=utc(article.fetched_at),
                updated_at=utc(article.fetched_at), duplicate_of=duplicate_of, copy_of=None,
                story_id=None, dedup_sig=None, **values))
            note_change(conn, "article", article.article_id, "insert")  # change feed (issue 7)
            return "new"
        old = {k: getattr(row, k) for k in values}
        old["published_at"] = utc(old["published_at"])
        if old == values and row.duplicate_of == duplicate_of:
            return "unchanged"
        # fetched_at stays the first fetch; updated_at is when the content last changed.
        conn.execute(articles.update().where(articles.c.url == article.url).values(
            updated_at=utc(article.fetched_at), duplicate_of=duplicate_of, dedup_sig=None,
            **values))
        note_change(conn, "article", row.article_id, "update")  # change feed (issue 7)
        return "updated"

    def _exact_duplicate_of(self, conn: Connection, article: Article) -> str | None:
        """The earliest other article with the same text, if any (exact dedup by content hash)."""
        row = conn.execute(
            select(articles.c.article_id).where(articles.c.content_hash == article.content_hash,
                                                articles.c.url != article.url,
                                                articles.c.duplicate_of.is_(None))
            .order_by(articles.c.fetched_at, articles.c.article_id).limit(1)).first()
        return row.article_id if row else None

    def articles_between(self, start: datetime | None, end: datetime | None) -> list[dict[str, Any]]:
        """Articles whose publication (or fetch) time lies in [start, end]; all when open-ended."""
        when = func.coalesce(articles.c.published_at, articles.c.fetched_at)
        query = select(articles).order_by(articles.c.article_id)
        if start is not None:
            query = query.where(when >= start)
        if end is not None:
            query = query.where(when <= end)
        with self.begin() as conn:
            return [_article_row(r) for r in conn.execute(query)]

    def articles_to_dedup(self) -> list[dict[str, Any]]:
        """Articles new or changed since the last dedup (an upsert clears ``dedup_sig``)."""
        with self.begin() as conn:
            return [_article_row(r) for r in conn.execute(
                select(articles).where(articles.c.dedup_sig.is_(None))
                .order_by(articles.c.article_id))]

    def articles_of_stories(self, story_ids: Iterable[str]) -> list[dict[str, Any]]:
        ids = sorted(set(story_ids))
        result: list[dict[str, Any]] = []
        with self.begin() as conn:
            for chunk in _chunks(ids, 500):
                result.extend(_article_row(r) for r in conn.execute(
                    select(articles).where(articles.c.story_id.in_(chunk))))
        return result

    def counts(self) -> dict[str, int]:
        with self.begin() as conn:
            return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                    for t in (urls, pages, articles, drops, stories, figures)}

    # -- stories -------------------------------------------------------------------------------

    def stories(self, since: datetime | None = None, story_ids: Sequence[str] | None = None,
                limit: int | None = None) -> list[Story]:
        query = select(stories).order_by(stories.c.last_updated.desc(), stories.c.story_id)
        if since is not None:
            query = query.where(stories.c.last_updated >= since)
        if story_ids is not None:
            query = query.where(stories.c.story_id.in_(list(story_ids)))
        if limit is not None:
            query = query.limit(limit)
        with self.begin() as conn:
            rows = conn.execute(query).all()
            ids = [r.story_id for r in rows]
            members: dict[str, list[StoryArticle]] = {i: [] for i in ids}
            figs: dict[str, list[Figure]] = {i: [] for i in ids}
            for chunk in _chunks(ids, 500):
                for a in conn.execute(
                        select(articles.c.article_id, articles.c.url, articles.c.source,
                               articles.c.title, articles.c.published_at, articles.c.story_id,
                               articles.c.copy_of, articles.c.duplicate_of)
                        .where(articles.c.story_id.in_(chunk))
                        .order_by(func.coalesce(articles.c.published_at, articles.c.fetched_at),
                                  articles.c.article_id)):
                    members[a.story_id].append(StoryArticle(
                        a.article_id, a.url, a.source, a.title, utc(a.published_at),
                        a.copy_of or a.duplicate_of))
                for f in conn.execute(select(figures).where(figures.c.story_id.in_(chunk))
                                      .order_by(figures.c.reported_at, figures.c.kind,
                                                figures.c.source, figures.c.value)):
                    figs[f.story_id].append(Figure(f.kind, f.value, f.source, f.url,
                                                   utc(f.reported_at)))
        return [Story(r.story_id, r.title, r.summary, utc(r.first_seen) or now(),
                      utc(r.last_updated) or now(), tuple(members[r.story_id]),
                      tuple(figs[r.story_id])) for r in rows]

    def assign(self, conn: Connection,
               assignments: dict[str, tuple[str, str | None, str | None]]) -> int:
        """Set (story_id, copy_of, dedup_sig) per article id; returns rows changed."""
        from pipeline.changes import note_change  # change feed (issue 7)

        changed = 0
        ids = sorted(assignments)
        for chunk in _chunks(ids, 500):
            current = {r.article_id: (r.story_id, r.copy_of, r.dedup_sig) for r in conn.execute(
                select(articles.c.article_id, articles.c.story_id, articles.c.copy_of,
                       articles.c.dedup_sig)
                .where(articles.c.article_id.in_(chunk)))}
            for article_id in chunk:
                if current.get(article_id) != assignments[article_id]:
                    story_id, copy_of, sig = assignments[article_id]
                    conn.execute(articles.update().where(articles.c.article_id == article_id)
                                 .values(story_id=story_id, copy_of=copy_of, dedup_sig=sig))
                    if (current.get(article_id) or (None, None, None))[:2] != (story_id, copy_of):
                        note_change(conn, "article", article_id, "update")  # change feed (issue 7)
                    changed += 1
        return changed

    def save_story(self, conn: Connection, story: Story, best_article_id: str | None,
                   story_figures: Sequence[tuple[str, Figure]]) -> str:
        """Write a story and its figures if they differ. Returns 'new', 'updated' or 'unchanged'."""
        values = {"title": story.title, "summary": story.summary,
                  "best_article_id": best_article_id, "first_seen": utc(story.first_seen),
                  "last_updated": utc(story.last_updated), "article_count": len(story.articles)}
        row = conn.execute(select(stories).where(stories.c.story_id == story.story_id)).first()
        status = "unchanged"
        if row is None:
            conn.execute(stories.insert().values(story_id=story.story_id, **values))
            status = "new"
        else:
            old = {k: getattr(row, k) for k in values}
            old["first_seen"], old["last_updated"] = utc(old["first_seen"]), utc(old["last_updated"])
            if old != values:
                conn.execute(stories.update().where(stories.c.story_id == story.story_id)
                             .values(**values))
                status = "updated"
        wanted = {(aid, f.kind, f.value): f for aid, f in story_figures}
        have = {(r.article_id, r.kind, r.value): r for r in conn.execute(
            select(figures).where(figures.c.story_id == story.story_id))}
        for key in have.keys() - wanted.keys():
            conn.execute(figures.delete().where(figures.c.article_id == key[0],
                                                figures.c.kind == key[1], figures.c.value == key[2]))
        for key in wanted.keys() - have.keys():
            f = wanted[key]
            conn.execute(figures.delete().where(figures.c.article_id == key[0],
                                                figures.c.kind == key[1], figures.c.value == key[2]))
            conn.execute(figures.insert().values(article_id=key[0], kind=f.kind, value=f.value,
                                                 story_id=story.story_id, source=f.source,
                                                 url=f.url, reported_at=utc(f.reported_at)))
        if (wanted.keys() ^ have.keys()) and status == "unchanged":
            status = "updated"
        if status != "unchanged":  # change feed (issue 7)
            from pipeline.changes import note_change

            note_change(conn, "story", story.story_id, "insert" if status == "new" else "update")
        return status

    def delete_empty_stories(self, conn: Connection) -> int:
        used = select(articles.c.story_id).where(articles.c.story_id.is_not(None)).distinct()
        from pipeline.changes import note_change  # change feed (issue 7)

        for story_id in conn.execute(select(stories.c.story_id)
                                     .where(stories.c.story_id.not_in(used))).scalars():
            note_change(conn, "story", story_id, "delete")  # change feed (issue 7)
        conn.execute(figures.delete().where(figures.c.story_id.not_in(used)))
        result = conn.execute(stories.delete().where(stories.c.story_id.not_in(used)))
        return result.rowcount or 0


def dedup_signature(row: dict[str, Any]) -> str:
    """What dedup saw of an article; kept so a reader can tell which version was clustered."""
    published = row["published_at"].isoformat() if row["published_at"] else ""
    key = "\x1f".join([row["title"] or "", row["content_hash"], published, row["language"] or ""])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _article_row(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    data["authors"] = tuple(json.loads(data["authors"] or "[]"))
    for key in ("published_at", "fetched_at", "updated_at"):
        data[key] = utc(data[key])
    return data


def _gunzip(blob: bytes) -> bytes:
    try:
        return gzip.decompress(blob)
    except (OSError, zlib.error, EOFError) as exc:
        raise StoreError(f"stored page is corrupt: {exc}") from None


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def url_hints(store: Store, candidates: Sequence[str]) -> dict[str, tuple[str | None, datetime | None]]:
    """The feed's title and date for these URLs: a fallback when a page lacks its own."""
    result: dict[str, tuple[str | None, datetime | None]] = {}
    with store.begin() as conn:
        for chunk in _chunks(list(candidates), 500):
            for row in conn.execute(select(urls.c.url, urls.c.hint_title, urls.c.hint_published_at)
                                    .where(urls.c.url.in_(chunk))):
                result[row.url] = (row.hint_title, utc(row.hint_published_at))
    return result
