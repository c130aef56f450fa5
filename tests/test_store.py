from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from pipeline.errors import ConfigError, StoreError
from pipeline.models import Article, content_hash_for
from pipeline.store.core import Discovered, Store
from pipeline.store.schema import metadata


def make_article(
    url: str = "https://n.example/a", text: str = "Body text of the report.", title: str = "Title"
) -> Article:
    return Article(
        url=url,
        source="wire",
        title=title,
        authors=("A. Writer",),
        published_at=datetime(2026, 11, 19, 3, 0, tzinfo=UTC),
        language="en",
        text=text,
        content_hash=content_hash_for(text),
        fetched_at=datetime(2026, 11, 19, 4, 0, tzinfo=UTC),
    )


def test_migrations_match_the_schema(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_migrate_twice_is_harmless(store: Store) -> None:
    store.migrate()
    assert store.counts()["articles"] == 0


def test_upsert_new_unchanged_updated(store: Store) -> None:
    with store.begin() as conn:
        assert store.upsert_article(conn, make_article()) == "new"
    with store.begin() as conn:
        assert store.upsert_article(conn, make_article()) == "unchanged"
    with store.begin() as conn:
        assert store.upsert_article(conn, make_article(text="Two killed, not one.")) == "updated"
    rows = store.articles_between(None, None)
    assert len(rows) == 1 and rows[0].text == "Two killed, not one."
    assert rows[0].fetched_at == datetime(2026, 11, 19, 4, 0, tzinfo=UTC)
    assert rows[0].authors == ("A. Writer",)


def test_exact_duplicate_by_content_hash(store: Store) -> None:
    with store.begin() as conn:
        store.upsert_article(conn, make_article("https://a.example/1"))
        store.upsert_article(conn, make_article("https://b.example/2"))
    rows = {r.url: r for r in store.articles_between(None, None)}
    original = rows["https://a.example/1"]
    assert original.duplicate_of is None
    assert rows["https://b.example/2"].duplicate_of == original.article_id


def test_discover_is_idempotent_and_requeues_on_lastmod(store: Store) -> None:
    found = [Discovered("https://n.example/a", "wire", lastmod=datetime(2026, 11, 19, tzinfo=UTC))]
    assert store.discover(found) == (1, 0)
    assert store.discover(found) == (0, 0)
    with store.begin() as conn:
        store.mark_url(conn, "https://n.example/a", "fetched")
    assert store.pending() == []
    moved = [Discovered("https://n.example/a", "wire", lastmod=datetime(2026, 11, 20, tzinfo=UTC))]
    assert store.discover(moved) == (0, 1)
    assert [p.url for p in store.pending()] == ["https://n.example/a"]


def test_failed_batch_leaves_previous_state(store: Store) -> None:
    with store.begin() as conn:
        store.upsert_article(conn, make_article("https://n.example/keep"))
    before = store.counts()
    with pytest.raises(StoreError), store.begin() as conn:
        store.upsert_article(conn, make_article("https://n.example/new-1", text="one"))
        store.upsert_article(conn, make_article("https://n.example/new-2", text="two"))
        # The same primary key again: the database refuses, the whole batch rolls back.
        conn.execute(
            metadata.tables["articles"]
            .insert()
            .values(
                article_id=make_article("https://n.example/keep").article_id,
                url="https://x/",
                source="s",
                authors="[]",
                text="",
                content_hash="",
                fetched_at=datetime.now(UTC),
                updated_at=datetime.now(UTC),
            )
        )
    assert store.counts() == before


def test_raw_pages_are_kept_compressed(store: Store) -> None:
    body = b"<html><body><p>" + b"word " * 2000 + b"</p></body></html>"
    with store.begin() as conn:
        assert store.save_page(
            conn,
            url="https://n.example/a",
            source="wire",
            final_url="https://n.example/a",
            body=body,
            content_type="text/html",
            charset="utf-8",
            etag='"1"',
            last_modified=None,
        )
        assert not store.save_page(
            conn,
            url="https://n.example/a",
            source="wire",
            final_url="https://n.example/a",
            body=body,
            content_type="text/html",
            charset="utf-8",
            etag='"1"',
            last_modified=None,
        )
    [page] = store.pages_to_clean()
    assert page.body == body
    with store.engine.connect() as conn:
        stored = conn.execute(metadata.tables["pages"].select()).one()
    assert len(stored.body_gz) < len(body) / 10


def test_bad_store_urls_are_clear() -> None:
    with pytest.raises(ConfigError, match="only sqlite and postgresql"):
        Store("mysql://localhost/db")
    with pytest.raises(ConfigError, match="bad store URL"):
        Store("not a url")


def test_a_page_packed_by_the_fetcher_is_stored_as_one_packed_here(store: Store) -> None:
    from pipeline.store.core import PackedBody, unpack

    body = b"<html><body><p>" + b"Report text. " * 2000 + b"</p></body></html>"
    kwargs = {
        "source": "wire",
        "content_type": "text/html",
        "charset": "utf-8",
        "etag": '"1"',
        "last_modified": None,
    }
    with store.begin() as conn:
        assert store.save_page(conn, url="https://a/1", final_url="https://a/1", body=body, **kwargs)
        assert store.save_page(
            conn, url="https://a/2", final_url="https://a/2", body=body, packed=PackedBody.of(body), **kwargs
        )
        # the same body again: unchanged, whichever way it comes
        assert not store.save_page(
            conn, url="https://a/1", final_url="https://a/1", body=body, packed=PackedBody.of(body), **kwargs
        )
    stored = {p.url: p for p in store.pages_to_clean()}
    assert stored["https://a/1"].body_sha256 == stored["https://a/2"].body_sha256
    assert unpack(stored["https://a/2"].body_gz) == body == stored["https://a/1"].body


def test_a_store_error_names_the_fault_without_the_parameters(store: Store) -> None:
    """A failed statement's parameters may hold megabytes a web page sent: the message that a
    run prints keeps the database's first line only."""
    from sqlalchemy import text

    from pipeline.errors import StoreError

    with pytest.raises(StoreError) as failed, store.begin() as conn:
        conn.execute(text("SELECT * FROM no_such_table WHERE x = :p"), {"p": "x" * 100_000})
    message = str(failed.value)
    assert "no_such_table" in message and "xxxxxxxxxx" not in message and len(message) < 1000
