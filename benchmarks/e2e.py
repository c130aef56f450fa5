"""End-to-end benchmark: a generated news web on 127.0.0.1 through the whole pipeline.

Run (from the repo root)::

    .venv/bin/python benchmarks/e2e.py --articles 1000,10000 --outlets 50 --days 7 \
        [--delay SECONDS] [--per-outlet N] [--store sqlite|postgresql|both] [--json-out FILE]

``--articles`` and ``--outlets`` take one value or several (comma-separated); ``--per-outlet N``
makes the size ``N × outlets`` for each outlet count. With several sizes the growth ratio
(seconds per article at the largest size over the smallest) is printed: 1.0 is linear.

Method. :mod:`newsweb` serves the web from a child process (M outlets, each its own loopback
server, so its own host for politeness; feed outlets with RSS or Atom, every fourth outlet a
news sitemap crawled by Scrapy). A ``sources.yaml`` with ``delay: SECONDS`` (``--delay``,
default 0) is written and loaded with the registry loader; settings are ``newsagg run``'s with
``--allow-private-network`` and ``host_delay`` = the delay. ``pipeline.run.run_pipeline`` then
runs as ``newsagg run`` runs it (feeds and their articles, the crawl and the clean stage at
once, dedup last), timed with ``time.perf_counter``. The end of each part (fetch, crawl, clean,
dedup) is recorded by wrapping the functions ``run_pipeline`` calls.

Printed per store and size:

* ``politeness: wall W s, bound B s, ratio R`` — B is the largest number of requests one host
  (outlet) received in this run × the delay: no run can be shorter. With delay 0 there is no
  bound.
* the clean CPU bound: the extraction CPU time measured in the same run (every page, in the
  workers, ``pipeline.extract.ExtractStats.cpu_s``) over the extraction cores; wall time
  over that is how close the run comes to doing nothing but extraction.
* peak open file descriptors and peak resident memory of the process tree that ran the
  pipeline (this process, the Scrapy child, the forkserver and its extraction workers; the web
  server's process excluded), sampled from /proc once a second; maxrss as before.
* CPU: this process (fetch threads, writer, clean's reading and writing, dedup), the reaped
  Scrapy child, and the extraction workers' own CPU.

Second run: the same web, nothing new; its wall time as a fraction of the first's, the requests
the servers saw (and how many carried If-None-Match / If-Modified-Since), and the rows changed:
the symmetric difference of per-row digests of every table taken before and after (the rows
as ``tests/helpers.dump_store`` renders them, hashed so a 10,000-page store is not held twice).

The machine may be shared: wall times stretch with other jobs, CPU times do not. Every (store,
size) is measured in its own subprocess, so one size's peak is not the high-water mark of an
earlier one.
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

from newsweb import NewsWebProcess
from sqlalchemy import create_engine, select

import pipeline.run as run_mod
from pipeline.config import load_settings
from pipeline.context import open_context
from pipeline.run import run_pipeline
from pipeline.sources import load_registry
from pipeline.store.core import Store, normalise_url
from pipeline.store.schema import RUN_LOGS, metadata

REPO = Path(__file__).resolve().parents[1]
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def _maxrss_mb() -> dict[str, float]:
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"self_mb": round(self_kb / 1024, 1), "children_mb": round(child_kb / 1024, 1)}


# -- one overlapped run ------------------------------------------------------------------------


def _cpu_s() -> tuple[float, float]:
    """User+system CPU seconds of this process, and of its children reaped so far."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


class _TreeSampler:
    """Peak open descriptors and resident memory of this process and all its descendants (the
    crawl child, the forkserver and its extraction workers), the web server's process excluded;
    read from /proc every ``every`` seconds in a thread."""

    def __init__(self, exclude: set[int], every: float = 1.0) -> None:
        self.exclude, self.every = exclude, every
        self.peak_fds = self.peak_rss_mb = 0.0
        self.peak_fds_self = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="sampler")

    def __enter__(self) -> _TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _tree(self) -> list[int]:
        parents: dict[int, list[int]] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry.name))
        tree, todo = [], [os.getpid()]
        while todo:
            pid = todo.pop()
            if pid in self.exclude:
                continue
            tree.append(pid)
            todo += parents.get(pid, [])
        return tree

    def _run(self) -> None:
        page_mb = os.sysconf("SC_PAGE_SIZE") / 2**20
        while not self._stop.wait(self.every):
            fds = rss = 0.0
            for pid in self._tree():
                try:
                    n = len(os.listdir(f"/proc/{pid}/fd"))
                    rss += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page_mb
                except OSError:
                    continue
                fds += n
                if pid == os.getpid():
                    self.peak_fds_self = max(self.peak_fds_self, n)
            self.peak_fds, self.peak_rss_mb = max(self.peak_fds, fds), max(self.peak_rss_mb, rss)


@contextmanager
def _timeline() -> Iterator[dict[str, float]]:
    """Seconds from the run's start at which each of its parts ended, by wrapping the functions
    ``run_pipeline`` calls (they run in threads at once, so these are ends, not durations)."""
    ends: dict[str, float] = {}
    start = time.perf_counter()
    label = {"fetch_sources": "fetch", "run_crawl_result": "crawl", "clean_pending": "clean"}
    label["dedup"] = "dedup"
    saved = {name: getattr(run_mod, name) for name in label}

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                ends[label[name]] = time.perf_counter() - start

        return wrapper

    for name, fn in saved.items():
        setattr(run_mod, name, timed(name, fn))
    try:
        yield ends
    finally:
        for name, fn in saved.items():
            setattr(run_mod, name, fn)


def run_once(settings: Any, sources: list[Any], web_pid: int) -> dict[str, Any]:
    """One ``run_pipeline``, as ``newsagg run`` calls it: wall, CPU, peaks, what was done."""
    own0, kids0 = _cpu_s()
    with open_context(settings) as ctx, _TreeSampler({web_pid}) as peaks, _timeline() as ends:
        start = time.perf_counter()
        summary = run_pipeline(ctx, sources)
        wall = time.perf_counter() - start
    own1, kids1 = _cpu_s()
    x = summary.extraction
    cpu = {"main": own1 - own0, "crawl": kids1 - kids0, "extract workers": x.workers_s}
    cpu_total = sum(cpu.values())
    cores = settings.extract_workers or os.cpu_count() or 1
    extraction: dict[str, Any] = {
        "pages": x.pages,
        "cpu_s": round(x.cpu_s, 3),
        "workers_s": round(x.workers_s, 3),
        "trafilatura_s": round(x.trafilatura_s, 3),
        "parse_s": round(x.parse_s, 3),
        "cores": cores,
        # the clean stage cannot finish sooner than its extraction CPU spread over the cores
        "cpu_bound_s": round(x.cpu_s / cores, 3),
    }
    if x.pages and x.cpu_s:
        extraction["share"] = {
            scope: {
                "trafilatura": round(x.trafilatura_s / whole, 4),
                "with_parse": round((x.trafilatura_s + x.parse_s) / whole, 4),
            }
            for scope, whole in (("extract calls", x.cpu_s), ("whole run", cpu_total))
            if whole
        }
    return {
        "times": {"run": round(wall, 3), **{f"{k} ended": round(v, 3) for k, v in sorted(ends.items())}},
        "cpu_s": {k: round(v, 3) for k, v in cpu.items()},
        "cpu_total_s": round(cpu_total, 3),
        "extraction": extraction,
        "fetch": dict(summary.fetch),
        "articles": dict(summary.articles),
        "stories": dict(summary.stories),
        "failed_sources": summary.sources_failed,
        "crawl_items": summary.crawl_stats.get("item_scraped_count"),
        "crawl_finish": summary.crawl_stats.get("finish_reason"),
        "peak": {
            "fds_tree": int(peaks.peak_fds),
            "fds_main": peaks.peak_fds_self,
            "rss_tree_mb": round(peaks.peak_rss_mb, 1),
        },
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
                if table.name not in RUN_LOGS
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
    articles: int,
    outlets: int,
    days: int,
    store_url: str,
    workdir: Path,
    ecb_path: Path | None,
    delay: float = 0.0,
) -> dict[str, Any]:
    with NewsWebProcess(articles=articles, outlets=outlets, days=days, ecb_path=ecb_path) as web:
        registry = workdir / f"sources-{articles}.yaml"
        registry.write_text(web.sources_yaml().replace("    delay: 0\n", f"    delay: {delay:g}\n"), "utf-8")
        settings = load_settings(
            {
                "store_url": store_url,
                "sources": str(registry),
                "allow_private_network": True,
                "data_dir": str(workdir),
                "host_delay": delay,  # robots.txt and sitemaps too, in the crawl
            }
        )
        sources = list(load_registry(settings.sources))
        first = run_once(settings, sources, web.pid)
        first_wall = first["times"]["run"]
        peak = _maxrss_mb()  # the pipeline's, before the benchmark's own bookkeeping
        stored = _count_articles(store_url)
        before = _digests(store_url)
        first_requests = web.request_counts(0)  # the first run's, before the second asks more
        mark = first_requests["requests"]
        second = run_once(settings, sources, web.pid)
        second_wall = second["times"]["run"]
        after = _digests(store_url)
        requests = web.request_counts(mark)
        per_host = first_requests.pop("by_outlet")
        requests.pop("by_outlet")
        # the politeness bound: no run can be shorter than its busiest host's requests × delay
        bound = max(per_host.values(), default=0) * delay
        cpu_bound = first["extraction"]["cpu_bound_s"]
        return {
            "web": web.describe(),
            "store": store_url.split(":", 1)[0],
            "articles_stored": stored,
            "delay": delay,
            "first": {
                **first,
                "wall_s": round(first_wall, 3),
                "articles_per_s": round(stored / first_wall, 1) if first_wall else None,
                "stage_articles_per_s": {"run": round(stored / first_wall, 1) if first_wall else None},
                "requests": first_requests,
                "busiest_host_requests": max(per_host.values(), default=0),
                "politeness_bound_s": round(bound, 3),
                "politeness_ratio": round(first_wall / bound, 3) if bound else None,
                "clean_cpu_ratio": round(first_wall / cpu_bound, 3) if cpu_bound else None,
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


def politeness_line(r: dict[str, Any]) -> str:
    """The line other tools read: wall time against the busiest host's requests × delay."""
    f = r["first"]
    ratio = f"{f['politeness_ratio']:.2f}" if f["politeness_ratio"] is not None else "n/a (delay 0)"
    return f"politeness: wall {f['wall_s']:.1f} s, bound {f['politeness_bound_s']:.1f} s, ratio {ratio}"


def print_table(results: list[dict[str, Any]], growth: dict[str, Any]) -> None:
    print("store       size  stored   wall_s   art/s | articles/s | second run")
    for r in results:
        f = r["first"]
        print(
            f"{r['store']} {r['articles_stored']} articles, {r['web']['outlets']} outlets, "
            f"delay {r['delay']:g} s:"
        )
        print("  " + politeness_line(r))
        x = f["extraction"]
        print(
            f"  clean CPU bound: {x['cpu_s']:.1f} s extraction CPU over {x['cores']} cores = "
            f"{x['cpu_bound_s']:.1f} s; wall / that {f['clean_cpu_ratio']}; busiest host "
            f"{f['busiest_host_requests']} requests"
        )
        print(
            "  timeline (s from start): "
            + ", ".join(f"{k} {v}" for k, v in f["times"].items())
            + f"; peak fds {f['peak']['fds_tree']} (main process {f['peak']['fds_main']}), "
            f"peak RSS of the process tree {f['peak']['rss_tree_mb']} MB"
        )
        print(_fmt_row(r))
        x = r["first"]["extraction"]
        for scope, share in x.get("share", {}).items():
            print(
                f"    trafilatura share of {scope} CPU: {share['trafilatura']:.1%} "
                f"({share['with_parse']:.1%} with its HTML parse); rest {1 - share['trafilatura']:.1%}"
            )
        cpu = r["first"]["cpu_s"]
        print(
            "    CPU s: "
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


def measure_one(
    kind: str, size: int, outlets: int, days: int, ecb: Path | None, delay: float = 0.0
) -> dict[str, Any]:
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
                return measure(size, outlets, days, url, workdir, ecb, delay)
        except Exception as exc:
            if kind != "postgresql" or "connect" not in f"{type(exc).__name__} {exc}".lower():
                raise
            return {"skipped": f"PostgreSQL unavailable: {exc}"}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--articles", default="1000", help="size, or sizes comma-separated (1000)")
    ap.add_argument("--outlets", default="50", help="outlets, or several comma-separated (50)")
    ap.add_argument("--per-outlet", type=int, help="articles per outlet (then the size follows the outlets)")
    ap.add_argument("--delay", type=float, default=0.0, help="seconds between two requests to a host")
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
        one = measure_one(kind, int(size), int(args.outlets), args.days, ecb_path, args.delay)
        if args.json_out:
            args.json_out.write_text(json.dumps(one, default=str), encoding="utf-8")
        return one
    sizes = [int(x) for x in str(args.articles).split(",") if x.strip()]
    outlet_counts = [int(x) for x in str(args.outlets).split(",") if x.strip()]
    runs = (
        [(n, n * args.per_outlet) for n in outlet_counts]
        if args.per_outlet
        else [(n, size) for n in outlet_counts for size in sizes]
    )
    stores = ["sqlite", "postgresql"] if args.store == "both" else [args.store]
    results: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="newsagg-e2e-") as tmp:
        for kind in stores:
            for outlets, size in runs:
                # its own process: its own memory high-water mark, nothing left from the last
                out = Path(tmp) / f"{kind}-{outlets}-{size}.json"
                subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--one",
                        f"{kind}:{size}",
                        "--outlets",
                        str(outlets),
                        "--delay",
                        str(args.delay),
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
