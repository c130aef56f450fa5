"""The dedup stage: new and changed articles join open stories or open new ones.

Layer 1 (exact: canonical URL, content hash) happens on upsert; here layer 2 (near-duplicate wire
copies, :mod:`pipeline.cluster.neardup`) and layer 3 (event clustering, :mod:`pipeline.cluster.core`) run over
the changed articles and the articles published within ``story_window_hours`` of them, never the
whole store. Existing articles keep their story; a story id, once given, is never renamed.

The best report of a story (its title and summary) is the original report (not a copy) that gives
the most kinds of figures, then the most recent, then the longest: the most complete and freshest
account a reader can be shown.

Each story also keeps its evidence (:func:`pipeline.cluster.explain.story_evidence`): why its
reports are together, worked out from the member texts dedup holds anyway, and only for stories
whose members or their texts changed; the others keep what they have.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pipeline.cluster.core import DEFAULT_PARAMS, Doc, assign_story_ids, cluster_docs
from pipeline.cluster.explain import stories_evidence
from pipeline.cluster.figures import extract_claims
from pipeline.cluster.neardup import find_copies
from pipeline.context import Context
from pipeline.models import Figure, StoredArticle, Story, StoryArticle
from pipeline.parse.titles import TitleCleaner, clean_title, learn_cleaners
from pipeline.store.core import Store, dedup_signature
from pipeline.store.limits import as_stored
from pipeline.store.schema import stories as stories_table
from pipeline.timeutil import iso

SUMMARY_CHARS = 300
STORIES_PER_TRANSACTION = 500
# Stories of an upgraded store given their evidence per run: some 30 s of work, so a big store's
# first run after the upgrade stays within its usual time and the rest follows in later runs.
EVIDENCE_FILLS_PER_RUN = 20_000
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass
class DedupOutcome:
    articles: int = 0  # articles (re)assigned in this run
    stories: Counter[str] = field(default_factory=Counter)  # new / updated / unchanged


def _when(row: StoredArticle) -> datetime:
    value = row.published_at or row.fetched_at
    assert isinstance(value, datetime)
    return value


def to_doc(row: StoredArticle) -> Doc:
    # An undated report is placed at its fetch time: close to publication for a nightly run,
    # and far better than no time evidence at all.
    return Doc(
        id=row.article_id,
        text=row.text,
        title=row.title,
        url=row.url,
        published_at=_when(row),
        source=row.source,
        language=row.language,
    )


def dedup(ctx: Context, recluster: bool = False) -> DedupOutcome:
    """Assign stories to what changed since the last run (or to everything, with ``recluster``);
    then give the stories that have no evidence stored theirs (:func:`fill_evidence`)."""
    outcome = DedupOutcome()
    _dedup_changed(ctx, recluster, outcome)
    filled = fill_evidence(ctx.store)
    if filled:
        outcome.stories["updated"] += filled
    return outcome


def _dedup_changed(ctx: Context, recluster: bool, outcome: DedupOutcome) -> None:
    store = ctx.store
    window = timedelta(hours=ctx.settings.story_window_hours)
    changed = store.articles_between(None, None) if recluster else store.articles_to_dedup()
    if not changed:
        return
    times = [_when(r) for r in changed]
    context = {r.article_id: r for r in store.articles_between(min(times) - window, max(times) + window)}
    for row in changed:
        context[row.article_id] = row
    rows = sorted(context.values(), key=lambda r: r.article_id)
    changed_ids = {r.article_id for r in changed}
    # The whole open window is clustered again, not only what changed: the partition is then a
    # function of the window's articles, whatever order they arrived in. Stored articles may move
    # between stories; story ids stay (see assign_story_ids).
    existing = {r.article_id: r.story_id for r in rows if r.story_id}
    docs = [to_doc(r) for r in rows]
    # one window setting: the linker's time limit is the story window
    params = dataclasses.replace(DEFAULT_PARAMS, max_gap_hours=ctx.settings.story_window_hours)
    partition = cluster_docs(docs, params)
    cleaners = learn_cleaners((r.source, r.title) for r in rows)
    copies = find_copies(docs)
    exact = {r.article_id: r.duplicate_of for r in rows if r.duplicate_of and r.duplicate_of in context}
    # An exact duplicate or a wire copy belongs wherever its original is, however late it ran.
    for dup, original in {**copies, **exact}.items():
        if original in partition:
            partition[dup] = partition[original]
    story_ids = assign_story_ids(partition, existing)
    assignments: dict[str, tuple[str, str | None, str | None]] = {}
    for row in rows:
        article_id = row.article_id
        copy_of = exact.get(article_id) or copies.get(article_id)
        signature = dedup_signature(row) if article_id in changed_ids else row.dedup_sig
        assignments[article_id] = (story_ids[article_id], copy_of, signature)
    previous = {r.story_id for r in rows if r.story_id}
    # Memberships first, with the old signatures: a crash before the stories are written leaves
    # these articles still marked as to-do, so the next run rebuilds their stories.
    old_sigs = {r.article_id: r.dedup_sig for r in rows}
    with store.begin() as conn:
        outcome.articles = store.assign(
            conn, {a: (sid, copy, old_sigs[a]) for a, (sid, copy, _) in assignments.items()}
        )
    # Then the stories, STORIES_PER_TRANSACTION to a transaction, rebuilt from their members as
    # stored now (the window's rows are reused, with their new memberships). A crash between
    # these transactions is repaired by the next run like one before them: the changed articles
    # are still to do, and every story of their window is rebuilt and compared again.
    touched = sorted({a[0] for a in assignments.values()} | previous)
    members: dict[str | None, list[StoredArticle]] = defaultdict(list)
    for member in store.articles_of_stories(touched, known=context):
        members[member.story_id].append(member)
    # The evidence depends on the member texts alone: a story whose members are the texts its
    # evidence was worked out from keeps it; only the others are worked out again.
    keys = {s: members_key(members[s]) for s in touched if members.get(s)}
    kept = {s: e for s, (key, e) in store.stored_evidence(keys).items() if key == keys[s]}
    for start in range(0, len(touched), STORIES_PER_TRANSACTION):
        part = [s for s in touched[start : start + STORIES_PER_TRANSACTION] if members.get(s)]
        todo = [s for s in part if s not in kept]
        kept.update(zip(todo, evidence_of([[to_doc(m) for m in members[s]] for s in todo]), strict=True))
        built = [build_story(story_id, members[story_id], cleaners, kept[story_id]) for story_id in part]
        if not built:
            continue
        with store.begin() as conn:
            outcome.stories.update(store.save_stories(conn, built, keys))
    with store.begin() as conn:
        store.delete_empty_stories(conn)
        store.assign(conn, assignments)  # only now are the changed articles done


def members_key(members: Sequence[StoredArticle]) -> str:
    """What a story's evidence is worked out from: each member's text, headline, time, outlet
    and language (all :func:`to_doc` takes), hashed. Equal keys, equal evidence."""
    digest = hashlib.sha256()
    for d in sorted(map(to_doc, members), key=lambda d: d.id):
        when = d.published_at.isoformat() if d.published_at else ""
        for part in (d.id, d.title or "", d.url or "", when, d.source or "", d.language or "", d.text):
            data = part.encode("utf-8", "surrogatepass")
            digest.update(b"%d:" % len(data) + data)  # length first: no two splits hash alike
    return digest.hexdigest()


def evidence_of(groups: Sequence[Sequence[Doc]]) -> list[dict[str, Any]]:
    """The evidence of each group of reports as the store keeps it (bounded:
    pipeline.store.limits), so what a read works out equals what dedup stores."""
    return [as_stored(stories_table.c.evidence, e) for e in stories_evidence(groups)]


def fill_evidence(store: Store, limit: int = EVIDENCE_FILLS_PER_RUN) -> int:
    """Up to ``limit`` stories with no evidence stored (written before the store kept it) get
    theirs, from their members as stored, STORIES_PER_TRANSACTION at a time: a one-off pass
    after the migration, spread over runs on a big store; later runs find nothing to do (an
    index holds only such stories). Reads work it out meanwhile (:func:`with_evidence`)."""
    filled, after = 0, ""
    while filled < limit and (
        ids := store.stories_without_evidence(after, min(STORIES_PER_TRANSACTION, limit - filled))
    ):
        rows: dict[str | None, list[StoredArticle]] = defaultdict(list)
        for row in store.articles_of_stories(ids):
            rows[row.story_id].append(row)
        found = evidence_of([[to_doc(r) for r in rows[i]] for i in ids])
        evidence = {i: (members_key(rows[i]), e) for i, e in zip(ids, found, strict=True)}
        with store.begin() as conn:
            filled += store.save_evidence(conn, evidence)
        after = ids[-1]
    return filled


def with_evidence(store: Store, stories: Sequence[Story]) -> list[Story]:
    """The stories, each with its evidence: as dedup stored it or, where it has not yet (a store
    migrated since its last run, or one a reader reads before the owner migrates it), worked
    out now from the members, the same way, through the v1 views the reader role can read."""
    missing = [s.story_id for s in stories if s.evidence is None]
    if not missing:
        return list(stories)
    docs: dict[str | None, list[Doc]] = defaultdict(list)
    for row in store.story_member_rows(missing):
        docs[row.story_id].append(to_doc(row))
    found = dict(zip(missing, evidence_of([docs[i] for i in missing]), strict=True))
    return [dataclasses.replace(s, evidence=found[s.story_id]) if s.evidence is None else s for s in stories]


def _best(members: list[StoredArticle], figures: dict[str, list[Figure]]) -> StoredArticle:
    originals = [m for m in members if not m.copy_of and not m.duplicate_of] or members
    return max(
        originals,
        key=lambda m: (
            len({f.kind for f in figures[m.article_id]}),
            _when(m),
            len(m.text),
            m.article_id,
        ),
    )


def summarise(text: str, limit: int = SUMMARY_CHARS) -> str:
    """Leading sentences of the best report, cut at a sentence end within ``limit``.

    Paragraphs without closing punctuation (standfirsts, datelines) are skipped while a later
    paragraph reads as prose, so the summary never runs two fragments together.
    """
    paragraphs = [p.strip() for p in text.splitlines() if p.strip()]
    prose = [p for p in paragraphs if p[-1] in ".!?\"'»”…"] or paragraphs
    summary = ""
    for sentence in (s for p in prose for s in _SENTENCE_END.split(p)):
        if summary and len(summary) + 1 + len(sentence) > limit:
            break
        summary = f"{summary} {sentence}".strip()
    if len(summary) > limit:
        summary = summary[: limit - 1].rsplit(" ", 1)[0] + "…"
    return summary


def build_story(
    story_id: str,
    members: list[StoredArticle],
    cleaners: Mapping[str | None, TitleCleaner] | None = None,
    evidence: dict[str, Any] | None = None,
) -> Story:
    """The story of these member rows; its title is the best report's headline without the
    outlet's boilerplate (``cleaners``: learnt per source from the window's titles). Its evidence
    is ``evidence`` (what is stored, when the members did not change), else worked out."""
    members = sorted(members, key=lambda m: (_when(m), m.article_id))
    per_article: dict[str, list[Figure]] = defaultdict(list)
    all_figures: list[Figure] = []
    for m in members:
        seen: set[tuple[str, str]] = set()
        for kind, value, claim in extract_claims(m.text, m.title, _when(m), m.language):
            if (kind, value) in seen:
                continue
            seen.add((kind, value))
            fig = Figure(
                kind=kind,
                value=value,
                source=m.source,
                url=m.url,
                reported_at=_reported_at(m),
                source_claim=claim,
                article_id=m.article_id,
            )
            per_article[m.article_id].append(fig)
            all_figures.append(fig)
    best = _best(members, per_article)
    first_seen = min(_when(m) for m in members)
    last_updated = max(_reported_at(m) for m in members)
    return Story(
        story_id=story_id,
        title=clean_title(best.title, (cleaners or {}).get(best.source)),
        summary=summarise(best.text),
        first_seen=first_seen,
        last_updated=last_updated,
        articles=tuple(
            StoryArticle(
                m.article_id,
                m.url,
                m.source,
                m.title,
                m.published_at,
                m.copy_of or m.duplicate_of,
                m.language,
                m.live_blog,
            )
            for m in members
        ),
        figures=tuple(all_figures),
        evidence=evidence if evidence is not None else evidence_of([[to_doc(m) for m in members]])[0],
        best_article_id=best.article_id,
    )


def _reported_at(row: StoredArticle) -> datetime:
    """When this version of a report was out: its revision time if it was revised after the
    first fetch, else its publication time."""
    fetched = row.fetched_at
    revised = row.updated_at if row.updated_at and fetched and row.updated_at > fetched else None
    return max(x for x in (_when(row), revised) if x is not None)


def story_to_json(story: Story) -> dict[str, Any]:
    """The shape of ``newsagg stories --json`` (and the read API)."""

    return {
        "story_id": story.story_id,
        "title": story.title,
        "summary": story.summary,
        "first_seen": iso(story.first_seen),
        "last_updated": iso(story.last_updated),
        "articles": [
            {
                "article_id": a.article_id,
                "url": a.url,
                "source": a.source,
                "title": a.title,
                "published_at": iso(a.published_at),
                "copy_of": a.copy_of,
                "live_blog": a.live_blog,
            }
            for a in story.articles
        ],
        "figures": [
            {
                "kind": f.kind,
                "value": _value(f),
                "source": f.source,
                "url": f.url,
                "reported_at": iso(f.reported_at),
                "source_claim": f.source_claim,
            }
            for f in story.figures
        ],
        "evidence": story.evidence,
        "live_blog": story.live_blog,
    }


def _value(fig: Figure) -> int | str:
    return int(fig.value) if fig.kind != "place" and fig.value.isdigit() else fig.value
