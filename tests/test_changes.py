"""The change feed: numbered in commit order, so a polling consumer never misses a change."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import replace

import pytest
from sqlalchemy import text

from pipeline.errors import StoreError
from pipeline.store import changes
from pipeline.store.core import Store
from tests.test_views import KYIV, ODESA, article, fill, save_story


def feed(store: Store, after: int = 0) -> list[tuple[int, str, str, str]]:
    with store.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT change_seq, kind, id, op FROM newsagg_v1_changes WHERE change_seq > :c "
                    "ORDER BY change_seq"
                ),
                {"c": after},
            )
        ]


def seq_of(store: Store, view: str, key: str, value: str) -> int | None:
    with store.engine.connect() as conn:
        return conn.execute(
            text(f"SELECT change_seq FROM {view} WHERE {key} = :v"), {"v": value}
        ).scalar_one_or_none()


def test_every_write_gets_the_next_number_and_no_op_writes_none(store: Store) -> None:
    a = KYIV[0]
    with store.begin() as conn:
        store.upsert_article(conn, a)
    assert feed(store) == [(1, "article", a.article_id, "insert")]
    with store.begin() as conn:
        assert store.upsert_article(conn, a) == "unchanged"
    assert len(feed(store)) == 1
    with store.begin() as conn:
        store.upsert_article(conn, replace(a, text="Two killed now.", content_hash="different"))
    assert feed(store, 1) == [(2, "article", a.article_id, "update")]
    assert seq_of(store, "newsagg_v1_articles", "article_id", a.article_id) == 2

    save_story(store, "st_kyiv", [a], [])
    assert feed(store, 2) == [
        (3, "article", a.article_id, "update"),  # joined a story
        (4, "story", "st_kyiv", "insert"),
    ]
    save_story(store, "st_kyiv", [a], [])
    assert len(feed(store)) == 4  # nothing changed, nothing numbered
    save_story(store, "st_kyiv", [a], [(a, "killed", "2")])
    assert feed(store, 4) == [(5, "story", "st_kyiv", "update")]  # a new figure

    with store.begin() as conn:  # its only article moves: the old story empties and goes
        store.assign(conn, {a.article_id: ("st_other", None, "sig")})
        store.delete_empty_stories(conn)
    assert feed(store, 5) == [(6, "article", a.article_id, "update"), (7, "story", "st_kyiv", "delete")]
    assert seq_of(store, "newsagg_v1_stories", "story_id", "st_kyiv") is None


def test_a_dedup_signature_alone_is_not_a_change(store: Store) -> None:
    a = KYIV[0]
    with store.begin() as conn:
        store.upsert_article(conn, a)
        store.assign(conn, {a.article_id: (None, None, "sig-1")})
    with store.begin() as conn:
        store.assign(conn, {a.article_id: (None, None, "sig-2")})
    assert [c[3] for c in feed(store)] == ["insert"]


def test_one_number_per_row_per_transaction(store: Store) -> None:
    with store.begin() as conn:
        store.upsert_article(conn, KYIV[0])
        store.upsert_article(conn, replace(KYIV[0], text="revised", content_hash="h2"))
        store.upsert_article(conn, KYIV[1])
    assert [(c[0], c[3]) for c in feed(store)] == [(1, "insert"), (2, "insert")]


def test_a_rolled_back_transaction_leaves_no_number(store: Store) -> None:
    with pytest.raises(StoreError), store.begin() as conn:
        store.upsert_article(conn, KYIV[0])
        conn.execute(text("SELECT * FROM no_such_table"))
    with store.begin() as conn:
        store.upsert_article(conn, KYIV[1])
    assert feed(store) == [(1, "article", KYIV[1].article_id, "insert")]


def test_numbers_are_visible_on_the_views(store: Store) -> None:
    fill(store)
    with store.engine.connect() as conn:
        for view in (
            "newsagg_v1_stories",
            "newsagg_v1_articles",
            "newsagg_v1_story_articles",
            "newsagg_v1_story_figures",
        ):
            seqs = conn.execute(text(f"SELECT change_seq FROM {view}")).scalars().all()
            assert seqs and None not in seqs, view
        latest = dict(
            conn.execute(text("SELECT id, MAX(change_seq) FROM newsagg_v1_changes GROUP BY id")).all()
        )
        for story_id, seq in conn.execute(text("SELECT story_id, change_seq FROM newsagg_v1_stories")):
            assert latest[story_id] == seq


def test_a_later_writer_waits_for_the_earlier_commit(store: Store) -> None:
    """A holds number 1 and has not committed; B must not get (or publish) number 2 before A
    commits, or a consumer could read 2, move its cursor past 1 and never see A's change."""
    a_conn = store.engine.connect()
    a_tx = a_conn.begin()
    store.upsert_article(a_conn, KYIV[0])
    assert changes.stamp(a_conn) == [1]
    b_done = threading.Event()
    b_error: list[BaseException] = []

    def writer_b() -> None:
        try:
            with store.begin() as conn:
                store.upsert_article(conn, KYIV[1])
            b_done.set()
        except BaseException as exc:  # pragma: no cover - reported below
            b_error.append(exc)

    thread = threading.Thread(target=writer_b)
    thread.start()
    time.sleep(0.8)
    assert not b_done.is_set(), "B committed while A held an earlier number"
    assert feed(store) == []  # the consumer sees nothing yet, so its cursor stays at 0
    a_tx.commit()
    a_conn.close()
    thread.join(30)
    assert not b_error and b_done.is_set()
    assert feed(store) == [
        (1, "article", KYIV[0].article_id, "insert"),
        (2, "article", KYIV[1].article_id, "insert"),
    ]


def test_concurrent_writers_and_a_polling_consumer(store: Store) -> None:
    """Writers pause between taking numbers and committing, some roll back; a consumer polls
    with a cursor the whole time and must see every committed change exactly once."""
    writers, rounds = 4, 12
    committed: list[int] = []
    lock = threading.Lock()
    done = threading.Event()
    errors: list[BaseException] = []

    def write(w: int) -> None:
        rng = random.Random(w)
        try:
            for i in range(rounds):
                conn = store.engine.connect()
                tx = conn.begin()
                try:
                    store.upsert_article(conn, article(f"w{w}", f"a{i}", f"w{w} round {i}", 3))
                    if i:  # and revise an earlier one
                        earlier = article(f"w{w}", f"a{i - 1}", f"w{w} round {i - 1}", 3)
                        store.upsert_article(
                            conn, replace(earlier, text=f"rev {i}", content_hash=f"h{w}-{i}")
                        )
                    seqs = changes.stamp(conn)
                    time.sleep(rng.uniform(0, 0.03))  # numbered, not yet committed
                    if rng.random() < 0.2:
                        tx.rollback()
                    else:
                        tx.commit()
                        with lock:
                            committed.extend(seqs)
                finally:
                    conn.close()
        except BaseException as exc:
            errors.append(exc)

    seen: list[tuple[int, str, str]] = []

    def consume() -> None:
        cursor = 0
        try:
            with store.engine.connect() as conn:
                while True:
                    finished = done.is_set()
                    page = conn.execute(
                        text(
                            "SELECT change_seq, kind, id FROM newsagg_v1_changes "
                            "WHERE change_seq > :c ORDER BY change_seq LIMIT 5"
                        ),
                        {"c": cursor},
                    ).all()
                    conn.commit()  # a fresh snapshot for the next poll
                    seen.extend(tuple(r) for r in page)
                    if page:
                        cursor = page[-1][0]
                    elif finished:
                        return
                    else:
                        time.sleep(0.002)
        except BaseException as exc:
            errors.append(exc)

    consumer = threading.Thread(target=consume)
    consumer.start()
    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    done.set()
    consumer.join(60)
    assert not errors, errors
    seqs = [s for s, _, _ in seen]
    assert seqs == sorted(set(seqs)), "a change was seen twice or out of order"
    assert seqs == sorted(committed), "the consumer missed a committed change"
    assert seqs == list(range(1, len(seqs) + 1)), "rolled-back transactions left gaps"
    assert [tuple(c[:3]) for c in feed(store)] == seen
    assert len(seen) > writers * rounds  # inserts and revisions, minus rollbacks


def test_changes_after_pages_the_feed(store: Store) -> None:
    fill(store)
    with store.begin() as conn:
        store.upsert_article(conn, replace(ODESA[0], text="Two killed in Odesa.", content_hash="x"))
    got, cursor = [], 0
    with store.engine.connect() as conn:
        while page := changes.changes_after(conn, cursor, limit=3):
            got.extend(page)
            cursor = page[-1].change_seq
        assert changes.last_seq(conn) == cursor
    assert [c.change_seq for c in got] == list(range(1, cursor + 1))
    assert got[-1].kind == "article" and got[-1].op == "update" and got[-1].changed_at
