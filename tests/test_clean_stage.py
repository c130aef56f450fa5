"""The clean stage: one extraction pool per stage, batched writes, CPU accounting."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import pipeline.extract.pool as extract_module
from pipeline.clean import clean_batch, clean_pending
from pipeline.config import load_settings
from pipeline.context import open_context
from pipeline.models import Article, content_hash_for
from pipeline.store.core import Store

PARAGRAPH = (
    "The regional council said on Tuesday that the repairs to the {n} bridge would take "
    "at least three weeks, and that ferries would run every half hour meanwhile."
)


def page(n: int, copy_of: int | None = None) -> bytes:
    k = copy_of if copy_of is not None else n
    body = "".join(f"<p>{PARAGRAPH.format(n=f'{k}-{i}')}</p>" for i in range(4))
    return (
        f"<html><head><title>Bridge {n}</title></head><body><nav><a href='/'>Home</a></nav>"
        f"<article><h1>Bridge report {k}</h1>{body}</article></body></html>"
    ).encode()


def fill(store: Store, pages: dict[str, bytes]) -> None:
    with store.begin() as conn:
        for url, body in pages.items():
            store.save_page(
                conn,
                url=url,
                source="site",
                final_url=url,
                body=body,
                content_type="text/html",
                charset="utf-8",
                etag=None,
                last_modified=None,
            )


def article(url: str, text: str, minutes: int = 0) -> Article:
    return Article(
        url=url,
        source="site",
        title="T",
        authors=(),
        published_at=None,
        language="en",
        text=text,
        content_hash=content_hash_for(text),
        fetched_at=datetime(2026, 11, 19, 4, 0, tzinfo=UTC) + timedelta(minutes=minutes),
    )


def test_a_batch_upsert_equals_one_by_one(store_url: str, tmp_path: Path) -> None:
    """Same rows, same outcomes, same exact-duplicate links, in one batch as one at a time."""
    first = [article("https://s/a", "one"), article("https://s/b", "two", 1)]
    second = [
        article("https://s/c", "one", 2),  # a copy of a (stored earlier)
        article("https://s/d", "three", 3),
        article("https://s/e", "three", 4),  # a copy of d, which is in this same batch
        replace(first[1], text="two, revised", content_hash=content_hash_for("two, revised")),
        article("https://s/a", "one"),
    ]  # unchanged
    other = f"sqlite:///{tmp_path / 'other.db'}"
    outcomes = []
    for url, batched in ((store_url, True), (other, False)):
        s = Store(url)
        s.migrate()
        with s.begin() as conn:
            s.upsert_articles(conn, first)
        with s.begin() as conn:
            if batched:
                outcomes.append(s.upsert_articles(conn, second))
            else:
                outcomes.append([s.upsert_article(conn, a) for a in second])
        s.close()
    assert outcomes[0] == outcomes[1] == ["new", "new", "new", "updated", "unchanged"]
    views = [_view(url) for url in (store_url, other)]
    assert views[0] == views[1]
    assert views[0]["https://s/c"][0] == "https://s/a"  # duplicate of the earlier original
    assert views[0]["https://s/e"][0] == "https://s/d"  # of an original in the same batch
    assert views[0]["https://s/b"] == (None, content_hash_for("two, revised"), "two, revised")


def _view(url: str) -> dict[str, tuple[str | None, str, str]]:
    """url: (url of the original it duplicates, content hash, text)."""
    s = Store(url)
    rows = s.articles_between(None, None)
    s.close()
    by_id = {r.article_id: r.url for r in rows}
    return {r.url: (by_id.get(r.duplicate_of), r.content_hash, r.text) for r in rows}


def test_the_same_url_twice_in_a_batch_sees_its_first_write(store: Store) -> None:
    with store.begin() as conn:
        got = store.upsert_articles(
            conn, [article("https://s/a", "one"), article("https://s/a", "one, revised")]
        )
    assert got == ["new", "updated"]
    (row,) = store.articles_between(None, None)
    assert row.text == "one, revised"


def test_one_pool_serves_the_whole_stage(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many write batches, one set of workers; results as in-process and CPU time accounted."""
    pools: list[int] = []
    real = extract_module._new_pool

    def counting(workers: int):  # type: ignore[no-untyped-def]
        pools.append(workers)
        return real(workers)

    monkeypatch.setattr(extract_module, "_new_pool", counting)
    pages = {f"https://site.example/n/{i:03d}": page(i, copy_of=0 if i == 7 else None) for i in range(30)}
    pages["https://site.example/n/bad"] = b"\x89PNG\r\n\x1a\n not a page"
    results = []
    for url, workers in ((store_url, 2), (f"sqlite:///{tmp_path / 'single.db'}", 1)):
        settings = load_settings(
            {"store_url": url, "extract_workers": workers, "clean_batch_size": 8, "data_dir": str(tmp_path)}
        )
        with open_context(settings) as ctx:
            fill(ctx.store, pages)
            outcome = clean_pending(ctx)
            again = clean_pending(ctx)
        store = Store(url)
        results.append(
            (
                outcome,
                {
                    r.url: (r.title, r.text, r.duplicate_of is not None)
                    for r in store.articles_between(None, None)
                },
            )
        )
        store.close()
        assert sum(again.counts.values()) == 0  # everything was marked cleaned
    assert pools == [2]  # 31 pages in 4 write batches: one pool
    (parallel, rows), (single, single_rows) = results
    assert rows == single_rows and len(rows) == 30
    assert rows["https://site.example/n/007"][2]  # a copy of page 0: exact duplicate
    assert parallel.counts == single.counts == {"new": 30, "dropped": 1}
    assert "not HTML" in parallel.drops["https://site.example/n/bad"]
    for outcome, workers_cpu in ((parallel, True), (single, False)):
        x = outcome.extraction
        assert x.pages == 31
        assert 0 < x.trafilatura_s < x.cpu_s and 0 < x.parse_s < x.cpu_s
        assert (x.workers_s >= x.cpu_s) if workers_cpu else x.workers_s == 0


def test_clean_batch_is_one_range_in_one_transaction(store: Store, tmp_path: Path) -> None:
    pages = {f"https://site.example/n/{i:03d}": page(i) for i in range(12)}
    settings = load_settings({"store_url": store.url, "extract_workers": 1, "data_dir": str(tmp_path)})
    with open_context(settings) as ctx:
        fill(ctx.store, pages)
        first = clean_batch(ctx, after_url="", limit=5)
        rest = clean_batch(ctx, after_url=first.last_url, limit=50)
    assert first.counts == {"new": 5} and first.last_url == "https://site.example/n/004"
    assert rest.counts == {"new": 7}


def test_pages_stored_gzipped_by_older_versions_still_clean(store: Store, tmp_path: Path) -> None:
    """Bodies were gzip before zstd; a corrupt body costs its page, never the batch."""
    import gzip

    from sqlalchemy import update

    from pipeline.store.schema import pages as pages_table

    fill(store, {f"https://site.example/n/{i}": page(i) for i in range(10)})
    with store.begin() as conn:
        conn.execute(
            update(pages_table)
            .where(pages_table.c.url == "https://site.example/n/1")
            .values(body_gz=gzip.compress(page(1)))
        )
        conn.execute(
            update(pages_table)
            .where(pages_table.c.url == "https://site.example/n/2")
            .values(body_gz=b"\x28\xb5\x2f\xfd truncated")
        )
    settings = load_settings({"store_url": store.url, "extract_workers": 2, "data_dir": str(tmp_path)})
    with open_context(settings) as ctx:
        outcome = clean_pending(ctx)
    assert outcome.counts == {"new": 9, "dropped": 1}
    assert "stored page is unreadable" in outcome.drops["https://site.example/n/2"]
    titles = {r.url: r.title for r in store.articles_between(None, None)}
    assert titles["https://site.example/n/1"] == "Bridge report 1"
