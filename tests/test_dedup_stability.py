"""Story ids through the store: arrival order, backfills and reruns do not change which articles
share a story, and never rename a story that exists."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

from pipeline.config import load_settings
from pipeline.context import open_context
from pipeline.dedup import dedup, evidence_of, to_doc
from pipeline.models import Article, content_hash_for
from tests.helpers import dump_store

NIGHT1 = datetime(2026, 11, 19, 2, 0, tzinfo=UTC)
NIGHT2 = NIGHT1 + timedelta(days=1)

REPORTS = {
    "wire-1": (
        "Russian missiles and drones hit Kyiv overnight, one killed",
        "Russia attacked Kyiv overnight with missiles and drones, killing one person and "
        "injuring eight in the Shevchenkivskyi and Darnytskyi districts, the head of the "
        "Kyiv City Military Administration, Tymur Tkachenko, said.",
        NIGHT1,
    ),
    "ledger-1": (
        "Two dead as Russia pounds Kyiv with 12 missiles and 48 drones",
        "Two people were killed and 14 injured in Kyiv last night when Russia launched 12 "
        "missiles and 48 drones at the capital. Tymur Tkachenko said debris fell in the "
        "Shevchenkivskyi, Darnytskyi and Solomianskyi districts.",
        NIGHT1 + timedelta(hours=4),
    ),
    "courier-1": (
        "Night attack on Kyiv: one dead, nine injured",
        "One person was killed and nine injured in Kyiv overnight as Russian drones and "
        "missiles struck the Darnytskyi and Shevchenkivskyi districts, Tymur Tkachenko "
        "said on Telegram.",
        NIGHT1 + timedelta(minutes=20),
    ),
    "wire-2": (
        "Kyiv attacked for second night in a row",
        "Russia attacked Kyiv with ballistic missiles and 63 drones overnight, killing one "
        "person and injuring seven in the Holosiivskyi and Obolonskyi districts, Tymur "
        "Tkachenko said.",
        NIGHT2,
    ),
    "ledger-2": (
        "Second night of strikes on Kyiv leaves one dead",
        "One person was killed and seven injured in Kyiv overnight in the Holosiivskyi and "
        "Obolonskyi districts after Russia launched six ballistic missiles and 63 drones, "
        "Tymur Tkachenko said.",
        NIGHT2 + timedelta(hours=3),
    ),
    "wire-odesa": (
        "Odesa port struck by drones overnight",
        "A Russian drone attack on the port of Odesa overnight killed a security guard "
        "and injured four, Oleh Kiper, head of the Odesa regional administration, "
        "said. Fires broke out at a grain terminal in the Prymorskyi district.",
        NIGHT1 + timedelta(hours=2),
    ),
}


def article(key: str) -> Article:
    title, text, published = REPORTS[key]
    return Article(
        url=f"https://{key.split('-')[0]}.example/{key}",
        source=key.split("-")[0],
        title=title,
        authors=(),
        published_at=published,
        language="en",
        text=text,
        content_hash=content_hash_for(text),
        fetched_at=published + timedelta(hours=1),
    )


def ingest(store_url: str, batches: list[list[str]]) -> dict[str, str]:
    settings = load_settings({"store_url": store_url})
    with open_context(settings) as ctx:
        for batch in batches:
            with ctx.store.begin() as conn:
                for key in batch:
                    ctx.store.upsert_article(conn, article(key))
            dedup(ctx)
        rows = ctx.store.articles_between(None, None)
    return {r.url.rsplit("/", 1)[1]: r.story_id for r in rows}


def partition(assigned: dict[str, str]) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for key, story in assigned.items():
        groups.setdefault(story, set()).add(key)
    return {frozenset(g) for g in groups.values()}


EXPECTED = {
    frozenset({"wire-1", "ledger-1", "courier-1"}),
    frozenset({"wire-2", "ledger-2"}),
    frozenset({"wire-odesa"}),
}


def test_order_of_arrival_does_not_matter(tmp_path: Path) -> None:
    keys = sorted(REPORTS)
    for i, batches in enumerate(
        [
            [keys],
            [list(reversed(keys))],
            [["wire-2", "ledger-2"], ["wire-odesa", "courier-1"], ["ledger-1", "wire-1"]],
            [[k] for k in reversed(keys)],
        ]
    ):
        assigned = ingest(f"sqlite:///{tmp_path / f'order{i}.db'}", batches)
        # Ids may differ between orders (a story keeps the id it was born with), membership not.
        assert partition(assigned) == EXPECTED, batches


def test_backfill_of_an_earlier_day_renames_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'backfill.db'}"
    later = ingest(url, [["wire-2", "ledger-2", "courier-1"]])
    after = ingest(url, [["wire-1", "ledger-1", "wire-odesa"]])
    for key, story in later.items():
        assert after[key] == story, f"{key} moved from {story} to {after[key]}"
    assert partition(after) == EXPECTED


def test_rerun_changes_no_row(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rerun.db'}"
    ingest(url, [sorted(REPORTS)])
    before = dump_store(url)
    ingest(url, [sorted(REPORTS)])
    assert dump_store(url) == before


def test_evidence_is_worked_out_again_only_for_stories_whose_reports_changed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'evidence.db'}"
    settings = load_settings({"store_url": url})

    def stored() -> dict[frozenset[str], tuple[dict, int]]:
        """Each story by its reports: its evidence and its change number."""
        with open_context(settings) as ctx:
            seqs = dict(ctx.store.changed_stories(0, 10**9, 100))
            return {
                frozenset(a.url.rsplit("/", 1)[1] for a in s.articles): (s.evidence, seqs[s.story_id])
                for s in ctx.store.stories()
            }

    ingest(url, [["wire-1", "courier-1", "wire-2", "ledger-2", "wire-odesa"]])
    first = stored()
    second_night = frozenset({"wire-2", "ledger-2"})
    assert first[frozenset({"wire-1", "courier-1"})][0]["reports"] == 2
    assert first[second_night][0]["reports"] == 2

    ingest(url, [["ledger-1"]])  # joins the first night's story only
    after = stored()
    kyiv = after[frozenset({"wire-1", "courier-1", "ledger-1"})]
    assert kyiv[0]["reports"] == 3 and "tkachenko" in kyiv[0]["shared_names"]
    assert kyiv[1] > first[frozenset({"wire-1", "courier-1"})][1], "a changed story is a change"
    assert after[second_night] == first[second_night], "untouched: same evidence, no new change"
    assert after[frozenset({"wire-odesa"})] == first[frozenset({"wire-odesa"})]

    # what dedup kept or worked out is what the reports give now
    with open_context(settings) as ctx:
        docs: dict[str, list] = {}
        for row in ctx.store.articles_between(None, None):
            docs.setdefault(row.story_id, []).append(to_doc(row))
        for story in ctx.store.stories():
            assert story.evidence == evidence_of([docs[story.story_id]])[0], story.story_id


def test_stored_evidence_is_kept_while_the_member_texts_are_the_ones_it_came_from(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kept.db'}"
    ingest(url, [["wire-1", "courier-1", "wire-2", "ledger-2", "wire-odesa"]])
    engine = create_engine(url)
    with engine.begin() as conn:  # mark every stored record, and make one key stale
        conn.execute(text("UPDATE stories SET evidence = '{\"reports\": 99}'"))
        conn.execute(
            text("UPDATE stories SET evidence_key = 'stale' WHERE story_id = :s"),
            {"s": ingest(url, [])["wire-2"]},
        )
    after = ingest(url, [["ledger-1"]])  # the whole window is clustered and rebuilt again
    with engine.connect() as conn:
        evidence = dict(conn.execute(text("SELECT story_id, evidence FROM stories")).all())
    engine.dispose()
    assert json.loads(evidence[after["wire-odesa"]]) == {"reports": 99}, "same texts: kept, not redone"
    assert json.loads(evidence[after["wire-2"]])["reports"] == 2, "a stale key: worked out again"
    assert json.loads(evidence[after["wire-1"]])["reports"] == 3, "a new member: worked out again"
