"""The bulk story writes dedup uses give exactly what the one-at-a-time writes give: the same rows,
the same statuses and the same change feed, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.models import Article, Figure, StoredArticle, Story, StoryArticle, content_hash_for
from pipeline.store.core import Store
from tests.helpers import dump_store

T0 = datetime(2026, 11, 19, 2, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def two_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    if request.param == "sqlite":
        urls = [f"sqlite:///{tmp_path / name / 'newsagg.db'}" for name in ("one", "bulk")]
    else:
        urls = [request.getfixturevalue("pg_url"), request.getfixturevalue("second_pg_url")]
    stores = (Store(urls[0]), Store(urls[1]))
    for s in stores:
        s.migrate()
    yield stores
    for s in stores:
        s.close()


def _article(key: str, hours: int) -> Article:
    text = f"Report {key}: three people were killed and {hours + 2} injured in Kyiv."
    return Article(
        url=f"https://{key}.example/r",
        source=key[0],
        title=f"Report {key}",
        authors=(),
        published_at=T0 + timedelta(hours=hours),
        language="en",
        text=text,
        content_hash=content_hash_for(text),
        fetched_at=T0 + timedelta(hours=hours + 1),
    )


ARTICLES = {k: _article(k, i) for i, k in enumerate(["a1", "a2", "b1", "c1", "d1", "e1"])}


def _story(story_id: str, keys: list[str], figs: list[tuple[str, str, str]], title: str = "") -> Story:
    members = [ARTICLES[k] for k in keys]
    story = Story(
        story_id,
        title or f"Story {story_id}",
        "summary",
        members[0].published_at or T0,
        members[-1].published_at or T0,
        tuple(StoryArticle(a.article_id, a.url, a.source, a.title, a.published_at, None) for a in members),
        tuple(
            Figure(
                kind,
                value,
                ARTICLES[k].source,
                ARTICLES[k].url,
                ARTICLES[k].published_at,
                article_id=ARTICLES[k].article_id,
            )
            for k, kind, value in figs
        ),
        best_article_id=members[-1].article_id,
    )
    return story


# Each round: memberships, then the stories saved in this order.
ROUNDS: list[tuple[dict[str, str], list[tuple[Story, str | None, list[tuple[str, Figure]]]]]] = [
    (
        {"a1": "st_a", "a2": "st_a", "b1": "st_b", "c1": "st_c", "d1": "st_d", "e1": "st_e"},
        [
            _story(
                "st_a", ["a1", "a2"], [("a1", "killed", "3"), ("a2", "killed", "3"), ("a2", "place", "Kyiv")]
            ),
            _story("st_b", ["b1"], [("b1", "injured", "4")]),
            _story("st_c", ["c1"], [("c1", "killed", "3")]),
            _story("st_d", ["d1"], [("d1", "killed", "3")]),
            _story("st_e", ["e1"], []),
        ],
    ),
    # a2 moves to a later story (st_c), b1 to an earlier one (st_a); st_d is unchanged; st_e is
    # saved twice; st_b keeps no member but is saved empty-handed (figures gone); a new story.
    (
        {"a1": "st_a", "a2": "st_c", "b1": "st_a", "c1": "st_c", "d1": "st_d", "e1": "st_f"},
        [
            _story(
                "st_a", ["a1", "b1"], [("a1", "killed", "3"), ("b1", "injured", "4"), ("b1", "killed", "1")]
            ),
            _story("st_b", ["b1"], []),
            _story(
                "st_c", ["a2", "c1"], [("a2", "killed", "3"), ("a2", "place", "Kyiv"), ("c1", "killed", "4")]
            ),
            _story("st_d", ["d1"], [("d1", "killed", "3")]),
            _story("st_e", ["e1"], [("e1", "killed", "2")], title="Revised"),
            _story("st_e", ["e1"], [("e1", "killed", "5")], title="Revised again"),
            _story("st_f", ["e1"], [("e1", "killed", "5")]),
        ],
    ),
    # nothing changes: no row written, no change noted
    (
        {"a1": "st_a", "a2": "st_c", "b1": "st_a", "c1": "st_c", "d1": "st_d", "e1": "st_f"},
        [
            _story(
                "st_a", ["a1", "b1"], [("a1", "killed", "3"), ("b1", "injured", "4"), ("b1", "killed", "1")]
            ),
            _story("st_d", ["d1"], [("d1", "killed", "3")]),
        ],
    ),
]


def _comparable(url: str) -> dict[str, Any]:
    dump = dump_store(url)
    dump["changes"] = sorted(row[:4] for row in dump["changes"])  # without changed_at
    return dump


def test_save_stories_equals_save_story_one_by_one(two_stores: tuple[Store, Store]) -> None:
    one, bulk = two_stores
    for s in (one, bulk):
        with s.begin() as conn:
            for a in ARTICLES.values():
                s.upsert_article(conn, a)
    for memberships, items in ROUNDS:
        statuses = []
        for s in (one, bulk):
            with s.begin() as conn:
                s.assign(conn, {ARTICLES[k].article_id: (sid, None, "sig") for k, sid in memberships.items()})
            with s.begin() as conn:
                if s is bulk:
                    statuses.append(s.save_stories(conn, items))
                else:
                    statuses.append([s.save_story(conn, item) for item in items])
        assert statuses[0] == statuses[1]
        assert _comparable(one.url) == _comparable(bulk.url)
    assert statuses[0] == ["unchanged", "unchanged"]
    assert {(f.kind, f.value) for story in bulk.stories(story_ids=["st_c"]) for f in story.figures} == {
        ("killed", "3"),
        ("place", "Kyiv"),
        ("killed", "4"),
    }


def test_articles_of_stories_with_known_rows(two_stores: tuple[Store, Store]) -> None:
    store = two_stores[0]
    with store.begin() as conn:
        for a in ARTICLES.values():
            store.upsert_article(conn, a)
    known = {r.article_id: r for r in store.articles_between(None, None) if r.url != ARTICLES["b1"].url}
    with store.begin() as conn:
        store.assign(
            conn,
            {
                ARTICLES["a1"].article_id: ("st_a", None, "s1"),
                ARTICLES["b1"].article_id: ("st_a", ARTICLES["a1"].article_id, "s2"),
                ARTICLES["c1"].article_id: ("st_c", None, None),
            },
        )

    def by_id(rows: list[StoredArticle]) -> dict[str, StoredArticle]:
        return {r.article_id: r for r in rows}

    plain = by_id(store.articles_of_stories(["st_a", "st_c", "st_none"]))
    assert by_id(store.articles_of_stories(["st_a", "st_c", "st_none"], known=known)) == plain
    assert plain[ARTICLES["b1"].article_id].copy_of == ARTICLES["a1"].article_id
    assert set(plain) == {ARTICLES[k].article_id for k in ("a1", "b1", "c1")}
