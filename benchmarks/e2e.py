"""End-to-end benchmark: a generated news web on 127.0.0.1 through the whole pipeline.

Run (from the repo root)::

    .venv/bin/python benchmarks/e2e.py --articles 1000,10000 --outlets 50 --days 7 \
        [--store sqlite|postgresql|both] [--json-out FILE] [--shared PATH]

``--articles`` takes one size or several (comma-separated); with several, the growth ratio
(seconds per article at the largest size over seconds per article at the smallest) is printed:
1.0 is linear.

Method. :mod:`newsweb` serves the web from a child process (M outlets, each its own loopback
server; feed outlets with RSS or Atom, every fourth outlet a news sitemap crawled by Scrapy).
A ``sources.yaml`` with ``delay: 0`` is written and loaded with the registry loader; settings
are ``newsagg run``'s with ``--allow-private-network``. The stages of
``pipeline.run.run_pipeline`` are then called in this process, in its order and under its run
lock, each timed with ``time.perf_counter``:

* discover: ``pull_feed`` for every feed source;
* crawl: ``crawl_sources`` (the Scrapy subprocess: sitemap, robots.txt and article fetches and
  their store writes for sitemap outlets);
* fetch: ``fetch_pending`` (feed outlets' articles, raw pages written);
* clean: ``clean_pending`` (trafilatura on every core, articles written);
* dedup: ``dedup`` (near-duplicates, clustering, stories written);
* store: the time spent inside ``pipeline.store.core.Store`` methods during all of the above in this
  process (outermost calls only; part of the stage times, not added to them; the crawl
  subprocess's writes are not in it).

Articles/s per stage = articles stored / stage seconds. Peak memory: ``resource.getrusage``
maxrss of the process that ran the pipeline and of its largest reaped child (the crawl
subprocess, extract workers), read right after the first run, before the benchmark's own
bookkeeping. Every (store, size) is measured in its own subprocess, so one size's peak is not
the high-water mark of an earlier one.

Second run: the same web, nothing new; its wall time as a fraction of the first's, the requests
the servers saw (and how many carried If-None-Match / If-Modified-Since), and the rows changed:
the symmetric difference of per-row digests of every table taken before and after (the rows
as ``tests/helpers.dump_store`` renders them, hashed so a 10,000-page store is not held twice).

Trafilatura share, from the first run itself: every extraction reports the CPU time spent
inside trafilatura's and htmldate's calls and in the HTML parse they work on
(``pipeline.extract.ExtractStats``, summed over the worker processes). CPU time per stage is the
``resource.getrusage`` user+system time of this process plus its reaped children (the extract
workers, the Scrapy subprocess) over the stage; the web server's process is not reaped before
the end, so it is never counted. The share is given of the extraction calls, of the clean
stage and of the whole run.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select

REPO = Path(__file__).resolve().parents[1]
for extra in (REPO, REPO / "tests", REPO / "benchmarks"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from newsweb import NewsWebProcess  # noqa: E402

from pipeline.clean import clean_pending  # noqa: E402
from pipeline.config import load_settings  # noqa: E402
from pipeline.context import open_context  # noqa: E402
from pipeline.dedup import dedup  # noqa: E402
from pipeline.ingest import fetch_pending, pull_feed  # noqa: E402
from pipeline.run import RunSummary, crawl_sources  # noqa: E402
from pipeline.sources import load_registry  # noqa: E402
from pipeline.store.core import Store, normalise_url  # noqa: E402
from pipeline.store.schema import metadata  # noqa: E402

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
STAGES = ("discover", "crawl", "fetch", "clean", "dedup")


# -- store-time accounting ---------------------------------------------------------------------


class _StoreTimer:
    """Wraps the public methods of Store to add up the time spent in them (outermost calls)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._local = threading.local()
        self._saved: dict[str, Any] = {}

    def _wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        timer = self

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            depth = getattr(timer._local, "depth", 0)
            timer._local.depth = depth + 1
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                timer._local.depth = depth
                if depth == 0 and threading.current_thread() is threading.main_thread():
                    timer.seconds += time.perf_counter() - start

        return wrapper

    def __enter__(self) -> _StoreTimer:
        skip = {"begin", "run_lock", "migrate", "close"}
        for name, value in list(vars(Store).items()):
            if (
                callable(value)
                and not name.startswith("_")
                and name not in skip
                and not isinstance(value, staticmethod | classmethod | property)
            ):
                self._saved[name] = value
                setattr(Store, name, self._wrap(value))
        return self

    def __exit__(self, *exc: object) -> None:
        for name, value in self._saved.items():
            setattr(Store, name, value)


def _maxrss_mb() -> dict[str, float]:
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"self_mb": round(self_kb / 1024, 1), "children_mb": round(child_kb / 1024, 1)}


# -- one pipeline run, stage by stage ----------------------------------------------------------


def _cpu_s() -> tuple[float, float]:
    """User+system CPU seconds of this process, and of its children reaped so far."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


class _Stages:
    """Wall and CPU time per stage: this process plus its reaped children (the Scrapy
    subprocess). Extract workers may be the forkserver's children, never reaped by this process,
    so the clean stage counts the CPU they report themselves instead (``workers_s``)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.own: dict[str, float] = {}
        self.children: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        wall, (own, children) = time.perf_counter(), _cpu_s()
        try:
            yield
        finally:
            self.wall[name] = time.perf_counter() - wall
            own_now, children_now = _cpu_s()
            self.own[name], self.children[name] = own_now - own, children_now - children


def run_stages(settings: Any, sources: list[Any]) -> dict[str, Any]:
    summary = RunSummary()
    st = _Stages()
    with open_context(settings) as ctx, _StoreTimer() as store_time, ctx.store.run_lock():
        feeds = [s for s in sources if s.kind == "rss"]
        crawled = [s for s in sources if s.kind != "rss"]
        with st.stage("discover"):
            for source in feeds:
                outcome = pull_feed(ctx, source, None)
                (
                    summary.sources_ok.append(source.name)
                    if outcome.ok
                    else summary.sources_failed.__setitem__(source.name, outcome.error or "failed")
                )
        with st.stage("crawl"):
            if crawled:
                crawl_sources(ctx, crawled, None, summary)
        with st.stage("fetch"):
            fetch = fetch_pending(ctx, feeds)
            ctx.close_http()  # as run_pipeline does
            threads_at_clean = threading.active_count()  # 1: the extract workers can be forked
        with st.stage("clean"):
            cleaned = clean_pending(ctx, sources)
        with st.stage("dedup"):
            result = dedup(ctx)
        times = {**st.wall, "store": store_time.seconds}
    x = cleaned.extraction
    cpu = {k: st.own[k] + (x.workers_s if k == "clean" else st.children[k]) for k in st.own}
    cpu_total = sum(cpu.values())
    extraction = {
        "pages": x.pages,
        "cpu_s": round(x.cpu_s, 3),
        "workers_s": round(x.workers_s, 3),
        "trafilatura_s": round(x.trafilatura_s, 3),
        "parse_s": round(x.parse_s, 3),
    }
    if x.pages and x.cpu_s:
        extraction["share"] = {
            # what share of each whole is trafilatura's own calls (and with the parse it needs)
            scope: {
                "trafilatura": round(x.trafilatura_s / whole, 4),
                "with_parse": round((x.trafilatura_s + x.parse_s) / whole, 4),
            }
            for scope, whole in (
                ("extract calls", x.cpu_s),
                ("clean stage", cpu["clean"]),
                ("whole run", cpu_total),
            )
            if whole
        }
    return {
        "times": times,
        "cpu_s": {k: round(v, 3) for k, v in cpu.items()},
        "cpu_total_s": round(cpu_total, 3),
        "extraction": extraction,
        "fetch": dict(fetch.counts),
        "articles": dict(cleaned.counts),
        "stories": dict(result.stories),
        "failed_sources": summary.sources_failed,
        "crawl_items": summary.crawl_stats.get("item_scraped_count"),
        "crawl_finish": summary.crawl_stats.get("finish_reason"),
        "threads_at_clean": threads_at_clean,
    }


def _rows_changed(before: dict[str, set[str]], after: dict[str, set[str]]) -> dict[str, int]:
    changed = {}
    for table in set(before) | set(after):
        a, b = set(before.get(table, [])), set(after.get(table, []))
        diff = len(a ^ b)
        if diff:
            changed[table] = diff
    return changed


def _count_articles(url: str) -> int:
    with Store(url) as store:
        return store.counts()["articles"]


def _digests(url: str) -> dict[str, set[str]]:
    """Per table, a digest of each row as dump_store renders it: equal sets, no row changed."""
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            return {
                table.name: {
                    hashlib.sha1(repr(tuple(str(v) for v in row)).encode()).hexdigest()
                    for row in conn.execution_options(yield_per=200).execute(select(table))
                }
                for table in metadata.sorted_tables
            }
    finally:
        engine.dispose()


# -- stores ------------------------------------------------------------------------------------


@contextmanager
def sqlite_store(workdir: Path) -> Iterator[str]:
    yield f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:8]}.db'}"


@contextmanager
def postgres_store(admin_url: str) -> Iterator[str]:
    import psycopg

    name = f"newsagg_bench_{uuid.uuid4().hex[:8]}"
    plain = re.sub(r"^postgresql\+\w+://", "postgresql://", admin_url)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_db_url(admin_url, name)
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_db_url(admin_url: str, name: str) -> str:
    head, _, rest = admin_url.partition("://")
    hostpart, _, _db = rest.partition("/")
    return f"{head}://{hostpart}/{name}"


# -- one size, one store -----------------------------------------------------------------------


def measure(
    articles: int, outlets: int, days: int, store_url: str, workdir: Path, ecb_path: Path | None
) -> dict[str, Any]:
    with NewsWebProcess(articles=articles, outlets=outlets, days=days, ecb_path=ecb_path) as web:
        registry = workdir / f"sources-{articles}.yaml"
        registry.write_text(web.sources_yaml(), encoding="utf-8")
        settings = load_settings(
            {
                "store_url": store_url,
                "sources": str(registry),
                "allow_private_network": True,
                "data_dir": str(workdir),
            }
        )
        sources = list(load_registry(settings.sources))
        start = time.perf_counter()
        first = run_stages(settings, sources)
        first_wall = time.perf_counter() - start
        peak = _maxrss_mb()  # the pipeline's, before the benchmark's own bookkeeping
        stored = _count_articles(store_url)
        before = _digests(store_url)
        mark = web.hit_count()
        start = time.perf_counter()
        second = run_stages(settings, sources)
        second_wall = time.perf_counter() - start
        after = _digests(store_url)
        requests = web.request_counts(mark)
        first_requests = web.request_counts(0)
        first_requests["requests"] = mark
        return {
            "web": web.describe(),
            "store": store_url.split(":", 1)[0],
            "articles_stored": stored,
            "first": {
                **first,
                "wall_s": round(first_wall, 3),
                "articles_per_s": round(stored / first_wall, 1) if first_wall else None,
                "stage_articles_per_s": {
                    k: round(stored / v, 1) if v else None for k, v in first["times"].items()
                },
                "requests": first_requests,
            },
            "second": {
                **second,
                "wall_s": round(second_wall, 3),
                "fraction_of_first": round(second_wall / first_wall, 4),
                "requests": requests,
                "rows_changed": _rows_changed(before, after),
            },
            "peak_memory": peak,
        }


# -- reporting ---------------------------------------------------------------------------------


def _fmt_row(r: dict[str, Any]) -> str:
    f, s = r["first"], r["second"]
    stage = " ".join(f"{k}={v}" for k, v in f["stage_articles_per_s"].items())
    req = s["requests"]
    return (
        f"{r['store']:<10} {r['web']['articles']:>6} {r['articles_stored']:>6} {f['wall_s']:>8.1f} "
        f"{f['articles_per_s']:>7} | {stage} | 2nd {s['wall_s']:.2f}s ({s['fraction_of_first']:.1%}), "
        f"{req['requests']} req, {req['conditional']} conditional, "
        f"rows changed {sum(s['rows_changed'].values())}"
    )


def print_table(results: list[dict[str, Any]], growth: dict[str, Any]) -> None:
    print("store       size  stored   wall_s   art/s | stage articles/s | second run")
    for r in results:
        print(_fmt_row(r))
        x = r["first"]["extraction"]
        for scope, share in x.get("share", {}).items():
            print(
                f"    trafilatura share of {scope} CPU: {share['trafilatura']:.1%} "
                f"({share['with_parse']:.1%} with its HTML parse); rest {1 - share['trafilatura']:.1%}"
            )
        cpu = r["first"]["cpu_s"]
        print(
            "    CPU s per stage: "
            + " ".join(f"{k}={v}" for k, v in cpu.items())
            + f" total={r['first']['cpu_total_s']}"
        )
        w = r["web"].get("page_weight")
        if w:
            print(
                f"    article page weight: median {w['median_kb']} KB, mean {w['mean_kb']} KB, "
                f"p10 {w['p10_kb']} KB, p90 {w['p90_kb']} KB"
            )
        s = r["second"]["requests"]
        print(
            f"    second-run requests by kind {s['by_kind']}, conditional {s['conditional_by_kind']}; "
            f"peak memory {r['peak_memory']}"
        )
    for store, g in growth.items():
        print(
            f"growth {store}: {g['small']} → {g['large']} articles: seconds per article ×{g['ratio']} "
            f"(1.0 = linear)"
        )


def measure_one(kind: str, size: int, outlets: int, days: int, ecb: Path | None) -> dict[str, Any]:
    """One (store, size) in this process; {"skipped": why} when PostgreSQL is unreachable."""
    with tempfile.TemporaryDirectory(prefix="newsagg-e2e-") as tmp:
        workdir = Path(tmp)
        ctx = (
            sqlite_store(workdir)
            if kind == "sqlite"
            else postgres_store(os.environ.get("NEWSAGG_TEST_POSTGRES_URL") or PG_DEFAULT)
        )
        try:
            with ctx as url:
                return measure(size, outlets, days, url, workdir, ecb)
        except Exception as exc:
            if kind != "postgresql" or "connect" not in f"{type(exc).__name__} {exc}".lower():
                raise
            return {"skipped": f"PostgreSQL unavailable: {exc}"}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--articles", default="1000", help="size, or sizes comma-separated (1000)")
    ap.add_argument("--outlets", type=int, default=50)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--store", choices=("sqlite", "postgresql", "both"), default="sqlite")
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: "store:size" in this process
    args = ap.parse_args(argv)
    ecb = args.shared / "data/events/ecbplus-dev.jsonl"
    ecb_path = ecb if ecb.is_file() else None
    if args.one:
        kind, size = args.one.split(":")
        one = measure_one(kind, int(size), args.outlets, args.days, ecb_path)
        if args.json_out:
            args.json_out.write_text(json.dumps(one, default=str), encoding="utf-8")
        return one
    sizes = [int(x) for x in str(args.articles).split(",") if x.strip()]
    stores = ["sqlite", "postgresql"] if args.store == "both" else [args.store]
    results: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="newsagg-e2e-") as tmp:
        for kind in stores:
            for size in sizes:
                # its own process: its own memory high-water mark, nothing left from the last
                out = Path(tmp) / f"{kind}-{size}.json"
                subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--one",
                        f"{kind}:{size}",
                        "--outlets",
                        str(args.outlets),
                        "--days",
                        str(args.days),
                        "--shared",
                        str(args.shared),
                        "--json-out",
                        str(out),
                    ],
                    check=True,
                    cwd=REPO,
                )
                one = json.loads(out.read_text(encoding="utf-8"))
                if "skipped" in one:
                    skipped[kind] = one["skipped"]
                    break
                results.append(one)
    growth: dict[str, Any] = {}
    for kind in stores:
        rs = [r for r in results if r["store"].startswith(kind)]
        if len(rs) >= 2:
            small, large = rs[0], rs[-1]
            per_small = small["first"]["wall_s"] / max(1, small["articles_stored"])
            per_large = large["first"]["wall_s"] / max(1, large["articles_stored"])
            growth[kind] = {
                "small": small["articles_stored"],
                "large": large["articles_stored"],
                "ratio": round(per_large / per_small, 3),
            }
    out = {
        "command": "benchmarks/e2e.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "results": results,
        "growth": growth,
        "skipped": skipped,
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
    }
    print_table(results, growth)
    for kind, why in skipped.items():
        print(f"{kind}: skipped, {why}")
    if args.json_out:
        args.json_out.write_text(json.dumps(out, indent=2, default=str), encoding="utf-8")
    return out


if __name__ == "__main__":
    main()
