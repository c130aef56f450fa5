"""Crawl speed: pages per second through the real crawl (``run_crawl``: subprocess, Scrapy,
store writes) over loopback sites, with politeness off and with the default politeness.

Run ``python benchmarks/crawl_speed.py [--pages 500] [--hosts 5] [--delay 0.25]``.

Method: ``--hosts`` sites on 127.0.0.1, 127.0.0.2, ... (all loopback on Linux; each is its own
host to the crawler), each with a sitemap of ``--pages / --hosts`` article pages of ~4 KB and
one sitemap source per site, crawled into a fresh SQLite store.

* politeness off: host_delay 0, no robots.txt, no AutoThrottle, 16 requests at once per host,
  so the figure is this machine's limit (Scrapy, SQLite writes, the toy server).
* default politeness: the pinned settings (robots.txt, one request at a time per host,
  AutoThrottle) with host_delay ``--delay`` instead of the production 1 s so the run takes
  about a minute. The expected rate is 1 / delay pages per second per host: that is the point.

Figures: pages/s over Scrapy's own crawl time (``elapsed_time_seconds``; the run's first start
to its last finish), over the wall clock of ``run_crawl`` (process start-up and migration
included), and per host from the servers' request logs (article requests over the span from
a host's first to its last article request).
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from pipeline.config import load_settings
from pipeline.crawl import run_crawl
from pipeline.models import Source
from pipeline.sampleweb.sites import Site, url_entry, urlset  # the loopback sites the crawl tests use

POLITENESS_OFF = {
    "ROBOTSTXT_OBEY": False,
    "AUTOTHROTTLE_ENABLED": False,
    "CONCURRENT_REQUESTS": 64,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
}


def build(site: Site, pages: int) -> Source:
    site.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", "text/plain")
    paths = [f"/news/{i:05d}" for i in range(pages)]
    for path in paths:
        site.add_article(
            path,
            f"Story {path} on {site.host}",
            "A paragraph of an ordinary news story, long enough to weigh. " * 60,
        )
    site.add("/sitemap.xml", urlset(url_entry(site.url(p)) for p in paths), "application/xml")
    return Source(f"host-{site.host.replace('.', '-')}", "sitemap", site.url("/sitemap.xml"))


def run(
    label: str, hosts: int, pages: int, delay: float, scrapy_settings: dict[str, Any] | None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="newsagg-bench-") as tmp, ExitStack() as stack:
        sites = [stack.enter_context(Site(f"127.0.0.{i + 1}")) for i in range(hosts)]
        sources = [build(site, pages // hosts) for site in sites]
        settings = load_settings(
            {
                "store_url": f"sqlite:///{Path(tmp) / 'bench.db'}",
                "allow_private_network": True,
                "host_delay": delay,
                "crawl_page_limit": pages * 2,
            }
        )
        started = time.perf_counter()
        result = run_crawl(settings, sources, None, scrapy_settings=scrapy_settings)
        wall = time.perf_counter() - started
        per_host = []
        for site in sites:
            times = site.times(lambda p: p.startswith("/news/"))
            if len(times) > 1:
                per_host.append((len(times) - 1) / (max(times) - min(times)))
    if result.failed:
        raise SystemExit(f"{label}: sources failed: {result.failed}")
    stored = int(result.stats.get("newsagg/pages/stored", 0))
    crawl_time = float(result.stats["elapsed_time_seconds"])
    return {"label": label, "pages": stored, "wall": wall, "crawl": crawl_time, "per_host": per_host}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=500, help="article pages in all (500)")
    parser.add_argument("--hosts", type=int, default=5, help="loopback hosts (5)")
    parser.add_argument(
        "--delay", type=float, default=0.25, help="host_delay for the polite run, seconds (0.25)"
    )
    args = parser.parse_args(argv)
    print("command:", shlex.join([Path(sys.executable).name, *sys.argv]))
    print(f"{args.pages} pages over {args.hosts} loopback hosts, one sitemap source each\n")
    rows = [
        run("politeness off", args.hosts, args.pages, 0.0, POLITENESS_OFF),
        run(f"default politeness, host_delay {args.delay:g} s", args.hosts, args.pages, args.delay, None),
    ]
    for row in rows:
        hosts = row["per_host"]
        print(f"{row['label']}:")
        print(
            f"  {row['pages']} pages stored; crawl {row['crawl']:.1f} s -> "
            f"{row['pages'] / row['crawl']:.1f} pages/s; wall {row['wall']:.1f} s -> "
            f"{row['pages'] / row['wall']:.1f} pages/s (process start-up included)"
        )
        if hosts:
            print(
                f"  per host: {statistics.mean(hosts):.2f} pages/s on average "
                f"(min {min(hosts):.2f}, max {max(hosts):.2f})"
            )
    print(
        f"\nexpected with politeness: {1 / args.delay:.2f} pages/s per host, "
        f"{args.hosts / args.delay:.1f} pages/s over {args.hosts} hosts"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
