"""Source health and the run summary on a big run: what they cost, and how long the summary is.

Run ``python benchmarks/operator_health.py [--sources N] [--pages M] [--store URL]``.

It fills a store as one run would (``N`` sources, ``M`` article pages each, through the Store's
own methods): every tenth source is behind a bot wall (one challenge page on every URL), every
tenth another lost its DNS (every fetch dropped, "cannot resolve"), the rest clean with a few 404s.
Then it times, CPU and wall:

* ``record_run``: the health figures of every source, the rules, the history rows;
* one read of the crawl's progress (``crawl_progress``), which a run repeats every 2 s;
* ``format_drops`` over the run's drops,

and prints the summary's drop lines against the number of dropped URLs, the drops-table rows the
run wrote (they must be equal to the summary's total), and which sources were flagged.
A benchmark helper, not a test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from pipeline.health import crawl_progress, drops_since, record_run
from pipeline.models import Article, Source, content_hash_for
from pipeline.store.core import Discovered, Store, now
from pipeline.store.schema import drops
from pipeline.summary import format_drops

CHALLENGE = (
    b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>"
    b'<div id="cf-challenge-running">Checking your browser</div></body></html>'
)


def article_page(source: str, i: int) -> bytes:
    text = f"Report {i} from {source}: what happened today in the region. " * 60
    page = f"<!DOCTYPE html><html><body><article><h1>{source} {i}</h1><p>{text}</p></article></body></html>"
    return page.encode()


def fill(store: Store, sources: int, pages: int) -> tuple[list[Source], int]:
    names = [
        Source(f"outlet{n:04d}", "rss", f"https://outlet{n:04d}.example/rss.xml") for n in range(sources)
    ]
    dropped = 0
    for n, source in enumerate(names):
        host = f"https://outlet{n:04d}.example"
        urls = [f"{host}/news/{i}" for i in range(pages)]
        store.discover([Discovered(url=u, source=source.name) for u in urls])
        walled, dns_down = n % 10 == 3, n % 10 == 7
        with store.begin() as conn:
            if dns_down:
                for u in urls:
                    store.record_drop(
                        conn,
                        u,
                        source.name,
                        "fetch",
                        f"{u}: cannot resolve outlet{n:04d}.example: [Errno -2]",
                    )
                    dropped += 1
                continue
            cleaned = []
            for i, u in enumerate(urls):
                if i % 25 == 24:  # a few pages gone
                    store.record_drop(conn, u, source.name, "fetch", f"refused {u}: HTTP 404 Not Found")
                    dropped += 1
                    continue
                body = CHALLENGE if walled else article_page(source.name, i)
                store.save_page(
                    conn,
                    url=u,
                    source=source.name,
                    final_url=u,
                    body=body,
                    content_type="text/html",
                    charset="utf-8",
                    etag=None,
                    last_modified=None,
                )
                if walled:
                    store.record_drop(conn, u, source.name, "clean", "cannot clean: no article body found")
                    dropped += 1
                else:
                    text = article_page(source.name, i).decode()
                    cleaned.append(
                        Article(
                            url=u,
                            source=source.name,
                            title=f"{source.name} {i}",
                            authors=(),
                            published_at=None,
                            language="en",
                            text=text,
                            content_hash=content_hash_for(text),
                            fetched_at=now(),
                        )
                    )
            store.upsert_articles(conn, cleaned)
    return names, dropped


def timed(fn, *args):  # type: ignore[no-untyped-def]
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn(*args)
    return result, time.process_time() - cpu, time.perf_counter() - wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=200, help="sources in the run (default 200)")
    parser.add_argument("--pages", type=int, default=50, help="article URLs per source (default 50)")
    parser.add_argument("--store", help="store URL (default: a SQLite file in a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="newsagg-bench-health-") as tmp:
        store = Store(args.store or f"sqlite:///{Path(tmp) / 'bench.db'}")
        store.migrate()
        started = now()
        sources, dropped = fill(store, args.sources, args.pages)
        health, cpu, wall = timed(record_run, store, sources, started)
        read = crawl_progress(store, sources, started)
        (done, found), _, pwall = timed(read)
        run_drops = drops_since(store, started)
        lines, _, fwall = timed(format_drops, run_drops)
        with store.engine.connect() as conn:
            rows = conn.execute(select(func.count()).select_from(drops)).scalar()
        store.close()
    flagged: dict[str, int] = {}
    for h in health:
        for flag in h.flags:
            flagged[flag.rule] = flagged.get(flag.rule, 0) + 1
    pages = args.sources * args.pages
    print(f"run: {args.sources} sources, {pages} article URLs, {dropped} dropped")
    print(f"record_run: {wall:.2f} s wall, {cpu:.2f} s CPU ({1000 * wall / args.sources:.1f} ms per source)")
    print(f"crawl progress read: {pwall * 1000:.0f} ms wall ({done} done of {found} found)")
    print(f"format_drops: {fwall * 1000:.0f} ms; {len(lines)} lines for {len(run_drops)} dropped URLs")
    print(f"drops table rows: {rows}; summary total: {len(run_drops)}; equal: {rows == len(run_drops)}")
    walled = args.sources // 10 + (1 if args.sources % 10 > 3 else 0)
    print(f"flags: {dict(sorted(flagged.items()))} (expected on a first run: wall on {walled} sources)")
    print("\n".join(lines[:6]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
