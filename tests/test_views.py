"""The v1 read views: their columns are a contract (docs/store.md), on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, Table, create_engine, text

from pipeline.models import Article, Figure, Story, StoryArticle, content_hash_for
from pipeline.store.core import MIGRATIONS, Store, normalise_url
from pipeline.store.schema import READ_VIEWS
from tests.helpers import dump_store

# Pinned: changing a list here means breaking every downstream consumer. Add newsagg_v2_* views
# instead (docs/store.md, "Stability promise"); the one change v1 allows is a column added at the
# end, which leaves every existing column where and what it was.
V1_COLUMNS = {
    "newsagg_v1_stories": [
        "story_id",
        "title",
        "summary",
        "best_article_id",
        "first_seen",
        "last_updated",
        "article_count",
        "outlet_count",
        "change_seq",
        "evidence",  # added after v1 was published: JSON, why the reports are together
    ],
    "newsagg_v1_articles": [
        "article_id",
        "url",
        "source",
        "title",
        "authors",
        "published_at",
        "language",
        "text",
        "content_hash",
        "fetched_at",
        "updated_at",
        "story_id",
        "copy_of",
        "change_seq",
        "live_blog",  # appended by migration 0008
    ],
    "newsagg_v1_story_articles": [
        "story_id",
        "article_id",
        "source",
        "url",
        "title",
        "published_at",
        "copy_of",
        "change_seq",
        "live_blog",  # appended by migration 0008
    ],
    "newsagg_v1_story_figures": [
        "story_id",
        "article_id",
        "kind",
        "value",
        "number",
        "source",
        "url",
        "reported_at",
        "change_seq",
        "source_claim",  # appended by migration 0007: the columns before it keep their places
    ],
    "newsagg_v1_changes": ["change_seq", "kind", "id", "op", "changed_at"],
}

T0 = datetime(2026, 11, 19, 1, 48, tzinfo=UTC)


def article(
    source: str, slug: str, text_: str, hour: int, minute: int = 0, title: str | None = None
) -> Article:
    when = datetime(2026, 11, 19, hour, minute, tzinfo=UTC)
    return Article(
        url=f"https://{source}.example/{slug}",
        source=source,
        title=title or f"{source}: {slug}",
        authors=(f"{source} desk",),
        published_at=when,
        language="en",
        text=text_,
        content_hash=content_hash_for(text_),
        fetched_at=when,
    )


KYIV = [
    article(
        "wire",
        "kyiv-strike",
        "Russian missiles hit Kyiv overnight. One killed, eight injured in Shevchenkivskyi.",
        1,
        48,
        "Russian missiles and drones hit Kyiv overnight",
    ),
    article(
        "courier",
        "night-attack",
        "Night attack on Kyiv: one dead, nine injured.",
        2,
        10,
        "Night attack on Kyiv: one dead, nine injured",
    ),
    article(
        "ledger",
        "two-killed",
        "Two killed as Russia pounds Kyiv; 14 injured.",
        6,
        5,
        "Two killed as Russia pounds Kyiv with missiles and drones",
    ),
]
ODESA = [
    article(
        "herald",
        "odesa-port",
        "Drones hit Odesa port; one killed.",
        9,
        10,
        "Odesa port struck in overnight drone attack",
    )
]
KYIV_FIGURES: list[tuple[Article, str, str] | tuple[Article, str, str, str]] = [
    (KYIV[0], "killed", "1"),
    (KYIV[0], "injured", "8"),
    (KYIV[0], "place", "Shevchenkivskyi"),
    (KYIV[1], "killed", "1"),
    (KYIV[1], "injured", "9"),
    (KYIV[2], "killed", "2", "city military administration"),
    (KYIV[2], "injured", "14", "State Emergency Service"),
]


def save_story(
    store: Store,
    story_id: str,
    members: list[Article],
    figs: Sequence[tuple[Article, str, str] | tuple[Article, str, str, str]],
    copies: dict[str, str] | None = None,
) -> str:
    """What dedup does for one story, with the figures given instead of extracted (a fourth
    item is who the report says gives the figure)."""
    copies = copies or {}
    with store.begin() as conn:
        store.assign(conn, {a.article_id: (story_id, copies.get(a.article_id), "sig") for a in members})
    story = Story(
        story_id=story_id,
        title=members[-1].title,
        summary=members[-1].text,
        first_seen=min(a.published_at or T0 for a in members),
        last_updated=max(a.published_at or T0 for a in members),
        articles=tuple(
            StoryArticle(a.article_id, a.url, a.source, a.title, a.published_at, copies.get(a.article_id))
            for a in members
        ),
    )
    story = dataclasses.replace(
        story,
        best_article_id=members[-1].article_id,
        figures=tuple(
            Figure(kind, value, a.source, a.url, a.published_at, claim[0] if claim else None, a.article_id)
            for a, kind, value, *claim in figs
        ),
    )
    with store.begin() as conn:
        return store.save_story(conn, story)


def fill(store: Store) -> None:
    """Two stories: the Kyiv strike (three outlets, figures) and the Odesa strike."""
    with store.begin() as conn:
        for a in KYIV + ODESA:
            store.upsert_article(conn, a)
    save_story(store, "st_kyiv", KYIV, KYIV_FIGURES, copies={KYIV[1].article_id: KYIV[0].article_id})
    save_story(store, "st_odesa", ODESA, [(ODESA[0], "killed", "1"), (ODESA[0], "place", "Prymorskyi")])


def rows(store: Store, sql: str, **params: object) -> list[dict]:
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(sql), params)]


def test_v1_view_columns_are_pinned(store: Store) -> None:
    assert set(READ_VIEWS) == set(V1_COLUMNS)
    with store.engine.connect() as conn:
        for view, columns in V1_COLUMNS.items():
            assert list(conn.execute(text(f"SELECT * FROM {view} WHERE 1 = 0")).keys()) == columns


def _pg_types(columns: list[str], overrides: dict[str, str]) -> list[tuple[str, str]]:
    timestamps = {
        "first_seen",
        "last_updated",
        "published_at",
        "fetched_at",
        "updated_at",
        "reported_at",
        "changed_at",
    }
    texts = {"title", "summary", "authors", "text", "evidence"}
    return [
        (
            c,
            overrides.get(c)
            or (
                "timestamp with time zone"
                if c in timestamps
                else "text"
                if c in texts
                else "bigint"
                if c in ("change_seq", "number", "outlet_count")
                else "character varying"
            ),
        )
        for c in columns
    ]


def test_v1_view_types_are_pinned_on_postgresql(pg_url: str) -> None:
    store = Store(pg_url)
    try:
        store.migrate()
        for view, columns in V1_COLUMNS.items():
            got = rows(
                store,
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = :v ORDER BY ordinal_position",
                v=view,
            )
            want = _pg_types(columns, {"article_count": "integer", "live_blog": "boolean"})
            assert [(r["column_name"], r["data_type"]) for r in got] == want, view
    finally:
        store.close()


def test_views_show_stories_articles_and_figures(store: Store) -> None:
    fill(store)
    [kyiv] = rows(store, "SELECT * FROM newsagg_v1_stories WHERE story_id = 'st_kyiv'")
    assert kyiv["article_count"] == 3 and kyiv["outlet_count"] == 3
    assert kyiv["best_article_id"] == KYIV[2].article_id
    assert kyiv["title"] == KYIV[2].title and kyiv["change_seq"] is not None

    members = rows(
        store, "SELECT * FROM newsagg_v1_story_articles WHERE story_id = 'st_kyiv' ORDER BY published_at"
    )
    assert [m["source"] for m in members] == ["wire", "courier", "ledger"]
    assert members[1]["copy_of"] == KYIV[0].article_id
    assert all(m["change_seq"] is not None for m in members)

    figures = rows(
        store,
        "SELECT kind, value, number, source, source_claim FROM newsagg_v1_story_figures "
        "WHERE story_id = 'st_kyiv' ORDER BY reported_at, kind",
    )
    killed = [(f["source"], f["number"], f["source_claim"]) for f in figures if f["kind"] == "killed"]
    assert killed == [("wire", 1, None), ("courier", 1, None), ("ledger", 2, "city military administration")]
    [place] = [f for f in figures if f["kind"] == "place"]
    assert place["value"] == "Shevchenkivskyi" and place["number"] is None

    [wire] = rows(store, "SELECT * FROM newsagg_v1_articles WHERE source = 'wire'")
    assert wire["story_id"] == "st_kyiv" and wire["authors"] == '["wire desk"]'
    assert wire["text"] == KYIV[0].text

    changes = rows(store, "SELECT * FROM newsagg_v1_changes ORDER BY change_seq")
    assert [c["change_seq"] for c in changes] == list(range(1, len(changes) + 1))
    assert {(c["kind"], c["id"]) for c in changes} >= {("story", "st_kyiv"), ("article", KYIV[0].article_id)}


def test_unassigned_articles_are_not_story_members(store: Store) -> None:
    with store.begin() as conn:
        store.upsert_article(conn, KYIV[0])
    assert rows(store, "SELECT * FROM newsagg_v1_story_articles") == []
    [only] = rows(store, "SELECT story_id, copy_of FROM newsagg_v1_articles")
    assert only == {"story_id": None, "copy_of": None}


def _alembic(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def test_migration_numbers_rows_an_older_store_already_has(store_url: str) -> None:
    Store(store_url).close()  # creates the SQLite file's directory
    command.upgrade(_alembic(store_url), "0001")
    engine = create_engine(normalise_url(store_url))
    with engine.begin() as conn:
        for a in KYIV:
            conn.execute(
                text(
                    "INSERT INTO articles (article_id, url, source, title, authors, published_at, "
                    "language, text, content_hash, fetched_at, updated_at) VALUES (:id, :url, :src, "
                    ":title, '[]', :at, 'en', :text, :hash, :at, :at)"
                ),
                {
                    "id": a.article_id,
                    "url": a.url,
                    "src": a.source,
                    "title": a.title,
                    "at": a.fetched_at,
                    "text": a.text,
                    "hash": a.content_hash,
                },
            )
        conn.execute(
            text(
                "INSERT INTO stories (story_id, title, first_seen, last_updated, "
                "article_count) VALUES ('st_old', 'Old', :at, :at, 3)"
            ),
            {"at": T0},
        )
    engine.dispose()
    store = Store(store_url)
    try:
        store.migrate()
        changes = rows(store, "SELECT change_seq, kind, id, op FROM newsagg_v1_changes ORDER BY change_seq")
        assert [c["change_seq"] for c in changes] == [1, 2, 3, 4]
        assert {c["op"] for c in changes} == {"insert"}
        assert rows(store, "SELECT change_seq FROM newsagg_v1_stories") == [
            {"change_seq": next(c["change_seq"] for c in changes if c["kind"] == "story")}
        ]
        with store.begin() as conn:  # the next change continues the numbering
            store.upsert_article(conn, ODESA[0])
        assert rows(store, "SELECT MAX(change_seq) AS m FROM newsagg_v1_changes") == [{"m": 5}]
    finally:
        store.close()


# The schema an older newsagg wrote, before stories kept their evidence.
BEFORE_EVIDENCE = "0005"


def _older_store(url: str) -> None:
    """A store at BEFORE_EVIDENCE holding the Kyiv and Odesa stories, as dedup left them then."""
    Store(url).close()  # creates the SQLite file's directory
    command.upgrade(_alembic(url), BEFORE_EVIDENCE)
    engine = create_engine(normalise_url(url))
    try:
        with engine.begin() as conn:
            meta = MetaData()
            articles, stories = (Table(t, meta, autoload_with=conn) for t in ("articles", "stories"))
            assert "evidence" not in stories.c
            for story_id, members in (("st_kyiv", KYIV), ("st_odesa", ODESA)):
                conn.execute(
                    articles.insert(),
                    [
                        {
                            "article_id": a.article_id,
                            "url": a.url,
                            "source": a.source,
                            "title": a.title,
                            "authors": "[]",
                            "published_at": a.published_at,
                            "language": a.language,
                            "text": a.text,
                            "content_hash": a.content_hash,
                            "fetched_at": a.fetched_at,
                            "updated_at": a.fetched_at,
                            "story_id": story_id,
                            "dedup_sig": "done",
                        }
                        for a in members
                    ],
                )
                conn.execute(
                    stories.insert(),
                    {
                        "story_id": story_id,
                        "title": members[-1].title,
                        "summary": members[-1].text,
                        "best_article_id": members[-1].article_id,
                        "first_seen": members[0].published_at,
                        "last_updated": members[-1].published_at,
                        "article_count": len(members),
                    },
                )
    finally:
        engine.dispose()


def rows_of_version(url: str) -> str:
    with Store(url) as store:
        [row] = rows(store, "SELECT version_num FROM alembic_version")
    return str(row["version_num"])


def _stories_json(url: str, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    from pipeline.cli import main

    capsys.readouterr()
    assert main(["stories", "--store", url, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


STORY_COLUMNS = "story_id, title, summary, best_article_id, first_seen, last_updated, article_count"


def test_an_older_store_keeps_its_stories_and_the_next_dedup_stores_their_evidence(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.config import load_settings
    from pipeline.context import open_context
    from pipeline.dedup import dedup, fill_evidence

    _older_store(store_url)
    # read before the owner migrates (as the reader role would): evidence worked out on the read
    read_early = _stories_json(store_url, capsys)
    kyiv = next(s for s in read_early if s["story_id"] == "st_kyiv")
    assert kyiv["evidence"]["reports"] == 3 and "Kyiv" in kyiv["evidence"]["shared_places"]
    store = Store(store_url)
    try:
        old_stories = rows(store, f"SELECT {STORY_COLUMNS} FROM stories ORDER BY story_id")
        old_articles = rows(store, "SELECT * FROM articles ORDER BY article_id")

        store.migrate()
        assert rows(store, "SELECT version_num FROM alembic_version") == [
            {"version_num": store._versions()[0]}
        ]
        assert rows(store, f"SELECT {STORY_COLUMNS} FROM stories ORDER BY story_id") == old_stories
        # every column an older store had keeps its value; later migrations only add columns
        migrated = rows(store, "SELECT * FROM articles ORDER BY article_id")
        assert [{k: r[k] for k in old_articles[0]} for r in migrated] == old_articles
        assert {bool(r["live_blog"]) for r in migrated} == {False}  # migration 0008's default
        assert rows(store, "SELECT story_id, evidence FROM newsagg_v1_stories ORDER BY story_id") == [
            {"story_id": "st_kyiv", "evidence": None},
            {"story_id": "st_odesa", "evidence": None},
        ]
        assert _stories_json(store_url, capsys) == read_early  # until dedup runs, worked out alike
        seq = store.last_change_seq()

        # a big store gets its evidence over several runs: here one story's worth at a time
        assert fill_evidence(store, limit=1) == 1
        assert len(rows(store, "SELECT story_id FROM stories WHERE evidence IS NULL")) == 1
        settings = load_settings({"store_url": store_url})
        with open_context(settings) as ctx:
            outcome = dedup(ctx)  # nothing new to place: it only fills the rest in
        assert outcome.articles == 0 and dict(outcome.stories) == {"updated": 1}
        stored = rows(store, "SELECT story_id, evidence FROM newsagg_v1_stories ORDER BY story_id")
        assert {r["story_id"]: json.loads(r["evidence"]) for r in stored} == {
            s["story_id"]: s["evidence"] for s in read_early
        }
        assert rows(store, f"SELECT {STORY_COLUMNS} FROM stories ORDER BY story_id") == old_stories
        assert rows(store, "SELECT * FROM articles ORDER BY article_id") == migrated
        changes = rows(store, "SELECT kind, id, op FROM newsagg_v1_changes WHERE change_seq > :s", s=seq)
        assert sorted((c["kind"], c["id"], c["op"]) for c in changes) == [
            ("story", "st_kyiv", "update"),
            ("story", "st_odesa", "update"),
        ]
        assert _stories_json(store_url, capsys) == read_early  # now read as stored

        before = dump_store(store_url)
        with open_context(settings) as ctx:
            assert not dedup(ctx).stories, "a rerun with nothing new changes no story"
        assert dump_store(store_url) == before
    finally:
        store.close()


def test_downgrade_and_upgrade_again(store: Store, store_url: str) -> None:
    fill(store)
    command.downgrade(_alembic(store_url), "0001")
    with store.engine.connect() as conn:
        with pytest.raises(Exception, match="newsagg_v1_stories"):
            conn.execute(text("SELECT * FROM newsagg_v1_stories"))
        conn.rollback()
    store.migrate()
    assert len(rows(store, "SELECT * FROM newsagg_v1_stories")) == 2


def test_views_file_documents_every_column() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "store.md").read_text()
    for view, columns in V1_COLUMNS.items():
        section = doc.split(f"### `{view}`", 1)[1].split("\n### ", 1)[0]
        for column in columns:
            assert f"| `{column}` |" in section, (view, column)


# -- figure claims: the migration that added source_claim ---------------------------------------

CLAIMS_DOC = "figure claims: who a report says gives each figure"


def _claims_revision(url: str) -> tuple[str, str]:
    """(the revision that adds figures.source_claim, the one before it), found by its title so
    the tests hold whatever number it has after a merge."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic(url))
    [rev] = [r for r in script.walk_revisions() if (r.doc or "").startswith(CLAIMS_DOC)]
    assert isinstance(rev.down_revision, str)
    return rev.revision, rev.down_revision


def _old_store_with_a_figure(url: str) -> str:
    """A store at the revision before the claims migration, with one story and one figure."""
    Store(url).close()  # creates the SQLite file's directory
    _, before = _claims_revision(url)
    command.upgrade(_alembic(url), before)
    engine = create_engine(normalise_url(url))
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO stories (story_id, title, first_seen, last_updated, article_count, change_seq) "
                "VALUES ('st_old', 'Old', :at, :at, 1, 7)"
            ),
            {"at": T0},
        )
        conn.execute(
            text(
                "INSERT INTO figures (article_id, kind, value, story_id, source, url, reported_at) "
                "VALUES ('a_old', 'killed', '2', 'st_old', 'wire', 'https://wire.example/old', :at)"
            ),
            {"at": T0},
        )
    engine.dispose()
    return before


def _figure_columns(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(text("SELECT * FROM newsagg_v1_story_figures WHERE 1 = 0")).keys())


def test_claims_migration_keeps_stored_figures_and_goes_back(store_url: str) -> None:
    before = _old_store_with_a_figure(store_url)
    store = Store(store_url)
    try:
        assert _figure_columns(store) == V1_COLUMNS["newsagg_v1_story_figures"][:-1]
        store.migrate()
        assert _figure_columns(store) == V1_COLUMNS["newsagg_v1_story_figures"]
        assert rows(store, "SELECT kind, number, source_claim, change_seq FROM newsagg_v1_story_figures") == [
            {"kind": "killed", "number": 2, "source_claim": None, "change_seq": 7}
        ]
        command.downgrade(_alembic(store_url), before)
        assert _figure_columns(store) == V1_COLUMNS["newsagg_v1_story_figures"][:-1]
        assert rows(store, "SELECT value, number FROM newsagg_v1_story_figures") == [
            {"value": "2", "number": 2}
        ]
        store.migrate()
        assert _figure_columns(store) == V1_COLUMNS["newsagg_v1_story_figures"]
    finally:
        store.close()


def test_a_store_not_yet_migrated_reads_its_figures_as_unattributed(sqlite_url: str) -> None:
    _old_store_with_a_figure(sqlite_url)
    store = Store(sqlite_url, read_only=True)  # a reader cannot migrate it
    try:
        store.check_readable()
        [story] = store.stories()
        assert [(f.kind, f.value, f.source_claim) for f in story.figures] == [("killed", "2", None)]
    finally:
        store.close()


def test_a_claim_that_changes_updates_its_figure_and_a_rerun_changes_nothing(store: Store) -> None:
    fill(store)
    ledger = [f for f in KYIV_FIGURES if f[0] is KYIV[2]]
    assert save_story(store, "st_kyiv", KYIV, KYIV_FIGURES) == "unchanged"
    feed_before = rows(store, "SELECT COUNT(*) AS n FROM newsagg_v1_changes")
    moved = [
        *(f for f in KYIV_FIGURES if f[0] is not KYIV[2]),
        *((a, k, v, "air force") for a, k, v, *_ in ledger),
    ]
    assert save_story(store, "st_kyiv", KYIV, moved) == "updated"
    claims = rows(
        store,
        "SELECT kind, value, source_claim FROM newsagg_v1_story_figures "
        "WHERE source = 'ledger' ORDER BY kind",
    )
    assert claims == [
        {"kind": "injured", "value": "14", "source_claim": "air force"},
        {"kind": "killed", "value": "2", "source_claim": "air force"},
    ]
    assert rows(store, "SELECT COUNT(*) AS n FROM newsagg_v1_changes")[0]["n"] == feed_before[0]["n"] + 1
    assert save_story(store, "st_kyiv", KYIV, moved) == "unchanged"
    [kyiv] = store.stories(story_ids=["st_kyiv"])
    assert {(f.source, f.kind, f.source_claim) for f in kyiv.figures if f.source == "ledger"} == {
        ("ledger", "killed", "air force"),
        ("ledger", "injured", "air force"),
    }


# -- the reader role (PostgreSQL) ---------------------------------------------------------------


@pytest.fixture
def reader_role(pg_url: str) -> str:
    """A role name unique to this test, dropped afterwards (roles are cluster-wide)."""
    import uuid

    import psycopg

    role = f"newsagg_reader_{uuid.uuid4().hex[:8]}"
    yield role
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"DROP OWNED BY {role}")
        conn.execute(f"DROP ROLE IF EXISTS {role}")


def _as_role(pg_url: str, role: str, sql: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"SET ROLE {role}")
        return (
            conn.execute(sql).fetchall()
            if sql.lstrip().upper().startswith("SELECT")
            else [(conn.execute(sql).rowcount,)]
        )


def test_grant_reader_can_read_the_views_and_nothing_else(
    pg_url: str, reader_role: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import psycopg

    from pipeline.cli import main

    store = Store(pg_url)
    store.migrate()
    fill(store)
    store.close()
    assert main(["db", "grant-reader", reader_role, "--store", pg_url]) == 0
    assert "NOLOGIN" in capsys.readouterr().err
    for view in V1_COLUMNS:
        assert _as_role(pg_url, reader_role, f"SELECT * FROM {view}"), view
    assert _as_role(
        pg_url, reader_role, "SELECT title FROM newsagg_v1_stories WHERE story_id = 'st_kyiv'"
    ) == [(KYIV[2].title,)]
    denied = [
        "SELECT * FROM articles",
        "SELECT * FROM stories",
        "SELECT * FROM api_tokens",
        "SELECT * FROM changes",
        "SELECT * FROM pages",
        "INSERT INTO articles (article_id, url, source, authors, text, content_hash, "
        "fetched_at, updated_at) VALUES ('x', 'x', 'x', '[]', '', '', now(), now())",
        "INSERT INTO newsagg_v1_changes (change_seq, kind, id, op, changed_at) "
        "VALUES (999, 'story', 'x', 'insert', now())",
        "UPDATE newsagg_v1_stories SET title = 'defaced'",
        "DELETE FROM newsagg_v1_articles",
        "CREATE TABLE mine (x int)",
        "CREATE VIEW mine AS SELECT 1 AS x",
        "DROP VIEW newsagg_v1_stories",
        "ALTER TABLE articles ADD COLUMN evil text",
        "TRUNCATE stories",
    ]
    for sql in denied:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            _as_role(pg_url, reader_role, sql)
    with psycopg.connect(pg_url) as conn:  # nothing changed
        assert conn.execute("SELECT count(*) FROM newsagg_v1_stories WHERE title = 'defaced'").fetchone() == (
            0,
        )
        assert conn.execute(
            "SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (reader_role,)
        ).fetchone() == (False,)


def test_grant_reader_login_role_connects_and_is_idempotent(pg_url: str, reader_role: str) -> None:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from pipeline.cli import main

    store = Store(pg_url)
    store.migrate()
    fill(store)
    store.close()
    assert main(["db", "grant-reader", reader_role, "--store", pg_url]) == 0
    assert main(["db", "grant-reader", reader_role, "--login", "--store", pg_url]) == 0
    params = conninfo_to_dict(pg_url)
    params["user"] = reader_role
    params.pop("password", None)
    with psycopg.connect(make_conninfo(**params), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM newsagg_v1_stories").fetchone() == (2,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM articles")


def test_grant_reader_refuses_sqlite_and_privileged_roles(
    sqlite_url: str, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.cli import main

    assert main(["db", "grant-reader", "reader", "--store", sqlite_url]) == 2
    assert "PostgreSQL" in capsys.readouterr().err
    assert main(["db", "grant-reader", "postgres", "--store", pg_url]) == 2
    assert "privileged" in capsys.readouterr().err
    assert main(["db", "grant-reader", "Bad-Name", "--store", pg_url]) == 2


def test_the_reader_role_reads_the_evidence_through_the_view_after_an_upgrade(
    pg_url: str, reader_role: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Granted on an older store, the role keeps reading the stories view after the upgrade
    (PostgreSQL replaces it in place), evidence included, without being granted again."""
    from sqlalchemy.engine import make_url

    from pipeline.config import load_settings
    from pipeline.context import open_context
    from pipeline.dedup import dedup
    from pipeline.store.roles import grant_reader_role

    _older_store(pg_url)
    with Store(pg_url) as older:  # as the older newsagg granted it (`db grant-reader` would migrate)
        grant_reader_role(older, reader_role, login=True)
    assert rows_of_version(pg_url) == BEFORE_EVIDENCE
    as_reader = make_url(pg_url).set(username=reader_role).render_as_string(hide_password=False)
    early = _stories_json(as_reader, capsys)  # the reader cannot migrate: it reads what is there
    assert {s["story_id"]: s["evidence"]["reports"] for s in early} == {"st_kyiv": 3, "st_odesa": 1}

    with open_context(load_settings({"store_url": pg_url})) as ctx:  # the owner's next run
        dedup(ctx)
    got = dict(_as_role(pg_url, reader_role, "SELECT story_id, evidence FROM newsagg_v1_stories"))
    assert {k: json.loads(v) for k, v in got.items()} == {s["story_id"]: s["evidence"] for s in early}
    assert _stories_json(as_reader, capsys) == early
    import psycopg

    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        _as_role(pg_url, reader_role, "SELECT evidence FROM stories")


def test_claims_migration_keeps_the_reader_roles_grant(pg_url: str, reader_role: str) -> None:
    from pipeline.store.roles import grant_reader_role

    _old_store_with_a_figure(pg_url)
    store = Store(pg_url)
    try:
        grant_reader_role(store, reader_role)  # granted on the view as it was before the column
        store.migrate()
    finally:
        store.close()
    assert _as_role(pg_url, reader_role, "SELECT value, source_claim FROM newsagg_v1_story_figures") == [
        ("2", None)
    ]
