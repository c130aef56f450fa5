"""Stories and their figures and evidence: the batched save dedup makes, and the reads of the
read API and the CLI."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, false, func, null, select
from sqlalchemy import inspect as sa_inspect

from pipeline.models import Figure, SaveResult, Story, StoryArticle
from pipeline.store.common import chunks, json_object
from pipeline.store.limits import aware
from pipeline.store.schema import articles, figures, stories
from pipeline.store.views import v1_articles, v1_articles_live_blog, v1_stories, v1_story_figures
from pipeline.timeutil import now, utc

if TYPE_CHECKING:
    from pipeline.store.core import Store

log = logging.getLogger(__name__)


class StoryBatch:
    """State of one :meth:`save_stories` batch: the stored rows it read up front, kept up to
    date as stories are staged (so each story sees its predecessors' writes, as with one
    :meth:`save_story` call after another), and the writes queued for the end."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}  # story_id -> stored column values
        self.owner: dict[tuple[str, str, str], str] = {}  # figure key -> its story_id
        self.have: dict[str, set[tuple[str, str, str]]] = {}  # story_id -> its figure keys
        self.claims: dict[tuple[str, str, str], str | None] = {}  # figure key -> stored source_claim
        self.story_inserts: dict[str, dict[str, Any]] = {}
        self.story_updates: dict[str, dict[str, Any]] = {}
        self.figure_deletes: dict[tuple[str, str, str], None] = {}
        self.figure_inserts: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.claim_updates: dict[tuple[str, str, str], str | None] = {}


class Stories:
    """The ``stories`` and ``figures`` tables (reads through the v1 views)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._view_has_evidence = False  # see _stories_view_has_evidence
        self._view_has_claims = False  # newsagg_v1_story_figures.source_claim seen (migration 0007)

    def _stories_view_has_evidence(self, conn: Connection) -> bool:
        """Whether ``newsagg_v1_stories`` has ``evidence``: a read command may read a store the
        owner has not migrated yet (the reader role cannot), and then reads what it has."""
        if not self._view_has_evidence:  # once it has the column it keeps it: no need to look again
            columns = sa_inspect(conn).get_columns(v1_stories.name)
            self._view_has_evidence = any(c["name"] == "evidence" for c in columns)
        return self._view_has_evidence

    def stories(
        self,
        since: datetime | None = None,
        story_ids: Sequence[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Story]:
        """Stories, most recently updated first, read through the v1 views (the reader role can).
        ``evidence`` is None where dedup has not stored it (see :func:`pipeline.dedup.with_evidence`)."""
        with self._store.begin() as conn:
            has_evidence = self._stories_view_has_evidence(conn)
            columns = [c for c in v1_stories.c if has_evidence or c.name != "evidence"]
            query = select(*columns).order_by(v1_stories.c.last_updated.desc(), v1_stories.c.story_id)
            if since is not None:  # SQLite compares the stored UTC text: the bound must be UTC too
                query = query.where(v1_stories.c.last_updated >= aware(since))
            if story_ids is not None:
                query = query.where(v1_stories.c.story_id.in_(list(story_ids)))
            if limit is not None:
                query = query.limit(limit)
            if offset:
                query = query.offset(offset)
            rows = conn.execute(query).all()
            ids = [r.story_id for r in rows]
            members: dict[str, list[StoryArticle]] = {i: [] for i in ids}
            figs: dict[str, list[Figure]] = {i: [] for i in ids}
            live_blog = (
                v1_articles_live_blog if self._store.repos.articles.live_blog_readable(conn) else false()
            ).label("live_blog")
            for chunk in chunks(ids, 500):
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
                        live_blog,
                    )
                    .where(v1_articles.c.story_id.in_(chunk))
                    .order_by(
                        func.coalesce(v1_articles.c.published_at, v1_articles.c.fetched_at),
                        v1_articles.c.article_id,
                    )
                ):
                    members[a.story_id].append(
                        StoryArticle(
                            a.article_id,
                            a.url,
                            a.source,
                            a.title,
                            utc(a.published_at),
                            a.copy_of,
                            a.language,
                            bool(a.live_blog),
                        )
                    )
                f = v1_story_figures.c
                claim = f.source_claim if self._claims_readable(conn) else null().label("source_claim")
                for r in conn.execute(
                    select(f.story_id, f.kind, f.value, f.source, f.url, f.reported_at, claim)
                    .where(f.story_id.in_(chunk))
                    .order_by(f.reported_at, f.kind, f.source, f.value)
                ):
                    figs[r.story_id].append(
                        Figure(r.kind, r.value, r.source, r.url, utc(r.reported_at), r.source_claim)
                    )
        return [
            Story(
                r.story_id,
                r.title,
                r.summary,
                utc(r.first_seen) or now(),
                utc(r.last_updated) or now(),
                tuple(members[r.story_id]),
                tuple(figs[r.story_id]),
                json_object(r.evidence) if has_evidence else None,
            )
            for r in rows
        ]

    def _claims_readable(self, conn: Connection) -> bool:
        """Whether the figures view has ``source_claim``: a reader may open a store its owner has
        not migrated yet (:meth:`check_readable`), whose figures then read as unattributed."""
        if not self._view_has_claims:
            columns = sa_inspect(conn).get_columns(v1_story_figures.name)
            self._view_has_claims = any(c["name"] == "source_claim" for c in columns)
        return self._view_has_claims

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
        with self._store.begin() as conn:
            return [str(i) for i in conn.execute(query).scalars()]

    def _read_stories(self, conn: Connection, items: Sequence[Story]) -> StoryBatch:
        """The stored rows ``items`` may touch: their stories, the figures of those stories and
        every figure of their articles (a figure moves with its article between stories)."""
        batch = StoryBatch()
        ids = sorted({story.story_id for story in items})
        article_ids = sorted(
            {a.article_id for story in items for a in story.articles}
            | {f.article_id for story in items for f in story.figures}
        )
        for chunk in chunks(ids, 500):
            for r in conn.execute(select(stories).where(stories.c.story_id.in_(chunk))):
                batch.rows[r.story_id] = {
                    "title": r.title,
                    "summary": r.summary,
                    "best_article_id": r.best_article_id,
                    "first_seen": utc(r.first_seen),
                    "last_updated": utc(r.last_updated),
                    "article_count": r.article_count,
                    "evidence": r.evidence,
                    "evidence_key": r.evidence_key,
                }
        keyed = (
            figures.c.article_id,
            figures.c.kind,
            figures.c.value,
            figures.c.story_id,
            figures.c.source_claim,
        )
        for column, values in ((figures.c.story_id, ids), (figures.c.article_id, article_ids)):
            for chunk in chunks(values, 500):
                for r in conn.execute(select(*keyed).where(column.in_(chunk))):
                    key = (r.article_id, r.kind, r.value)
                    batch.owner[key] = r.story_id
                    batch.have.setdefault(r.story_id, set()).add(key)
                    batch.claims[key] = r.source_claim
        return batch

    def _write_stories(self, conn: Connection, batch: StoryBatch) -> None:
        """The queued writes of a batch: a few executemany statements."""
        if batch.story_inserts:
            conn.execute(
                stories.insert(), [{"story_id": sid, **values} for sid, values in batch.story_inserts.items()]
            )
        if batch.story_updates:
            columns = (
                "title",
                "summary",
                "best_article_id",
                "first_seen",
                "last_updated",
                "article_count",
                "evidence",
                "evidence_key",
            )
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
        if batch.claim_updates:
            conn.execute(
                figures.update()
                .where(
                    figures.c.article_id == bindparam("b_article_id"),
                    figures.c.kind == bindparam("b_kind"),
                    figures.c.value == bindparam("b_value"),
                )
                .values(source_claim=bindparam("b_claim")),
                [
                    {"b_article_id": a, "b_kind": k, "b_value": v, "b_claim": claim}
                    for (a, k, v), claim in batch.claim_updates.items()
                ],
            )
        batch.story_inserts, batch.story_updates = {}, {}
        batch.figure_deletes, batch.figure_inserts, batch.claim_updates = {}, {}, {}

    def save_stories(
        self,
        conn: Connection,
        items: Sequence[Story],
        evidence_keys: Mapping[str, str] | None = None,
    ) -> list[SaveResult]:
        """:meth:`save_story` for each story in turn, with the
        same rows written and the same change-feed entries, but reading per 500 stories and
        writing with a few executemany statements. Returns the statuses in order.
        ``evidence_keys``: per story id, what its evidence was worked out from."""
        statuses: list[SaveResult] = []
        keys = evidence_keys or {}
        for part in chunks(items, 500):
            batch = self._read_stories(conn, part)
            statuses.extend(
                self.save_story(conn, story, batch=batch, evidence_key=keys.get(story.story_id))
                for story in part
            )
            self._write_stories(conn, batch)
        return statuses

    def save_story(
        self,
        conn: Connection,
        story: Story,
        batch: StoryBatch | None = None,
        evidence_key: str | None = None,
    ) -> SaveResult:
        """Write a story and its figures if they differ. Returns 'new', 'updated' or 'unchanged'.

        ``story.best_article_id`` is the report it shows; each of ``story.figures`` names the
        report that gives it (``Figure.article_id``). Figures are compared by key (article,
        kind, value): a key the story has and still wants is left as it is, unless its
        ``source_claim`` changed (then only that is updated). With
        ``batch`` (:meth:`save_stories`) the stored state comes from it and the writes are
        queued in it. ``evidence_key``: what ``story.evidence`` was worked out from
        (:meth:`stored_evidence` gives it back); None when the caller does not say.
        """
        if batch is None:
            batch = self._read_stories(conn, [story])
            status = self._stage_story(conn, batch, story, evidence_key)
            self._write_stories(conn, batch)
            return status
        return self._stage_story(conn, batch, story, evidence_key)

    def _stage_story(
        self,
        conn: Connection,
        batch: StoryBatch,
        story: Story,
        evidence_key: str | None = None,
    ) -> SaveResult:
        sid = story.story_id
        values = self._store.bounds.row(
            stories,
            {
                "title": story.title,
                "summary": story.summary,
                "best_article_id": story.best_article_id,
                "first_seen": story.first_seen,
                "last_updated": story.last_updated,
                "article_count": len(story.articles),
                "evidence": story.evidence,  # JSON text, bounded (pipeline.store.limits)
                "evidence_key": evidence_key if story.evidence is not None else None,
            },
        )
        old = batch.rows.get(sid)
        status: SaveResult = "unchanged"
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
        for f in story.figures:  # a cut value is the key, so two values cut alike are one figure
            wanted.setdefault((f.article_id, f.kind, self._store.bounds.value(figures.c.value, f.value)), f)
        have = set(batch.have.get(sid, ()))
        for key in have - wanted.keys():
            batch.figure_deletes[key] = None
            batch.figure_inserts.pop(key, None)
            batch.claim_updates.pop(key, None)
            del batch.owner[key]
            batch.have[sid].discard(key)
        reclaimed = False
        for key in wanted.keys() & have:
            claim = self._store.bounds.value(figures.c.source_claim, wanted[key].source_claim)
            if batch.claims.get(key) != claim:
                batch.claims[key] = claim
                if key in batch.figure_inserts:
                    batch.figure_inserts[key]["source_claim"] = claim
                else:
                    batch.claim_updates[key] = claim
                reclaimed = True
        for key in wanted.keys() - have:
            f = wanted[key]
            previous = batch.owner.get(key)
            if previous is not None:  # the article's figure, still filed under another story
                batch.figure_deletes[key] = None
                batch.have[previous].discard(key)
            batch.figure_inserts[key] = self._store.bounds.row(
                figures,
                {
                    "article_id": key[0],
                    "kind": f.kind,
                    "value": key[2],
                    "story_id": sid,
                    "source": f.source,
                    "url": f.url,
                    "reported_at": f.reported_at,
                    "source_claim": f.source_claim,
                },
            )
            batch.claim_updates.pop(key, None)
            batch.claims[key] = batch.figure_inserts[key]["source_claim"]
            batch.owner[key] = sid
            batch.have.setdefault(sid, set()).add(key)
        if ((wanted.keys() ^ have) or reclaimed) and status == "unchanged":
            status = "updated"
        if status != "unchanged":  # change feed
            from pipeline.store.changes import note_change

            note_change(conn, "story", sid, "insert" if status == "new" else "update")
        return status

    def stored_evidence(self, story_ids: Iterable[str]) -> dict[str, tuple[str | None, dict[str, Any]]]:
        """``(evidence_key, evidence)`` stored for these stories (one query per 500); stories
        without evidence are left out."""
        found: dict[str, tuple[str | None, dict[str, Any]]] = {}
        with self._store.begin() as conn:
            for chunk in chunks(sorted(set(story_ids)), 500):
                query = select(stories.c.story_id, stories.c.evidence_key, stories.c.evidence).where(
                    stories.c.story_id.in_(chunk), stories.c.evidence.is_not(None)
                )
                for r in conn.execute(query):
                    evidence = json_object(r.evidence)
                    if evidence is not None:
                        found[r.story_id] = (r.evidence_key, evidence)
        return found

    def stories_without_evidence(self, after: str = "", limit: int = 500) -> list[str]:
        """Up to ``limit`` ids, after ``after`` in id order, of stories with no evidence stored:
        stories from before the column existed, or written without it."""
        query = (
            select(stories.c.story_id)
            .where(stories.c.evidence.is_(None), stories.c.story_id > after)
            .order_by(stories.c.story_id)
            .limit(limit)
        )
        with self._store.begin() as conn:
            return list(conn.execute(query).scalars())

    def save_evidence(self, conn: Connection, evidence: Mapping[str, tuple[str, dict[str, Any]]]) -> int:
        """Store the evidence of stories that have none (as :meth:`stories_without_evidence`
        just said, under the run lock); the rest of each story stays as it is. Each is a change
        of the story for the change feed. ``evidence``: per story id, ``(evidence_key, evidence)``.
        Returns how many were written."""
        from pipeline.store.changes import note_change  # change feed

        update = (
            stories.update()
            .where(stories.c.story_id == bindparam("b_story_id"), stories.c.evidence.is_(None))
            .values(evidence=bindparam("b_evidence"), evidence_key=bindparam("b_key"))
        )
        ids = sorted(evidence)
        for chunk in chunks(ids, 500):
            conn.execute(
                update,
                [
                    {
                        "b_story_id": i,
                        "b_key": evidence[i][0],
                        "b_evidence": self._store.bounds.value(stories.c.evidence, evidence[i][1]),
                    }
                    for i in chunk
                ],
            )
            for story_id in chunk:
                note_change(conn, "story", story_id, "update")
        return len(ids)

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
