"""A live blog stays one from extraction to every reader: store, views, stories, read API,
exports, the story page and ``newsagg stories``; and migration 0008 keeps what a store holds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from pipeline.clean import clean_pending
from pipeline.config import load_settings
from pipeline.context import open_context
from pipeline.dedup import dedup
from pipeline.progress import Progress
from pipeline.serve.export import export
from pipeline.serve.readapi import create_app
from pipeline.serve.tokens import create_token
from pipeline.serve.web.page import story_card, story_page
from pipeline.store.core import Store, normalise_url
from tests.helpers import dump_store
from tests.test_clean_stage import article, fill
from tests.test_clean_stage import page as report_page
from tests.test_extract_rules import HEADLINE, html, live_head
from tests.test_views import V1_COLUMNS, _alembic, _as_role

LIVE = "https://site.example/live/tram-vote"
REPORT = "https://site.example/news/bridge"


def live_page() -> bytes:
    """The council's tram vote as a live blog (its entries only in the page's JSON-LD)."""
    lead = "Follow the council's tram vote live as the debate unfolds in the chamber this afternoon."
    return html(f"<h1>{HEADLINE}</h1><p>{lead}</p><div id='entries'></div>", live_head())


def rows(store: Store, sql: str) -> list[dict]:
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(sql))]


def _pipeline(store_url: str, tmp_path: Path, force: bool = False) -> None:
    settings = load_settings({"store_url": store_url, "extract_workers": 1, "data_dir": str(tmp_path)})
    with open_context(settings) as ctx:
        if not force:
            fill(ctx.store, {LIVE: live_page(), REPORT: report_page(1)})
        outcome = clean_pending(ctx, force=force)
        assert outcome.counts == ({"unchanged": 2} if force else {"new": 2}), outcome.counts
        dedup(ctx)


def test_a_live_blog_reaches_every_reader_and_a_rerun_changes_nothing(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _pipeline(store_url, tmp_path)
    store = Store(store_url)
    try:
        assert {r.url: r.live_blog for r in store.articles_between(None, None)} == {LIVE: True, REPORT: False}
        for view in ("newsagg_v1_articles", "newsagg_v1_story_articles"):
            got = {r["url"]: bool(r["live_blog"]) for r in rows(store, f"SELECT url, live_blog FROM {view}")}
            assert got == {LIVE: True, REPORT: False}, view

        stories = store.stories()
        by_url = {s.articles[0].url: s for s in stories}
        assert len(stories) == 2 and set(by_url) == {LIVE, REPORT}
        assert by_url[LIVE].live_blog and not by_url[REPORT].live_blog
        assert [a.live_blog for a in by_url[LIVE].articles] == [True]
        live_id = by_url[LIVE].story_id

        with TestClient(create_app(store)) as client:
            auth = {"Authorization": f"Bearer {create_token(store, 'tests')}"}
            listed = client.get("/stories", headers=auth).json()["stories"]
            one = client.get(f"/stories/{live_id}", headers=auth).json()
            schema = client.get("/openapi.json").json()["components"]["schemas"]
        assert {s["story_id"]: s["live_blog"] for s in listed} == {s.story_id: s.live_blog for s in stories}
        assert one["live_blog"] is True and [a["live_blog"] for a in one["articles"]] == [True]
        assert schema["StoryOut"]["properties"]["live_blog"]["description"]
        assert schema["ArticleOut"]["properties"]["live_blog"]["description"]

        spath, apath = tmp_path / "stories.parquet", tmp_path / "articles.parquet"
        export(store, "parquet", spath, progress=Progress(enabled=False))
        export(store, "parquet", apath, kind="articles", progress=Progress(enabled=False))
        exported = {s["story_id"]: s for s in pq.read_table(spath).to_pylist()}
        assert exported[live_id]["live_blog"] is True
        assert [a["live_blog"] for a in exported[live_id]["articles"]] == [True]
        assert [s["live_blog"] for i, s in exported.items() if i != live_id] == [False]
        assert {a["url"]: a["live_blog"] for a in pq.read_table(apath).to_pylist()} == {
            LIVE: True,
            REPORT: False,
        }

        marker = "Live blog</span>"
        assert story_page(by_url[LIVE]).count(marker) == 2  # on the story and on its report
        assert marker not in story_page(by_url[REPORT])
        assert marker in story_card(by_url[LIVE]) and marker not in story_card(by_url[REPORT])
    finally:
        store.close()

    from pipeline.cli import main

    capsys.readouterr()
    assert main(["stories", "--store", store_url, "--json"]) == 0
    cli = {s["story_id"]: s for s in json.loads(capsys.readouterr().out)}
    assert cli[live_id]["live_blog"] is True and cli[live_id]["articles"][0]["live_blog"] is True
    assert main(["stories", "--store", store_url]) == 0
    listing = capsys.readouterr().out
    assert f"{HEADLINE} (live blog)" in listing and listing.count("(live blog)") == 1

    before = dump_store(store_url)
    _pipeline(store_url, tmp_path, force=True)  # every page extracted and written again
    assert dump_store(store_url) == before


def test_a_page_that_stops_being_a_live_blog_is_an_update(store: Store) -> None:
    live = replace(article("https://s/live", "entries so far"), live_blog=True)
    with store.begin() as conn:
        assert store.upsert_articles(conn, [live]) == ["new"]
    seq = store.last_change_seq()
    for flag, outcome in ((False, "updated"), (False, "unchanged"), (True, "updated")):
        with store.begin() as conn:
            assert store.upsert_articles(conn, [replace(live, live_blog=flag)]) == [outcome]
        [row] = store.articles_between(None, None)
        assert row.live_blog is flag
    changes = rows(store, f"SELECT op FROM newsagg_v1_changes WHERE change_seq > {seq}")
    assert [c["op"] for c in changes] == ["update", "update"]


# -- migration 0008 -----------------------------------------------------------------------------

ARTICLE_COLUMNS = [c for c in V1_COLUMNS["newsagg_v1_articles"] if c != "live_blog"]  # before 0008


def _store_at_0007(url: str) -> None:
    """A store before migration 0008 with one story of one article."""
    Store(url).close()  # creates the SQLite file's directory
    command.upgrade(_alembic(url), "0007")
    engine = create_engine(normalise_url(url))
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO articles (article_id, url, source, title, authors, text, content_hash, "
                    "fetched_at, updated_at, story_id, dedup_sig, change_seq) VALUES ('a_old', "
                    "'https://wire.example/old', 'wire', 'Old', '[]', 'Old text.', 'h', :at, :at, "
                    "'st_old', 'done', 1)"
                ),
                {"at": "2026-11-19T01:48:00+00:00"},
            )
            conn.execute(
                text(
                    "INSERT INTO stories (story_id, title, first_seen, last_updated, article_count, "
                    "change_seq) VALUES ('st_old', 'Old', :at, :at, 1, 2)"
                ),
                {"at": "2026-11-19T01:48:00+00:00"},
            )
            conn.execute(
                text(
                    "INSERT INTO changes (change_seq, kind, entity_id, op, changed_at) VALUES "
                    "(1, 'article', 'a_old', 'insert', :at), (2, 'story', 'st_old', 'insert', :at)"
                ),
                {"at": "2026-11-19T01:48:00+00:00"},
            )
            conn.execute(text("UPDATE change_counter SET last_seq = 2"))
    finally:
        engine.dispose()


def _columns(store: Store, view: str) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(text(f"SELECT * FROM {view} WHERE 1 = 0")).keys())


def test_migration_keeps_stored_articles_and_goes_back(store_url: str) -> None:
    _store_at_0007(store_url)
    store = Store(store_url)
    try:
        kept = "SELECT article_id, url, title, text, story_id, change_seq FROM newsagg_v1_articles"
        old = rows(store, kept)
        assert _columns(store, "newsagg_v1_articles") == ARTICLE_COLUMNS
        store.migrate()
        assert _columns(store, "newsagg_v1_articles") == [*ARTICLE_COLUMNS, "live_blog"]
        assert _columns(store, "newsagg_v1_story_articles")[-1] == "live_blog"
        assert rows(store, kept) == old
        assert [bool(r["live_blog"]) for r in rows(store, "SELECT live_blog FROM articles")] == [False]
        [story] = store.stories()
        assert not story.live_blog and [a.article_id for a in story.articles] == ["a_old"]

        command.downgrade(_alembic(store_url), "0007")
        assert _columns(store, "newsagg_v1_articles") == ARTICLE_COLUMNS
        assert "live_blog" not in _columns(store, "newsagg_v1_story_articles")
        assert rows(store, kept) == old
        store.migrate()
        assert _columns(store, "newsagg_v1_articles") == [*ARTICLE_COLUMNS, "live_blog"]
        assert rows(store, kept) == old
    finally:
        store.close()


def test_a_store_not_yet_migrated_reads_as_no_live_blogs(sqlite_url: str, tmp_path: Path) -> None:
    _store_at_0007(sqlite_url)
    store = Store(sqlite_url, read_only=True)  # a reader cannot migrate it
    try:
        store.check_readable()
        [story] = store.stories()
        assert not story.live_blog and [a.live_blog for a in story.articles] == [False]
        path = tmp_path / "articles.parquet"
        assert export(store, "parquet", path, kind="articles", progress=Progress(enabled=False)).rows == 1
        assert [a["live_blog"] for a in pq.read_table(path).to_pylist()] == [False]
    finally:
        store.close()


@pytest.fixture
def reader(pg_url: str) -> Iterator[str]:
    """A role name unique to this test, dropped afterwards (roles are cluster-wide)."""
    import uuid

    import psycopg

    role = f"newsagg_reader_{uuid.uuid4().hex[:8]}"
    yield role
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"DROP OWNED BY {role}")
        conn.execute(f"DROP ROLE IF EXISTS {role}")


def test_the_reader_keeps_the_views_through_the_migration(pg_url: str, reader: str) -> None:
    from pipeline.cli import main

    _store_at_0007(pg_url)
    assert main(["db", "grant-reader", reader, "--store", pg_url]) == 0
    seen = "SELECT article_id FROM {} WHERE story_id = 'st_old'"
    for revision in ("head", "0007", "head"):  # PostgreSQL replaces up, drops and grants again down
        (command.upgrade if revision == "head" else command.downgrade)(_alembic(pg_url), revision)
        for view in ("newsagg_v1_articles", "newsagg_v1_story_articles"):
            assert _as_role(pg_url, reader, seen.format(view)) == [("a_old",)], (revision, view)
    assert _as_role(pg_url, reader, "SELECT live_blog FROM newsagg_v1_articles") == [(False,)]
