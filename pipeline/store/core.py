"""The store: SQLAlchemy Core over SQLite (embedded default, WAL) or PostgreSQL (production).

This module keeps the engine, transactions, migrations and the run lock; each table group has
its repository (frontier, pages, articles, stories, tokens, changes), and :class:`Store` is the
facade callers use.

Writes compare before they write, so a rerun of the same input changes no row; every batch is one
transaction, so a failure half-way leaves the previous state.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import socket
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    event,
    func,
    select,
    text,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from pipeline.errors import ConfigError, RunLockLost, StoreError
from pipeline.models import (
    Article,
    DropStage,
    SaveResult,
    StoredArticle,
    Story,
    UpsertResult,
    UrlStatus,
)
from pipeline.store.articles import Articles, dedup_signature
from pipeline.store.changes import Change, ChangeFeed
from pipeline.store.frontier import Discovered, Frontier, PendingUrl
from pipeline.store.limits import Bounds
from pipeline.store.packing import PackedBody, pack, unpack
from pipeline.store.pages import Pages, StoredPage
from pipeline.store.schema import (
    READ_VIEWS,
    articles,
    drops,
    figures,
    pages,
    stories,
    urls,
)
from pipeline.store.schema import run_lock as run_lock_table
from pipeline.store.stories import Stories, StoryBatch
from pipeline.store.tokens import Tokens
from pipeline.timeutil import now

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")
# How long a run waits for another run's lock before it fails naming the holder, and a migration
# for another process's migration.
RUN_LOCK_WAIT_S = 3600.0
MIGRATE_WAIT_S = 300.0


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` as users write it and use the installed psycopg 3 driver."""
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


@dataclass(frozen=True, slots=True)
class Repositories:
    """One repository per table group, all sharing the store's engine, transactions and bounds."""

    frontier: Frontier
    pages: Pages
    articles: Articles
    stories: Stories
    tokens: Tokens
    changes: ChangeFeed


class Store:
    """One database. Create with a URL; writers call :meth:`migrate` before use, readers
    :meth:`check_readable` (which writes nothing).

    The table methods below delegate to :attr:`repos`: one facade keeps every caller's import
    and call as it was, while the SQL of each table group lives in its own module."""

    @staticmethod
    def parse_url(url: str) -> URL:
        """The store URL as the store reads it; ConfigError when it is not one. Opens nothing."""
        try:
            parsed = make_url(normalise_url(url))
        except Exception as exc:  # sqlalchemy raises ArgumentError and friends
            raise ConfigError(f"bad store URL {url!r}: {exc}") from None
        if parsed.get_backend_name() not in ("sqlite", "postgresql"):
            raise ConfigError(f"store URL {url!r}: only sqlite and postgresql are supported")
        return parsed

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self.url = normalise_url(url)
        parsed = self.parse_url(url)
        self.dialect = parsed.get_backend_name()
        self.read_only = read_only
        self.path: Path | None = None  # the SQLite file
        self._lock_path: Path | None = None
        self._fence: int | None = None  # PostgreSQL: the run lock's token while this store holds it
        self.run_lock_wait_s = RUN_LOCK_WAIT_S
        self.bounds = Bounds()  # every value written is made to fit its column (pipeline.store.limits)
        if self.dialect == "sqlite":
            database = parsed.database or ""
            uri = str(parsed.query.get("uri", "")).lower() in ("true", "1")
            if uri and database.startswith("file:"):  # file:PATH?mode=ro&uri=true
                database = database[len("file:") :].split("?", 1)[0]
                self.read_only = self.read_only or parsed.query.get("mode") == "ro"
            if database and database != ":memory:" and not database.startswith("file::memory:"):
                self.path = Path(database).expanduser()
                if not self.read_only:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                self._lock_path = self.path.with_suffix(self.path.suffix + ".lock")
            self.engine: Engine = create_engine(self.url, connect_args={"timeout": 60})
            event.listen(
                self.engine, "connect", _sqlite_pragmas if not self.read_only else _sqlite_read_pragmas
            )
        else:
            # Our own sessions are exempt from the server's idle timeouts: the run lock's
            # connection idles for a whole run by design, and a pooled one is pinged before use.
            options = "-c idle_in_transaction_session_timeout=0"
            if self.read_only:
                options += " -c default_transaction_read_only=on"
            self.engine = create_engine(self.url, pool_pre_ping=True, connect_args={"options": options})
            event.listen(self.engine, "connect", _pg_session)

        self.repos = Repositories(
            Frontier(self), Pages(self), Articles(self), Stories(self), Tokens(self), ChangeFeed(self)
        )

    # -- lifecycle -----------------------------------------------------------------------------

    def _alembic(self) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return cfg

    def _versions(self) -> tuple[str, set[str]]:
        """The head revision and every revision this newsagg knows."""
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(self._alembic())
        return str(script.get_current_head()), {r.revision for r in script.walk_revisions()}

    @staticmethod
    def _current(conn: Connection) -> str | None:
        from alembic.runtime.migration import MigrationContext

        return MigrationContext.configure(conn).get_current_revision()

    @staticmethod
    @contextlib.contextmanager
    def _quiet_alembic() -> Iterator[None]:
        """Alembic's INFO lines ("Context impl", plugin setup, each step) only when debugging."""
        logger = logging.getLogger("alembic")
        level = logger.level
        if not logging.getLogger().isEnabledFor(logging.DEBUG):
            logger.setLevel(logging.WARNING)
        try:
            yield
        finally:
            logger.setLevel(level)

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision.

        Nothing is locked or logged when it is there already; otherwise one process at a time
        migrates (SQLite: a lock file; PostgreSQL: a transaction advisory lock, waited for at most
        :data:`MIGRATE_WAIT_S`), and one line says what ran."""
        with self._quiet_alembic():
            self._migrate()

    def _migrate(self) -> None:
        from alembic import command

        if self.read_only:
            raise ConfigError(f"store {self.safe_url} is opened read-only: it cannot be migrated")
        head, _ = self._versions()
        try:
            with self.engine.connect() as conn:
                if self._current(conn) == head:
                    return
            with self._migrate_file_lock(), self.engine.begin() as conn:
                if self.dialect == "postgresql":
                    conn.execute(text(f"SET LOCAL lock_timeout = {int(MIGRATE_WAIT_S * 1000)}"))
                    conn.execute(text("SELECT pg_advisory_xact_lock(4242001)"))
                before = self._current(conn)
                if before == head:  # another process migrated while we waited
                    return
                cfg = self._alembic()
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
            log.info("store %s migrated from %s to %s", self.safe_url, before or "empty", head)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot migrate store {self.safe_url}: {_brief(exc)}") from exc

    @contextlib.contextmanager
    def _migrate_file_lock(self) -> Iterator[None]:
        """SQLite: two processes opening a new store must not both create its tables."""
        if self._lock_path is None:
            yield
            return
        with open(self._lock_path.with_suffix(".migrate-lock"), "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def check_readable(self) -> None:
        """What a read command needs before it reads: a newsagg store at the URL, whose schema this
        version can read. Writes nothing, creates nothing and needs no more than the rights of
        the reader role (``newsagg db grant-reader``).

        Raises ConfigError when there is no store there, StoreError when it cannot be read."""
        if self.path is not None and not self.path.is_file():
            raise ConfigError(f"no store at {self.safe_url} (no such file)")
        with self._quiet_alembic():
            head, known = self._versions()
        try:
            with self.engine.connect() as conn:
                tables = set(sa_inspect(conn).get_table_names()) | set(sa_inspect(conn).get_view_names())
                if "alembic_version" not in tables:
                    raise ConfigError(f"no store at {self.safe_url} (no newsagg tables there)")
                try:
                    version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
                except SQLAlchemyError:  # the reader role may read the views only
                    conn.rollback()
                    version = None
                    missing = [v for v in READ_VIEWS if v not in tables]
                    if missing:
                        raise StoreError(
                            f"store {self.safe_url} lacks the read views {', '.join(missing)}: "
                            "run newsagg once with the owner's role to migrate it"
                        ) from None
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read store {self.safe_url}: {_brief(exc)}") from exc
        if version is not None and version not in known:
            raise StoreError(
                f"store {self.safe_url} has schema {version}, newer than this newsagg knows ({head}): "
                "upgrade newsagg to read it"
            )
        if version is not None and version != head:
            log.debug("store %s has schema %s (newest %s); reading what it has", self.safe_url, version, head)

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
        """One transaction; any database error becomes a StoreError after the rollback.

        While this store holds the PostgreSQL run lock each transaction first checks that no
        other run has taken it since (see :meth:`run_lock`)."""
        try:
            with self.engine.begin() as conn:
                if self._fence is not None:
                    self._check_fence(conn, self._fence)
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"store {self.safe_url}: {_brief(exc)}") from exc

    def _check_fence(self, conn: Connection, token: int) -> None:
        held = conn.execute(
            select(run_lock_table.c.id)
            .where(run_lock_table.c.id == 1, run_lock_table.c.token == token)
            .with_for_update(read=True, key_share=True)  # FOR KEY SHARE
        ).first()
        if held is None:
            raise RunLockLost(
                f"this run lost the run lock on {self.safe_url} (its connection ended) and another "
                "run has taken it: stopping before writing anything more"
            )

    @property
    def run_lock_token(self) -> int | None:
        """The token of the run lock this store holds (PostgreSQL), for the run's other processes."""
        return self._fence

    def follow_run_lock(self, token: int | None) -> None:
        """Check every transaction against a run lock another process of this run holds (the
        crawl's child writes under its parent's lock): once another run has taken it, writing
        stops with :class:`RunLockLost`."""
        if self.dialect == "postgresql":
            self._fence = token

    @contextlib.contextmanager
    def run_lock(self, wait_s: float | None = None) -> Iterator[None]:
        """Serialise whole runs on one store.

        PostgreSQL: a row lock on ``run_lock`` held by one connection for the whole run. Taking
        it needs UPDATE on that table, which the reader role lacks, so no reader can block a
        run. Each taker writes a fresh random token to the row (and clears it when done, so a
        finished run leaves the row as it found it); this run's transactions check the token
        (:meth:`begin`), so if the lock's connection is terminated and another run takes the
        lock, this run stops writing instead of running alongside it. A run that waits longer
        than ``wait_s`` (default :data:`RUN_LOCK_WAIT_S`) fails with a message naming the holder.
        SQLite: an exclusive lock on a file beside the database, released by the kernel if the
        process dies.
        """
        wait = self.run_lock_wait_s if wait_s is None else wait_s
        if self.dialect == "postgresql":
            with self._pg_run_lock(wait):
                yield
        elif self._lock_path is not None:
            with open(self._lock_path, "a+") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
        else:
            yield

    @contextlib.contextmanager
    def _pg_run_lock(self, wait: float) -> Iterator[None]:
        holder = f"newsagg run on {socket.gethostname()} pid {os.getpid()} since {now():%Y-%m-%d %H:%M:%S}Z"
        conn = self.engine.connect()
        try:
            try:
                conn.execute(text("SELECT set_config('application_name', :h, false)"), {"h": holder[:63]})
                conn.execute(text(f"SET lock_timeout = {max(1, int(wait * 1000))}"))
                conn.commit()
                token = self._take_run_lock(conn, holder, wait)
            except BaseException:
                conn.close()
                raise
            self._fence = token
            try:
                yield
            finally:
                self._fence = None
                try:
                    conn.execute(  # still holding the row: nobody else can have changed it
                        run_lock_table.update()
                        .where(run_lock_table.c.id == 1, run_lock_table.c.token == token)
                        .values(token=0, holder=None, since=None)
                    )
                    conn.commit()  # ends the transaction that holds the row lock
                    conn.close()
                except SQLAlchemyError as exc:  # its backend was terminated: the lock is gone anyway
                    log.warning(
                        "the run lock's connection to %s had ended: %s", self.safe_url, exc.__class__.__name__
                    )
                    with contextlib.suppress(Exception):
                        conn.invalidate()
        except StoreError:
            raise
        except SQLAlchemyError as exc:
            raise StoreError(f"run lock on {self.safe_url}: {_brief(exc)}") from exc

    def _take_run_lock(self, conn: Connection, holder: str, wait: float) -> int:
        """Write a new token under FOR UPDATE and commit, then hold the row (FOR NO KEY UPDATE,
        which the fence's KEY SHARE does not conflict with) until the run ends."""
        from sqlalchemy.exc import DBAPIError

        for _ in range(3):
            try:
                row = conn.execute(
                    select(run_lock_table.c.token).where(run_lock_table.c.id == 1).with_for_update()
                ).first()
                if row is None:
                    raise StoreError(f"store {self.safe_url} has no run_lock row: migrate it first")
                token = secrets.randbits(62) + 1
                conn.execute(
                    run_lock_table.update()
                    .where(run_lock_table.c.id == 1)
                    .values(token=token, holder=holder, since=now())
                )
                conn.commit()
                again = conn.execute(
                    select(run_lock_table.c.token)
                    .where(run_lock_table.c.id == 1)
                    .with_for_update(key_share=True)  # FOR NO KEY UPDATE
                ).scalar_one()
            except DBAPIError as exc:
                conn.rollback()
                code = getattr(exc.orig, "sqlstate", None)
                if code == "55P03":  # lock_not_available: lock_timeout passed
                    raise StoreError(
                        f"another run holds the run lock on {self.safe_url} ({self._holder(conn)}); "
                        f"waited {wait:.0f} s"
                    ) from None
                if code == "42501":  # insufficient_privilege
                    raise StoreError(
                        f"this role cannot take the run lock on {self.safe_url}: runs need the owner's role"
                    ) from None
                raise
            if again == token:
                return token
            conn.rollback()  # another run got in between the commit and the hold: queue again
        raise StoreError(f"could not take the run lock on {self.safe_url}: other runs keep taking it")

    def _holder(self, conn: Connection) -> str:
        """Who holds the run lock, as the holder named itself (its application_name)."""
        try:
            names = conn.execute(
                text(
                    "SELECT application_name, pid, backend_start FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name LIKE 'newsagg run on %' "
                    "AND pid <> pg_backend_pid()"
                )
            ).all()
            conn.rollback()
        except SQLAlchemyError:
            return "holder unknown"
        return "; ".join(f"{r.application_name}, backend pid {r.pid}" for r in names) or "holder unknown"

    def counts(self) -> dict[str, int]:
        with self.begin() as conn:
            return {
                t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (urls, pages, articles, drops, stories, figures)
            }

    # -- the frontier (urls, feed state) -----------------------------------------------------------

    def feed_validators(self, url: str) -> tuple[str | None, str | None]:
        return self.repos.frontier.feed_validators(url)

    def save_feed_validators(
        self, url: str, source: str, etag: str | None, last_modified: str | None
    ) -> None:
        self.repos.frontier.save_feed_validators(url, source, etag, last_modified)

    def discovery_validators(self, url: str) -> tuple[str | None, str | None]:
        return self.repos.frontier.discovery_validators(url)

    def discovery_state(
        self, url: str, max_bytes: int | None = None
    ) -> tuple[str | None, str | None, bytes | None, str | None]:
        return self.repos.frontier.discovery_state(url, max_bytes)

    def save_discovery_state(
        self,
        url: str,
        source: str,
        etag: str | None,
        last_modified: str | None,
        body: bytes | None,
        content_type: str | None,
    ) -> bool:
        return self.repos.frontier.save_discovery_state(url, source, etag, last_modified, body, content_type)

    def discover(self, found: Iterable[Discovered]) -> tuple[int, int]:
        return self.repos.frontier.discover(found)

    def known_urls(self, candidates: Iterable[str]) -> dict[str, datetime | None]:
        return self.repos.frontier.known_urls(candidates)

    def pending(
        self, sources: Sequence[str] | None = None, limit: int | None = None, max_attempts: int = 3
    ) -> list[PendingUrl]:
        return self.repos.frontier.pending(sources, limit, max_attempts)

    def mark_url(self, conn: Connection, url: str, status: UrlStatus, error: str | None = None) -> None:
        self.repos.frontier.mark_url(conn, url, status, error)

    def fail_url(
        self, conn: Connection, url: str, error: str, *, retryable: bool, max_attempts: int
    ) -> UrlStatus:
        return self.repos.frontier.fail_url(conn, url, error, retryable=retryable, max_attempts=max_attempts)

    # -- pages and drops ---------------------------------------------------------------------------

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
        return self.repos.pages.save_page(
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

    def page_urls_to_clean(
        self, sources: Sequence[str], after_url: str = "", last_url: str | None = None
    ) -> list[str]:
        return self.repos.pages.page_urls_to_clean(sources, after_url, last_url)

    def pages_to_clean(
        self, sources: Sequence[str] | None = None, limit: int = 500, after_url: str = "", force: bool = False
    ) -> list[StoredPage]:
        return self.repos.pages.pages_to_clean(sources, limit, after_url, force)

    def page_keys_fetched_since(
        self, since: datetime, sources: Sequence[str] | None = None
    ) -> list[tuple[str, str]]:
        return self.repos.pages.page_keys_fetched_since(since, sources)

    def pages_by_url(self, wanted: Sequence[str]) -> list[StoredPage]:
        return self.repos.pages.pages_by_url(wanted)

    def mark_cleaned(self, conn: Connection, done: Sequence[tuple[str, str]]) -> None:
        self.repos.pages.mark_cleaned(conn, done)

    def record_drop(self, conn: Connection, url: str, source: str, stage: DropStage, reason: str) -> None:
        self.repos.pages.record_drop(conn, url, source, stage, reason)

    def clear_drop(self, conn: Connection, url: str) -> None:
        self.repos.pages.clear_drop(conn, url)

    def clear_drops(self, conn: Connection, done: Sequence[str]) -> None:
        self.repos.pages.clear_drops(conn, done)

    def drop_reasons(self) -> list[tuple[str, str, str, str]]:
        return self.repos.pages.drop_reasons()

    # -- articles ----------------------------------------------------------------------------------

    def upsert_article(self, conn: Connection, article: Article) -> UpsertResult:
        return self.repos.articles.upsert_article(conn, article)

    def upsert_articles(self, conn: Connection, batch: Sequence[Article]) -> list[UpsertResult]:
        return self.repos.articles.upsert_articles(conn, batch)

    def articles_between(self, start: datetime | None, end: datetime | None) -> list[StoredArticle]:
        return self.repos.articles.articles_between(start, end)

    def articles_to_dedup(self) -> list[StoredArticle]:
        return self.repos.articles.articles_to_dedup()

    def articles_of_stories(
        self, story_ids: Iterable[str], known: Mapping[str, StoredArticle] | None = None
    ) -> list[StoredArticle]:
        return self.repos.articles.articles_of_stories(story_ids, known)

    def story_member_rows(self, story_ids: Sequence[str]) -> list[StoredArticle]:
        return self.repos.articles.story_member_rows(story_ids)

    def article_text_rows(self, article_ids: Sequence[str]) -> list[StoredArticle]:
        return self.repos.articles.article_text_rows(article_ids)

    def live_blog_ids(self, article_ids: Sequence[str]) -> set[str]:
        return self.repos.articles.live_blog_ids(article_ids)

    def assign(self, conn: Connection, assignments: dict[str, tuple[str, str | None, str | None]]) -> int:
        return self.repos.articles.assign(conn, assignments)

    # -- stories, figures, evidence ----------------------------------------------------------------

    def stories(
        self,
        since: datetime | None = None,
        story_ids: Sequence[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Story]:
        return self.repos.stories.stories(since, story_ids, limit, offset)

    def story_ids(self, limit: int, offset: int = 0, since: datetime | None = None) -> list[str]:
        return self.repos.stories.story_ids(limit, offset, since)

    def save_stories(
        self,
        conn: Connection,
        items: Sequence[Story],
        evidence_keys: Mapping[str, str] | None = None,
    ) -> list[SaveResult]:
        return self.repos.stories.save_stories(conn, items, evidence_keys)

    def save_story(
        self,
        conn: Connection,
        story: Story,
        batch: StoryBatch | None = None,
        evidence_key: str | None = None,
    ) -> SaveResult:
        return self.repos.stories.save_story(conn, story, batch, evidence_key)

    def stored_evidence(self, story_ids: Iterable[str]) -> dict[str, tuple[str | None, dict[str, Any]]]:
        return self.repos.stories.stored_evidence(story_ids)

    def stories_without_evidence(self, after: str = "", limit: int = 500) -> list[str]:
        return self.repos.stories.stories_without_evidence(after, limit)

    def save_evidence(self, conn: Connection, evidence: Mapping[str, tuple[str, dict[str, Any]]]) -> int:
        return self.repos.stories.save_evidence(conn, evidence)

    def delete_empty_stories(self, conn: Connection) -> int:
        return self.repos.stories.delete_empty_stories(conn)

    # -- read-API tokens ---------------------------------------------------------------------------

    def save_token(self, name: str, token_sha256: str, created_at: datetime) -> None:
        self.repos.tokens.save_token(name, token_sha256, created_at)

    def revoke_token(self, name: str, at: datetime) -> bool:
        return self.repos.tokens.revoke_token(name, at)

    def tokens(self) -> list[tuple[str, datetime | None, datetime | None]]:
        return self.repos.tokens.tokens()

    def active_token_hashes(self) -> list[tuple[str, str]]:
        return self.repos.tokens.active_token_hashes()

    def token_name(self, token_sha256: str) -> str | None:
        return self.repos.tokens.token_name(token_sha256)

    # -- the change feed, as consumers read it -----------------------------------------------------

    def changes_after(self, after: int, limit: int = 100) -> list[Change]:
        return self.repos.changes.changes_after(after, limit)

    def last_change_seq(self) -> int:
        return self.repos.changes.last_change_seq()

    def count_changed(self, kind: str, after: int, upto: int) -> int:
        return self.repos.changes.count_changed(kind, after, upto)

    def changed_stories(self, after: int, upto: int, limit: int) -> list[tuple[str, int]]:
        return self.repos.changes.changed_stories(after, upto, limit)

    def changed_articles(self, after: int, upto: int, limit: int) -> list[dict[str, Any]]:
        return self.repos.changes.changed_articles(after, upto, limit)


def _brief(exc: SQLAlchemyError) -> str:
    """The database's own first line, without the statement and its parameters (which may
    hold megabytes of whatever a web page sent): the full error is the exception's cause."""
    cause = getattr(exc, "orig", None) or exc
    line = (str(cause).strip().splitlines() or [""])[0]
    return f"{exc.__class__.__name__}: {line[:500]}"


def _sqlite_read_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def _pg_session(dbapi_conn: Any, _record: Any) -> None:
    """PostgreSQL 14+ ends sessions idle longer than ``idle_session_timeout``; ours opt out
    (the pool pings a connection before use anyway). Older servers lack the setting."""
    if dbapi_conn.info.server_version >= 140000:
        autocommit = dbapi_conn.autocommit
        dbapi_conn.autocommit = True
        dbapi_conn.execute("SET idle_session_timeout = 0")
        dbapi_conn.autocommit = autocommit


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def url_hints(store: Store, candidates: Sequence[str]) -> dict[str, tuple[str | None, datetime | None]]:
    """The feed's title and date for these URLs: a fallback when a page lacks its own."""
    return store.repos.frontier.url_hints(candidates)


__all__ = [
    "MIGRATIONS",
    "Change",
    "Discovered",
    "PackedBody",
    "PendingUrl",
    "Repositories",
    "Store",
    "StoredPage",
    "dedup_signature",
    "normalise_url",
    "now",
    "pack",
    "unpack",
    "url_hints",
]
