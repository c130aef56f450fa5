"""The change feed: every committed insert, update or delete of a story or an article gets the
next number of one store-wide sequence, so a consumer can page with
``WHERE change_seq > :cursor ORDER BY change_seq`` and never miss a change.

The number is taken at the very end of the write transaction, from inside SQLAlchemy's ``commit``
event: ``UPDATE change_counter SET last_seq = last_seq + n ... RETURNING last_seq``. That
statement row-locks the single counter row until the transaction ends, so a second writer that
reaches its commit meanwhile waits for the first one to commit (or roll back) before it can
number its own changes. Hence numbers are handed out in commit order, and a number is visible to
readers only after every smaller number is: a cursor never passes a change still in flight. On
SQLite a write transaction already holds the database's single write lock, which gives the same
order. A rolled-back transaction also rolls back its counter update, so numbers stay dense.

The write methods of the store's repositories call :func:`note_change`; nothing else is
needed from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, bindparam, event, func, select

from pipeline.store.schema import articles, change_counter, changes, stories
from pipeline.store.views import v1_articles, v1_changes, v1_stories
from pipeline.timeutil import utc

if TYPE_CHECKING:
    from pipeline.store.core import Store

_PENDING = "newsagg_pending_changes"
KINDS = ("story", "article")
_TABLES = {"story": (stories, stories.c.story_id), "article": (articles, articles.c.article_id)}


@dataclass(frozen=True, slots=True)
class Change:
    change_seq: int
    kind: str  # story | article
    id: str
    op: str  # insert | update | delete
    changed_at: datetime | None


def note_change(conn: Connection, kind: str, entity_id: str, op: str) -> None:
    """Remember that this transaction wrote ``entity_id``; it is numbered when it commits."""
    if kind not in _TABLES or op not in ("insert", "update", "delete"):
        raise ValueError(f"bad change {kind!r} {op!r}")
    install(conn.engine)
    pending: dict[tuple[str, str], str] = conn.info.setdefault(_PENDING, {})
    key = (kind, entity_id)
    previous = pending.get(key)
    if previous == "insert" and op == "delete":
        del pending[key]  # born and gone in one transaction: nobody ever saw it
        return
    if previous == "insert" and op == "update":
        op = "insert"
    if previous == "delete" and op == "insert":
        op = "update"  # readers saw it before; for them it changed
    pending[key] = op


def stamp(conn: Connection) -> list[int]:
    """Number this transaction's pending changes now (normally called by the commit hook).

    Holds the counter row lock until the transaction ends; call it last.
    """
    pending: dict[tuple[str, str], str] | None = conn.info.pop(_PENDING, None)
    if not pending:
        return []
    items = sorted(pending.items())
    last = conn.execute(
        change_counter.update()
        .where(change_counter.c.id == 1)
        .values(last_seq=change_counter.c.last_seq + len(items))
        .returning(change_counter.c.last_seq)
    ).scalar_one()
    first = last - len(items) + 1
    when = datetime.now(UTC)
    log: list[dict[str, Any]] = []
    seqs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in _TABLES}
    for offset, ((kind, entity_id), op) in enumerate(items):
        seq = first + offset
        if op != "delete":
            seqs[kind].append({"b_id": entity_id, "b_seq": seq})
        log.append({"change_seq": seq, "kind": kind, "entity_id": entity_id, "op": op, "changed_at": when})
    for kind, params in seqs.items():
        if params:  # one executemany per table: a batch of 10,000 articles is one round trip
            table, key = _TABLES[kind]
            conn.execute(
                table.update().where(key == bindparam("b_id")).values(change_seq=bindparam("b_seq")), params
            )
    conn.execute(changes.insert(), log)
    return list(range(first, last + 1))


def _on_commit(conn: Connection) -> None:
    stamp(conn)


def _on_rollback(conn: Connection) -> None:
    conn.info.pop(_PENDING, None)


def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
    record.info.pop(_PENDING, None)


def install(engine: Engine) -> None:
    """Hook the stamping into ``engine``'s commits (idempotent)."""
    if not event.contains(engine, "commit", _on_commit):
        event.listen(engine, "commit", _on_commit)
        event.listen(engine, "rollback", _on_rollback)
        event.listen(engine.pool, "checkin", _on_checkin)


def changes_after(conn: Connection, after: int, limit: int = 100) -> list[Change]:
    """One page of the feed, as a consumer reads it (through the v1 view's columns)."""
    rows = conn.execute(
        select(changes).where(changes.c.change_seq > after).order_by(changes.c.change_seq).limit(limit)
    )
    return [Change(r.change_seq, r.kind, r.entity_id, r.op, utc(r.changed_at)) for r in rows]


def last_seq(conn: Connection) -> int:
    """The newest number handed out (committed or not yet committed)."""
    value = conn.execute(
        select(change_counter.c.last_seq).where(change_counter.c.id == 1)
    ).scalar_one_or_none()
    return int(value or 0)


class ChangeFeed:
    """The change feed as consumers read it, through the v1 views."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def changes_after(self, after: int, limit: int = 100) -> list[Change]:
        """One page of the change feed after cursor ``after``."""
        c = v1_changes.c
        with self._store.begin() as conn:
            rows = conn.execute(
                select(v1_changes).where(c.change_seq > after).order_by(c.change_seq).limit(limit)
            )
            return [Change(r.change_seq, r.kind, r.id, r.op, utc(r.changed_at)) for r in rows]

    def last_change_seq(self) -> int:
        """The newest committed change number (numbers are dense and never reused)."""
        with self._store.begin() as conn:
            return int(conn.execute(select(func.max(v1_changes.c.change_seq))).scalar() or 0)

    def count_changed(self, kind: str, after: int, upto: int) -> int:
        """How many stories (or articles) carry a change number in ``(after, upto]``."""
        view = v1_stories if kind == "stories" else v1_articles
        with self._store.begin() as conn:
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
        with self._store.begin() as conn:
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
        with self._store.begin() as conn:
            return [
                dict(r._mapping)
                for r in conn.execute(
                    select(v1_articles)
                    .where(c.change_seq > after, c.change_seq <= upto)
                    .order_by(c.change_seq)
                    .limit(limit)
                )
            ]


__all__ = ["Change", "ChangeFeed", "changes_after", "install", "last_seq", "note_change", "stamp"]
