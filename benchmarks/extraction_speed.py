"""Throughput of pipeline.extract.extract_many against plain single-process trafilatura.

Run ``python benchmarks/extraction_speed.py [--shared PATH] [--rounds N] [--workers N]``. The
fundus pages (see extraction_quality.py) are decompressed into memory first so that neither side
pays for disk or gzip. Each round times, in the same process and run:

* ``trafilatura``: ``trafilatura.extract(html, url=url)`` page after page (its defaults, text
  only, no metadata: the cheapest plain call, so the hardest baseline);
* ``trafilatura+meta``: the same with ``with_metadata=True`` (what extract gives back);
* ``newsagg``: ``list(extract_many(...))`` with all cores, pool start-up included;
* ``newsagg extract``: the command line on the 258 gzipped page files, the whole process
  (interpreter start, imports, reading and inflating the files, JSON out) timed from outside.
  trafilatura's figures include none of that, so the ratio is a floor.

The best round of each is reported as pages per second, with the ratios. The last newsagg round
also reports, from ``pipeline.extract``'s own CPU clocks in every worker, the share of its
extraction time spent inside trafilatura's and htmldate's calls: on these real pages, the
cross-check for the same figure on the generated pages of the end-to-end benchmark.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import extraction_quality as quality


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(shared: Path | None = None, rounds: int = 1, workers: int = 0) -> dict[str, float]:
    """Pages per second of each contender (best of ``rounds``); FileNotFoundError without data."""
    import trafilatura

    from pipeline.extract import ExtractStats, extract_many

    fundus = quality.data_dir(shared)
    if fundus is None:
        raise FileNotFoundError(f"fundus data not found under {shared or quality.DEFAULT_SHARED}")
    pages = [(case.html(), case.url) for case in quality.load_cases(fundus)]

    def plain() -> None:
        for html, url in pages:
            trafilatura.extract(html, url=url)

    def plain_meta() -> None:
        for html, url in pages:
            trafilatura.extract(html, url=url, with_metadata=True)

    stats = ExtractStats()

    def ours() -> None:
        nonlocal stats
        stats = ExtractStats()
        for _ in extract_many(
            ((i, html, url) for i, (html, url) in enumerate(pages)), workers=workers, stats=stats
        ):
            pass

    files = [str(case.html_path) for case in quality.load_cases(fundus)]

    def cli() -> None:
        command = [sys.executable, "-m", "pipeline.cli", "extract", *files]
        if workers:
            command += ["--workers", str(workers)]
        subprocess.run(command, stdout=subprocess.DEVNULL, check=False)

    best = dict.fromkeys(("trafilatura", "trafilatura+meta", "newsagg", "newsagg extract"), float("inf"))
    for _ in range(rounds):
        best["newsagg"] = min(best["newsagg"], _time(ours))
        best["newsagg extract"] = min(best["newsagg extract"], _time(cli))
        best["trafilatura"] = min(best["trafilatura"], _time(plain))
        best["trafilatura+meta"] = min(best["trafilatura+meta"], _time(plain_meta))
    return {name: len(pages) / seconds for name, seconds in best.items()} | {
        "pages": len(pages),
        "trafilatura_share": stats.trafilatura_s / stats.cpu_s,
        "parse_share": stats.parse_s / stats.cpu_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shared", type=Path, default=None, help=f"shared directory (default {quality.DEFAULT_SHARED})"
    )
    parser.add_argument("--rounds", type=int, default=1, help="rounds, best one counts")
    parser.add_argument("--workers", type=int, default=0, help="0: all cores")
    args = parser.parse_args(argv)
    if quality.data_dir(args.shared) is None:
        where = (args.shared or quality.DEFAULT_SHARED) / quality.FUNDUS
        print(f"skipped: no fundus data at {where} (pass --shared PATH)")
        return 0
    rates = measure(args.shared, args.rounds, args.workers)
    print(f"{int(rates['pages'])} pages, {os.cpu_count()} cores, best of {args.rounds} round(s)")
    for name in ("trafilatura", "trafilatura+meta", "newsagg", "newsagg extract"):
        print(f"{name:<17} {rates[name]:7.1f} pages/s")
    print(f"ratio newsagg / trafilatura:         {rates['newsagg'] / rates['trafilatura']:.2f}x")
    print(f"ratio newsagg / trafilatura+meta:    {rates['newsagg'] / rates['trafilatura+meta']:.2f}x")
    print(f"ratio newsagg extract / trafilatura: {rates['newsagg extract'] / rates['trafilatura']:.2f}x")
    print(
        f"newsagg extraction CPU inside trafilatura: {rates['trafilatura_share']:.1%} "
        f"({rates['trafilatura_share'] + rates['parse_share']:.1%} with the HTML parse)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
