"""A run takes its politeness budget: stages at once, every host at once, bounded descriptors.

Real loopback servers (tests/faultserver.py), real stores; the fd-limit test runs the fetch in a
child process with a lowered ``RLIMIT_NOFILE``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import pytest

import pipeline.sampleweb
from pipeline.clean import clean_pending
from pipeline.config import Settings, load_settings
from pipeline.context import open_context
from pipeline.ingest import ingest_page, record_fetch_failure
from pipeline.net.client import HttpClient
from pipeline.store.core import Discovered, Store
from tests.faultserver import FaultServer

REPO = Path(__file__).resolve().parents[1]


def _settings(store_url: str, tmp_path: Path, **extra: object) -> Settings:
    return load_settings(
        {
            "store_url": store_url,
            "allow_private_network": True,
            "data_dir": str(tmp_path),
            "host_delay": 0.0,
            **extra,
        }
    )


@pytest.fixture
def servers() -> Iterator[list[FaultServer]]:
    with ExitStack() as stack:
        yield [stack.enter_context(FaultServer()) for _ in range(40)]


def _status(store: Store, url: str) -> tuple[str, int]:
    from sqlalchemy import select

    from pipeline.store.schema import urls

    with store.begin() as conn:
        row = conn.execute(select(urls.c.status, urls.c.attempts).where(urls.c.url == url)).one()
    return row.status, row.attempts


def test_one_retry_rule_for_every_fetcher(store_url: str, tmp_path: Path) -> None:
    """record_fetch_failure (used by the feed path and the crawl's item pipeline alike): a
    retryable failure stays ``failed`` and pending until ``fetch_attempts`` failures, then it is
    ``dropped`` and no longer pending; a failure no retry can fix drops the URL at once."""
    settings = _settings(store_url, tmp_path, fetch_attempts=3)
    with open_context(settings) as ctx:
        ctx.store.discover([Discovered(url=f"http://example.com/{n}", source="s") for n in ("flaky", "gone")])
        seen = []
        for _ in range(3):
            with ctx.store.begin() as conn:
                seen.append(
                    record_fetch_failure(ctx, conn, "http://example.com/flaky", "s", "HTTP 503", True)
                )
            pending = {p.url for p in ctx.store.pending(["s"], max_attempts=settings.fetch_attempts)}
            assert ("http://example.com/flaky" in pending) == (seen[-1] == "failed")
        assert seen == ["failed", "failed", "dropped"]
        assert _status(ctx.store, "http://example.com/flaky") == ("dropped", 3)
        with ctx.store.begin() as conn:
            assert (
                record_fetch_failure(ctx, conn, "http://example.com/gone", "s", "HTTP 404", False)
                == "dropped"
            )
        reasons = {url: why for url, _, _, why in ctx.store.drop_reasons()}
        assert reasons == {"http://example.com/flaky": "HTTP 503", "http://example.com/gone": "HTTP 404"}
        assert ctx.store.pending(["s"], max_attempts=settings.fetch_attempts) == []


def test_pages_are_cleaned_while_others_are_still_arriving(sqlite_url: str, tmp_path: Path) -> None:
    """The producer stores 60 pages, then waits until the clean stage has written an article
    before storing 20 more: only a clean that overlaps fetching lets it go on. (The extractors
    hand results back in order, with up to 8 chunks of 4 pages in flight: 60 is past that.)"""
    site = Path(pipeline.sampleweb.__file__).parent / "site"
    html = sorted(site.glob("*/news/*.html"))
    pages = [html[i % len(html)] for i in range(80)]
    settings = _settings(sqlite_url, tmp_path, clean_batch_size=2, extract_workers=2)
    with open_context(settings) as ctx:
        urls = [f"http://example.com/{i}/{p.name}" for i, p in enumerate(pages)]
        ctx.store.discover([Discovered(url=u, source="s") for u in urls])
        overlapped = threading.Event()

        def store(part: list[tuple[str, Path]]) -> None:
            with ctx.store.begin() as conn:
                for url, page in part:
                    ingest_page(
                        ctx,
                        conn,
                        url=url,
                        source="s",
                        final_url=url,
                        status=200,
                        body=page.read_bytes(),
                        content_type="text/html",
                        charset=None,
                        etag=None,
                        last_modified=None,
                    )

        def produce() -> None:
            pairs = list(zip(urls, pages, strict=True))
            store(pairs[:60])
            for _ in range(1200):
                if ctx.store.counts()["articles"]:
                    overlapped.set()
                    break
                threading.Event().wait(0.1)
            store(pairs[60:])

        producer = threading.Thread(target=produce)
        producer.start()
        outcome = clean_pending(ctx, None, producing=producer.is_alive)
        producer.join()
        assert overlapped.is_set(), "no article was written before the fetching ended"
        assert sum(outcome.counts.values()) == len(urls), outcome.counts
        assert ctx.store.pages_to_clean() == []


def test_idle_connections_are_bounded_and_expire(servers: list[FaultServer]) -> None:
    """40 hosts asked one after another keep at most ``fetch_workers`` idle sockets, and none
    once they have idled past ``keepalive_idle``."""
    settings = replace(
        Settings(), allow_private_network=True, host_delay=0.0, fetch_workers=5, keepalive_idle=0.5
    )
    with HttpClient(settings) as http:
        for server in servers:
            assert http.get(server.url()).status == 200
            assert http._pool.idle_count() <= 5
        assert http._pool.idle_count() == 5
        threading.Event().wait(0.6)
        http._pool.take(("http", "127.0.0.1", 1, None))  # any pool use closes what expired
        assert http._pool.idle_count() == 0


CHILD = """
import json, resource, sys
limit, hog, store_url, data_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
from pipeline.config import load_settings
from pipeline.context import open_context
from pipeline.ingest import fetch_pending
held = [open("/dev/null") for _ in range(hog)]  # descriptors something else holds
settings = load_settings({"store_url": store_url, "allow_private_network": True,
                          "data_dir": data_dir, "host_delay": 0})
with open_context(settings) as ctx:
    out = fetch_pending(ctx)
print(json.dumps({**out.counts, "peak_hosts": out.peak_hosts}))
"""


def test_short_of_descriptors_no_article_is_dropped(
    sqlite_url: str, tmp_path: Path, servers: list[FaultServer]
) -> None:
    """With 128 descriptors and 95 of them held elsewhere, fetching 40 hosts at once runs into
    EMFILE: the fetch waits for descriptors instead of failing the URL, so every page is
    stored and none is failed or dropped."""
    with Store(sqlite_url) as store:
        store.migrate()
        urls = [s.url("/ok?size=2000") for s in servers]
        store.discover([Discovered(url=u, source="s") for u in urls])
    done = subprocess.run(
        [sys.executable, "-c", CHILD, "128", "95", sqlite_url, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    emfile = done.stderr.count("no file descriptor free")
    print(f"\n40 hosts under 128 descriptors: {counts}; EMFILE retries logged: {emfile}")
    assert counts.get("failed", 0) == 0 and counts.get("dropped", 0) == 0, counts
    with Store(sqlite_url) as store:
        statuses = {_status(store, u)[0] for u in urls}
        assert statuses <= {"fetched", "pending"}, statuses
        assert store.counts()["pages"] == counts.get("stored", 0) == len(urls) - counts.get("deferred", 0)
