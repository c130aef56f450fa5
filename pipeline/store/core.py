"""The store: SQLAlchemy Core over SQLite (embedded default, WAL) or PostgreSQL (production).

Writes compare before they write, so a rerun of the same input changes no row; every batch is one
transaction, so a failure half-way leaves the previous state.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import socket
import threading
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import zstandard
from sqlalchemy import Connection, Engine, and_, bindparam, create_engine, event, func, or_, select, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from pipeline.errors import ConfigError, StoreError
from pipeline.models import Article, Figure, Story, StoryArticle
from pipeline.store.changes import Change
from pipeline.store.limits import Bounds, aware, fits, plausible
from pipeline.store.schema import (
    READ_VIEWS,
    api_tokens,
    articles,
    drops,
    feed_state,
    figures,
    pages,
    stories,
    urls,
)
from pipeline.store.schema import run_lock as run_lock_table
from pipeline.store.views import v1_articles, v1_changes, v1_stories, v1_story_figures
from pipeline.timeutil import now, utc

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")
# How long a run waits for another run's lock before it fails naming the holder, and a migration
# for another process's migration.
RUN_LOCK_WAIT_S = 3600.0
MIGRATE_WAIT_S = 300.0
# Raw pages and discovery documents are kept compressed (columns ``body_gz``; the name is from
# when it was gzip, which stores written then still hold and which still reads). zstd level 3
# packs a real news page to ~17% in ~0.7 ms and unpacks it in ~0.3 ms; gzip took ~2 ms at
# level 1 (to ~22%) or ~5 ms at level 6 (~19%), 10-25% of what trafilatura spends on the page.
ZSTD_LEVEL = 3
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_GZIP_MAGIC = b"\x1f\x8b"
_packer = threading.local()  # zstd (de)compressor objects are not thread-safe


def pack(body: bytes) -> bytes:
    """Compress a body for storage (zstd)."""
    if not hasattr(_packer, "c"):
        _packer.c = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    return bytes(_packer.c.compress(body))


@dataclass(frozen=True, slots=True)
class PackedBody:
    """A fetched body hashed and packed where it was fetched.

    Both hashing and zstd release the GIL, so fetch threads do it in parallel instead of the one
    writer thread doing it for every page in turn."""

    sha256: str
    packed: bytes

    @classmethod
    def of(cls, body: bytes) -> PackedBody:
        return cls(hashlib.sha256(body).hexdigest(), pack(body))


def unpack(blob: bytes, max_bytes: int | None = None) -> bytes:
    """A stored body back, zstd or (older stores) gzip. Raises StoreError when it is corrupt or
    would inflate beyond ``max_bytes``."""
    limit = max_bytes if max_bytes is not None else 1 << 31
    try:
        if blob.startswith(_ZSTD_MAGIC):
            if not hasattr(_packer, "d"):
                _packer.d = zstandard.ZstdDecompressor()
            if zstandard.frame_content_size(blob) > limit:  # -1: not stated
                raise StoreError(f"stored body inflates beyond {limit} bytes")
            out = _packer.d.decompress(blob, max_output_size=limit + 1)
        elif blob.startswith(_GZIP_MAGIC):
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out = inflater.decompress(blob, limit + 1)
            if not inflater.eof and len(out) <= limit:
                raise StoreError("stored body is corrupt: truncated")
        else:
            raise StoreError("stored body is corrupt: neither zstd nor gzip")
    except (zstandard.ZstdError, zlib.error) as exc:
        raise StoreError(f"stored body is corrupt: {exc}") from None
    if len(out) > limit:
        raise StoreError(f"stored body inflates beyond {limit} bytes")
    return bytes(out)


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
    body_gz: bytes  # as stored (see pack); the clean stage unpacks it in its extract workers

    @property
    def body(self) -> bytes:
        return unpack(self.body_gz)


class Store:
    """One database. Create with a URL; writers call :meth:`migrate` before use, readers
    :meth:`check_readable` (which writes nothing)."""

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
            raise StoreError(
                f"this run lost the run lock on {self.safe_url} (its connection ended) and another "
                "run has taken it: stopping before writing anything more"
            )

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

    # -- feed state ----------------------------------------------------------------------------

    def feed_validators(self, url: str) -> tuple[str | None, str | None]:
        with self.begin() as conn:
            row = conn.execute(
                select(feed_state.c.etag, feed_state.c.last_modified).where(feed_state.c.url == url)
            ).first()
        return (row.etag, row.last_modified) if row else (None, None)

    def save_feed_validators(
        self, url: str, source: str, etag: str | None, last_modified: str | None
    ) -> None:
        fitted = self.bounds.row(feed_state, {"source": source, "etag": etag, "last_modified": last_modified})
        source, etag, last_modified = fitted["source"], fitted["etag"], fitted["last_modified"]
        if not fits(feed_state.c.url, url):
            log.warning("feed state of a URL longer than %d characters is not kept", 2048)
            return
        with self.begin() as conn:
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
        with self.begin() as conn:
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
        with self.begin() as conn:
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
        source = self.bounds.value(feed_state.c.source, source)
        content_type = self.bounds.value(feed_state.c.content_type, content_type)
        with self.begin() as conn:
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
            self.bounds.cut["urls.url (refused)"] += len(refused)
            log.warning(
                "refused %d discovered URL(s) that do not fit the store, e.g. %.120r",
                len(refused),
                refused[0],
            )
            found = [d for d in found if fits(urls.c.url, d.url)]
        new = requeued = 0
        if not found:
            return 0, 0
        with self.begin() as conn:
            for chunk in _chunks(found, 500):
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
                            self.bounds.row(
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
                    fingerprint = self.bounds.value(urls.c.fingerprint, d.fingerprint)
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
        with self.begin() as conn:
            for chunk in _chunks(list(candidates), 500):
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
        with self.begin() as conn:
            return [
                PendingUrl(r.url, r.source, r.attempts, r.etag, r.last_modified) for r in conn.execute(query)
            ]

    def mark_url(self, conn: Connection, url: str, status: str, error: str | None = None) -> None:
        values: dict[str, Any] = self.bounds.row(urls, {"status": status, "error": error})
        if status == "failed":
            values["attempts"] = urls.c.attempts + 1
        conn.execute(urls.update().where(urls.c.url == url).values(**values))

    def fail_url(self, conn: Connection, url: str, error: str, *, retryable: bool, max_attempts: int) -> str:
        """Count one failed fetch of ``url``: ``failed`` (asked again by a later run) until it has
        failed ``max_attempts`` times, then ``dropped``; a failure no retry can fix drops it at
        once. Returns the new status."""
        attempts = conn.execute(select(urls.c.attempts).where(urls.c.url == url)).scalar()
        tried = int(attempts or 0) + 1
        status = "failed" if retryable and tried < max_attempts else "dropped"
        conn.execute(
            urls.update().where(urls.c.url == url).values(status=status, error=error, attempts=tried)
        )
        return status

    # -- pages ---------------------------------------------------------------------------------

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
        fitted = self.bounds.row(
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
        with self.begin() as conn:
            return [str(u) for u in conn.execute(query).scalars()]

    def pages_to_clean(
        self, sources: Sequence[str] | None = None, limit: int = 500, after_url: str = "", force: bool = False
    ) -> list[StoredPage]:
        query = select(pages).where(pages.c.url > after_url).order_by(pages.c.url).limit(limit)
        if not force:
            query = query.where(_needs_cleaning())
        if sources is not None:
            query = query.where(pages.c.source.in_(list(sources)))
        with self.begin() as conn:
            rows = conn.execute(query).all()
        return [_stored_page(r) for r in rows]

    def page_keys_fetched_since(
        self, since: datetime, sources: Sequence[str] | None = None
    ) -> list[tuple[str, str]]:
        """(url, body_sha256) of pages stored or changed at ``since`` or later; reads no bodies
        (the clean stage polls this while pages are still arriving)."""
        query = select(pages.c.url, pages.c.body_sha256).where(pages.c.fetched_at >= since)
        if sources is not None:
            query = query.where(pages.c.source.in_(list(sources)))
        with self.begin() as conn:
            return [(r.url, r.body_sha256) for r in conn.execute(query)]

    def pages_by_url(self, wanted: Sequence[str]) -> list[StoredPage]:
        result: list[StoredPage] = []
        with self.begin() as conn:
            for chunk in _chunks(list(wanted), 500):
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

    def record_drop(self, conn: Connection, url: str, source: str, stage: str, reason: str) -> None:
        reason = self.bounds.value(drops.c.reason, reason[:2000])
        source = self.bounds.value(drops.c.source, source)
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
        for chunk in _chunks(list(done), 500):
            conn.execute(drops.delete().where(drops.c.url.in_(chunk)))

    def drop_reasons(self) -> list[tuple[str, str, str, str]]:
        with self.begin() as conn:
            return [
                (r.url, r.source, r.stage, r.reason)
                for r in conn.execute(select(drops).order_by(drops.c.stage, drops.c.url))
            ]

    # -- articles ------------------------------------------------------------------------------

    def upsert_article(self, conn: Connection, article: Article) -> str:
        """Insert or update by canonical URL. Returns 'new', 'updated' or 'unchanged'."""
        return self.upsert_articles(conn, [article])[0]

    def upsert_articles(self, conn: Connection, batch: Sequence[Article]) -> list[str]:
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
        for chunk in _chunks([a.url for a in batch], 500):
            existing.update(
                (r.url, r) for r in conn.execute(select(articles).where(articles.c.url.in_(chunk)))
            )
        # originals (duplicate_of IS NULL) by content hash: {hash: {url: (fetched_at, id)}}
        originals: dict[str, dict[str, tuple[datetime, str]]] = {}
        for chunk in _chunks(list({a.content_hash for a in batch}), 500):
            for r in conn.execute(
                select(
                    articles.c.url, articles.c.article_id, articles.c.content_hash, articles.c.fetched_at
                ).where(articles.c.content_hash.in_(chunk), articles.c.duplicate_of.is_(None))
            ):
                originals.setdefault(r.content_hash, {})[r.url] = (utc(r.fetched_at) or now(), r.article_id)
        results: list[str] = []
        inserts: list[dict[str, Any]] = []
        for article in batch:
            if not fits(articles.c.url, article.url):  # never from the frontier, which refuses them
                results.append("dropped")
                continue
            values = self.bounds.row(
                articles,
                {
                    "source": article.source,
                    "title": article.title,
                    "authors": json.dumps(list(article.authors), ensure_ascii=False),
                    "published_at": plausible(article.published_at),
                    "language": article.language,
                    "text": article.text,
                    "content_hash": article.content_hash,
                },
            )
            others = [v for url, v in originals.get(article.content_hash, {}).items() if url != article.url]
            duplicate_of = min(others)[1] if others else None
            row = existing.get(article.url)
            if row is None:
                article_id = article.article_id
                fetched_at = self.bounds.value(articles.c.fetched_at, article.fetched_at) or now()
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
                        updated_at=self.bounds.value(articles.c.updated_at, article.fetched_at),
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

    def articles_between(self, start: datetime | None, end: datetime | None) -> list[dict[str, Any]]:
        """Articles whose publication (or fetch) time lies in [start, end]; all when open-ended."""
        when = func.coalesce(articles.c.published_at, articles.c.fetched_at)
        query = select(articles).order_by(articles.c.article_id)
        if start is not None:
            query = query.where(when >= aware(start))
        if end is not None:
            query = query.where(when <= aware(end))
        with self.begin() as conn:
            return [_article_row(r) for r in conn.execute(query)]

    def articles_to_dedup(self) -> list[dict[str, Any]]:
        """Articles new or changed since the last dedup (an upsert clears ``dedup_sig``)."""
        with self.begin() as conn:
            return [
                _article_row(r)
                for r in conn.execute(
                    select(articles).where(articles.c.dedup_sig.is_(None)).order_by(articles.c.article_id)
                )
            ]

    def articles_of_stories(
        self, story_ids: Iterable[str], known: dict[str, dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        """The articles of these stories (one query per 500 stories), in no particular order.

        ``known``: rows (as :meth:`articles_between` gives them) the caller already holds, by
        article id, whose content columns are current. For those only the columns dedup writes
        (``story_id``, ``copy_of``, ``dedup_sig``, ``change_seq``) are read, and the row returned
        is a copy of the known one with them; the others are read whole.
        """
        ids = sorted(set(story_ids))
        result: list[dict[str, Any]] = []
        with self.begin() as conn:
            if known is None:
                for chunk in _chunks(ids, 500):
                    result.extend(
                        _article_row(r)
                        for r in conn.execute(select(articles).where(articles.c.story_id.in_(chunk)))
                    )
                return result
            unknown: list[str] = []
            for chunk in _chunks(ids, 500):
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
                            {
                                **row,
                                "story_id": r.story_id,
                                "copy_of": r.copy_of,
                                "dedup_sig": r.dedup_sig,
                                "change_seq": r.change_seq,
                            }
                        )
            for chunk in _chunks(sorted(unknown), 500):
                result.extend(
                    _article_row(r)
                    for r in conn.execute(select(articles).where(articles.c.article_id.in_(chunk)))
                )
        return result

    def counts(self) -> dict[str, int]:
        with self.begin() as conn:
            return {
                t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (urls, pages, articles, drops, stories, figures)
            }

    # -- stories -------------------------------------------------------------------------------

    def story_member_rows(self, story_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The members of these stories with their text, read through the v1 articles view (the
        reader role can): what ``newsagg stories --json`` needs to say why they are together."""
        a = v1_articles.c
        rows: list[dict[str, Any]] = []
        with self.begin() as conn:
            for chunk in _chunks(sorted(set(story_ids)), 500):
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
                ).where(a.story_id.in_(list(chunk)))
                for r in conn.execute(query.order_by(a.article_id)):
                    row = dict(r._mapping)
                    row["published_at"], row["fetched_at"] = utc(r.published_at), utc(r.fetched_at)
                    rows.append(row)
        return rows

    def stories(
        self,
        since: datetime | None = None,
        story_ids: Sequence[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Story]:
        """Stories, most recently updated first, read through the v1 views (the reader role can)."""
        query = select(v1_stories).order_by(v1_stories.c.last_updated.desc(), v1_stories.c.story_id)
        if since is not None:  # SQLite compares the stored UTC text: the bound must be UTC too
            query = query.where(v1_stories.c.last_updated >= aware(since))
        if story_ids is not None:
            query = query.where(v1_stories.c.story_id.in_(list(story_ids)))
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        with self.begin() as conn:
            rows = conn.execute(query).all()
            ids = [r.story_id for r in rows]
            members: dict[str, list[StoryArticle]] = {i: [] for i in ids}
            figs: dict[str, list[Figure]] = {i: [] for i in ids}
            for chunk in _chunks(ids, 500):
                for a in conn.execute(
                    select(
                        v1_articles.c.article_id,
                        v1_articles.c.url,
                        v1_articles.c.source,
                        v1_articles.c.title,
                        v1_articles.c.published_at,
                        v1_articles.c.story_id,
                        v1_articles.c.copy_of,
                        v1_articles.c.language,
                    )
                    .where(v1_articles.c.story_id.in_(chunk))
                    .order_by(
                        func.coalesce(v1_articles.c.published_at, v1_articles.c.fetched_at),
                        v1_articles.c.article_id,
                    )
                ):
                    members[a.story_id].append(
                        StoryArticle(
                            a.article_id, a.url, a.source, a.title, utc(a.published_at), a.copy_of, a.language
                        )
                    )
                f = v1_story_figures.c
                for r in conn.execute(
                    select(f.story_id, f.kind, f.value, f.source, f.url, f.reported_at)
                    .where(f.story_id.in_(chunk))
                    .order_by(f.reported_at, f.kind, f.source, f.value)
                ):
                    figs[r.story_id].append(Figure(r.kind, r.value, r.source, r.url, utc(r.reported_at)))
        return [
            Story(
                r.story_id,
                r.title,
                r.summary,
                utc(r.first_seen) or now(),
                utc(r.last_updated) or now(),
                tuple(members[r.story_id]),
                tuple(figs[r.story_id]),
            )
            for r in rows
        ]

    def story_ids(self, limit: int, offset: int = 0, since: datetime | None = None) -> list[str]:
        """One page of story ids, most recently updated first."""
        query = (
            select(v1_stories.c.story_id)
            .order_by(v1_stories.c.last_updated.desc(), v1_stories.c.story_id)
            .limit(limit)
            .offset(offset)
        )
        if since is not None:
            query = query.where(v1_stories.c.last_updated >= aware(since))
        with self.begin() as conn:
            return [str(i) for i in conn.execute(query).scalars()]

    # -- read-API tokens (pipeline.serve.tokens keeps the rules) ------------------------------

    def save_token(self, name: str, token_sha256: str, created_at: datetime) -> None:
        """Store a new token under ``name``; ConfigError if an active one has that name. A
        revoked name is reused, its old hash gone with it."""
        with self.begin() as conn:
            row = conn.execute(select(api_tokens.c.revoked_at).where(api_tokens.c.name == name)).first()
            if row is not None and row.revoked_at is None:
                raise ConfigError(f"token {name!r} exists; revoke it first (newsagg token revoke {name})")
            values = {"token_sha256": token_sha256, "created_at": created_at, "revoked_at": None}
            if row is None:
                conn.execute(api_tokens.insert().values(name=name, **values))
            else:
                conn.execute(api_tokens.update().where(api_tokens.c.name == name).values(**values))

    def revoke_token(self, name: str, at: datetime) -> bool:
        """Revoke the active token ``name``; False when there is none."""
        with self.begin() as conn:
            done = conn.execute(
                api_tokens.update()
                .where(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            return bool(done.rowcount)

    def tokens(self) -> list[tuple[str, datetime | None, datetime | None]]:
        """``(name, created_at, revoked_at)`` of every token, by name."""
        with self.begin() as conn:
            return [
                (r.name, utc(r.created_at), utc(r.revoked_at))
                for r in conn.execute(select(api_tokens).order_by(api_tokens.c.name))
            ]

    def active_token_hashes(self) -> list[tuple[str, str]]:
        """``(name, token_sha256)`` of the active tokens."""
        with self.begin() as conn:
            return [
                (r.name, r.token_sha256)
                for r in conn.execute(
                    select(api_tokens.c.name, api_tokens.c.token_sha256).where(
                        api_tokens.c.revoked_at.is_(None)
                    )
                )
            ]

    def token_name(self, token_sha256: str) -> str | None:
        """PostgreSQL: the active token with this hash, through ``newsagg_v1_token_name`` (which
        the reader role may call; migration 0004). None when there is none."""
        with self.begin() as conn:
            name = conn.execute(text("SELECT newsagg_v1_token_name(:h)"), {"h": token_sha256}).scalar()
        return None if name is None else str(name)

    # -- the change feed, as consumers read it -------------------------------------------------

    def changes_after(self, after: int, limit: int = 100) -> list[Change]:
        """One page of the change feed after cursor ``after``."""
        c = v1_changes.c
        with self.begin() as conn:
            rows = conn.execute(
                select(v1_changes).where(c.change_seq > after).order_by(c.change_seq).limit(limit)
            )
            return [Change(r.change_seq, r.kind, r.id, r.op, utc(r.changed_at)) for r in rows]

    def last_change_seq(self) -> int:
        """The newest committed change number (numbers are dense and never reused)."""
        with self.begin() as conn:
            return int(conn.execute(select(func.max(v1_changes.c.change_seq))).scalar() or 0)

    def count_changed(self, kind: str, after: int, upto: int) -> int:
        """How many stories (or articles) carry a change number in ``(after, upto]``."""
        view = v1_stories if kind == "stories" else v1_articles
        with self.begin() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(view)
                    .where(view.c.change_seq > after, view.c.change_seq <= upto)
                ).scalar_one()
            )

    def changed_stories(self, after: int, upto: int, limit: int) -> list[tuple[str, int]]:
        """``(story_id, change_seq)`` of the next ``limit`` stories changed in ``(after, upto]``."""
        c = v1_stories.c
        with self.begin() as conn:
            return [
                (r.story_id, int(r.change_seq))
                for r in conn.execute(
                    select(c.story_id, c.change_seq)
                    .where(c.change_seq > after, c.change_seq <= upto)
                    .order_by(c.change_seq)
                    .limit(limit)
                )
            ]

    def changed_articles(self, after: int, upto: int, limit: int) -> list[dict[str, Any]]:
        """The next ``limit`` articles changed in ``(after, upto]`` as the v1 view has them."""
        c = v1_articles.c
        with self.begin() as conn:
            return [
                dict(r._mapping)
                for r in conn.execute(
                    select(v1_articles)
                    .where(c.change_seq > after, c.change_seq <= upto)
                    .order_by(c.change_seq)
                    .limit(limit)
                )
            ]

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
        for chunk in _chunks(ids, 500):
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

    class _StoryWrites:
        """State of one :meth:`save_stories` batch: the stored rows it read up front, kept up to
        date as stories are staged (so each story sees its predecessors' writes, as with one
        :meth:`save_story` call after another), and the writes queued for the end."""

        def __init__(self) -> None:
            self.rows: dict[str, dict[str, Any]] = {}  # story_id -> stored column values
            self.owner: dict[tuple[str, str, str], str] = {}  # figure key -> its story_id
            self.have: dict[str, set[tuple[str, str, str]]] = {}  # story_id -> its figure keys
            self.story_inserts: dict[str, dict[str, Any]] = {}
            self.story_updates: dict[str, dict[str, Any]] = {}
            self.figure_deletes: dict[tuple[str, str, str], None] = {}
            self.figure_inserts: dict[tuple[str, str, str], dict[str, Any]] = {}

    def _read_stories(
        self, conn: Connection, items: Sequence[tuple[Story, str | None, Sequence[tuple[str, Figure]]]]
    ) -> Store._StoryWrites:
        """The stored rows ``items`` may touch: their stories, the figures of those stories and
        every figure of their articles (a figure moves with its article between stories)."""
        batch = Store._StoryWrites()
        ids = sorted({story.story_id for story, _, _ in items})
        article_ids = sorted(
            {a.article_id for story, _, _ in items for a in story.articles}
            | {aid for _, _, figs in items for aid, _ in figs}
        )
        for chunk in _chunks(ids, 500):
            for r in conn.execute(select(stories).where(stories.c.story_id.in_(chunk))):
                batch.rows[r.story_id] = {
                    "title": r.title,
                    "summary": r.summary,
                    "best_article_id": r.best_article_id,
                    "first_seen": utc(r.first_seen),
                    "last_updated": utc(r.last_updated),
                    "article_count": r.article_count,
                }
        keyed = (figures.c.article_id, figures.c.kind, figures.c.value, figures.c.story_id)
        for column, values in ((figures.c.story_id, ids), (figures.c.article_id, article_ids)):
            for chunk in _chunks(values, 500):
                for r in conn.execute(select(*keyed).where(column.in_(chunk))):
                    key = (r.article_id, r.kind, r.value)
                    batch.owner[key] = r.story_id
                    batch.have.setdefault(r.story_id, set()).add(key)
        return batch

    def _write_stories(self, conn: Connection, batch: Store._StoryWrites) -> None:
        """The queued writes of a batch: a few executemany statements."""
        if batch.story_inserts:
            conn.execute(
                stories.insert(), [{"story_id": sid, **values} for sid, values in batch.story_inserts.items()]
            )
        if batch.story_updates:
            columns = ("title", "summary", "best_article_id", "first_seen", "last_updated", "article_count")
            conn.execute(
                stories.update()
                .where(stories.c.story_id == bindparam("b_story_id"))
                .values({c: bindparam(f"b_{c}") for c in columns}),
                [
                    {"b_story_id": sid, **{f"b_{c}": values[c] for c in columns}}
                    for sid, values in batch.story_updates.items()
                ],
            )
        if batch.figure_deletes:
            conn.execute(
                figures.delete().where(
                    figures.c.article_id == bindparam("b_article_id"),
                    figures.c.kind == bindparam("b_kind"),
                    figures.c.value == bindparam("b_value"),
                ),
                [{"b_article_id": a, "b_kind": k, "b_value": v} for a, k, v in batch.figure_deletes],
            )
        if batch.figure_inserts:
            conn.execute(figures.insert(), list(batch.figure_inserts.values()))
        batch.story_inserts, batch.story_updates = {}, {}
        batch.figure_deletes, batch.figure_inserts = {}, {}

    def save_stories(
        self, conn: Connection, items: Sequence[tuple[Story, str | None, Sequence[tuple[str, Figure]]]]
    ) -> list[str]:
        """:meth:`save_story` for each ``(story, best_article_id, figures)`` in turn, with the
        same rows written and the same change-feed entries, but reading per 500 stories and
        writing with a few executemany statements. Returns the statuses in order."""
        statuses: list[str] = []
        for part in _chunks(items, 500):
            batch = self._read_stories(conn, part)
            statuses.extend(
                self.save_story(conn, story, best, figs, batch=batch) for story, best, figs in part
            )
            self._write_stories(conn, batch)
        return statuses

    def save_story(
        self,
        conn: Connection,
        story: Story,
        best_article_id: str | None,
        story_figures: Sequence[tuple[str, Figure]],
        batch: Store._StoryWrites | None = None,
    ) -> str:
        """Write a story and its figures if they differ. Returns 'new', 'updated' or 'unchanged'.

        Figures are compared by key (article, kind, value): a key the story has and still wants
        is left as it is. With ``batch`` (:meth:`save_stories`) the stored state comes from it
        and the writes are queued in it.
        """
        if batch is None:
            batch = self._read_stories(conn, [(story, best_article_id, story_figures)])
            status = self._stage_story(conn, batch, story, best_article_id, story_figures)
            self._write_stories(conn, batch)
            return status
        return self._stage_story(conn, batch, story, best_article_id, story_figures)

    def _stage_story(
        self,
        conn: Connection,
        batch: Store._StoryWrites,
        story: Story,
        best_article_id: str | None,
        story_figures: Sequence[tuple[str, Figure]],
    ) -> str:
        sid = story.story_id
        values = self.bounds.row(
            stories,
            {
                "title": story.title,
                "summary": story.summary,
                "best_article_id": best_article_id,
                "first_seen": story.first_seen,
                "last_updated": story.last_updated,
                "article_count": len(story.articles),
            },
        )
        old = batch.rows.get(sid)
        status = "unchanged"
        if old is None:
            batch.story_inserts[sid] = values
            status = "new"
        elif old != values:
            if sid in batch.story_inserts:
                batch.story_inserts[sid] = values
            else:
                batch.story_updates[sid] = values
            status = "updated"
        batch.rows[sid] = values
        wanted: dict[tuple[str, str, str], Figure] = {}
        for aid, f in story_figures:  # a cut value is the key, so two values cut alike are one figure
            wanted.setdefault((aid, f.kind, self.bounds.value(figures.c.value, f.value)), f)
        have = set(batch.have.get(sid, ()))
        for key in have - wanted.keys():
            batch.figure_deletes[key] = None
            batch.figure_inserts.pop(key, None)
            del batch.owner[key]
            batch.have[sid].discard(key)
        for key in wanted.keys() - have:
            f = wanted[key]
            previous = batch.owner.get(key)
            if previous is not None:  # the article's figure, still filed under another story
                batch.figure_deletes[key] = None
                batch.have[previous].discard(key)
            batch.figure_inserts[key] = self.bounds.row(
                figures,
                {
                    "article_id": key[0],
                    "kind": f.kind,
                    "value": key[2],
                    "story_id": sid,
                    "source": f.source,
                    "url": f.url,
                    "reported_at": f.reported_at,
                },
            )
            batch.owner[key] = sid
            batch.have.setdefault(sid, set()).add(key)
        if (wanted.keys() ^ have) and status == "unchanged":
            status = "updated"
        if status != "unchanged":  # change feed
            from pipeline.store.changes import note_change

            note_change(conn, "story", sid, "insert" if status == "new" else "update")
        return status

    def delete_empty_stories(self, conn: Connection) -> int:
        used = select(articles.c.story_id).where(articles.c.story_id.is_not(None)).distinct()
        from pipeline.store.changes import note_change  # change feed

        for story_id in conn.execute(
            select(stories.c.story_id).where(stories.c.story_id.not_in(used))
        ).scalars():
            note_change(conn, "story", story_id, "delete")  # change feed
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
    for key in ("fetched_at", "updated_at"):
        data[key] = utc(data[key])
    data["published_at"] = plausible(data["published_at"])  # a store written before the bounds
    return data


def _brief(exc: SQLAlchemyError) -> str:
    """The database's own first line, without the statement and its parameters (which may
    hold megabytes of whatever a web page sent): the full error is the exception's cause."""
    cause = getattr(exc, "orig", None) or exc
    line = (str(cause).strip().splitlines() or [""])[0]
    return f"{exc.__class__.__name__}: {line[:500]}"


def _needs_cleaning() -> Any:
    """A page never cleaned, or whose body changed since it was."""
    return or_(pages.c.cleaned_sha256.is_(None), pages.c.cleaned_sha256 != pages.c.body_sha256)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


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
    result: dict[str, tuple[str | None, datetime | None]] = {}
    with store.begin() as conn:
        for chunk in _chunks(list(candidates), 500):
            for row in conn.execute(
                select(urls.c.url, urls.c.hint_title, urls.c.hint_published_at).where(urls.c.url.in_(chunk))
            ):
                result[row.url] = (row.hint_title, plausible(row.hint_published_at))
    return result
