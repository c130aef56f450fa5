"""Run every benchmark and write docs/BENCHMARKS.md from what this run measured.

Usage (from the repo root; ``make bench`` runs the first form)::

    .venv/bin/python benchmarks/run_all.py [--output docs/BENCHMARKS.md]
    .venv/bin/python benchmarks/run_all.py --quick      # smaller sizes, same benchmarks
    .venv/bin/python benchmarks/run_all.py --only e2e --e2e-articles 1000,3000

Each benchmark runs as its own subprocess (``python benchmarks/<name>.py ...``) so its memory
and start-up are its own; its stdout is kept, its wall time taken, and its figures are read
from its output (the end-to-end one writes JSON). The document gets: the machine (cores,
memory, load average before and after), the versions, a table of figures each with the exact
command that produced it, and every benchmark's raw output. Ratios are against an anchor
measured in the same run (plain trafilatura, the politeness-off crawl, the smallest size, the
first pipeline run), not against figures from another day. Nothing is written for a benchmark
that did not run; a failing benchmark is recorded as failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
Row = tuple[str, str, str]  # figure, value, anchor / note


def _float(pattern: str, text: str) -> float | None:
    m = re.search(pattern, text, re.M)
    return float(m.group(1)) if m else None


def parse_extraction_quality(out: str) -> list[Row]:
    rows: list[Row] = []
    table = {
        m.group(1): m.groups()[1:]
        for m in re.finditer(r"^(\S+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$", out, re.M)
    }
    base = table.get("trafilatura")
    for name, (f1, title, date, authors, secs) in table.items():
        note = ""
        if base and name != "trafilatura":
            note = f"body F1 {float(f1) - float(base[0]):+.3f} vs plain trafilatura (same run)"
        rows.append(
            (
                f"extraction quality {name}: body F1 / title / date / authors",
                f"{f1} / {title} / {date} / {authors} ({secs} s)",
                note,
            )
        )
    return rows


def parse_extraction_speed(out: str) -> list[Row]:
    rows: list[Row] = []
    for name in ("trafilatura", "trafilatura+meta", "newsagg"):
        v = _float(rf"^{re.escape(name)}\s+([\d.]+) pages/s", out)
        if v is not None:
            rows.append((f"extraction speed {name}", f"{v} pages/s", ""))
    for m in re.finditer(r"^ratio (newsagg / \S+):\s+([\d.]+)x", out, re.M):
        rows.append((f"extraction speed ratio {m.group(1)}", f"{m.group(2)}×", "anchor: same run"))
    m = re.search(r"^newsagg extraction CPU inside trafilatura: ([\d.]+%) \(([\d.]+%) with", out, re.M)
    if m:
        rows.append(
            (
                "extraction CPU inside trafilatura, real fundus pages",
                f"{m.group(1)} ({m.group(2)} with the HTML parse)",
                "cross-check for the e2e share on "
                "generated pages; the rest is newsagg's own metadata and clean-up",
            )
        )
    return rows


def parse_cluster_quality(out: str) -> list[Row]:
    rows: list[Row] = []
    m = re.search(r"B3 precision ([\d.]+)\s+recall ([\d.]+)\s+F1 ([\d.]+)\s+pairwise F1 ([\d.]+)", out)
    if m:
        rows.append(
            (
                "cluster quality ECB+ dev: B³ P / R / F1, pairwise F1",
                f"{m.group(1)} / {m.group(2)} / {m.group(3)}, {m.group(4)}",
                "",
            )
        )
    v = _float(r"mean held-out B3 F1 ([\d.]+)", out)
    if v is not None:
        rows.append(
            (
                "cluster quality: mean held-out B³ F1 (2-fold)",
                f"{v}",
                f"vs in-sample F1 {m.group(3)}" if m else "",
            )
        )
    return rows


def parse_cluster_scale(out: str) -> list[Row]:
    rows: list[Row] = []
    sizes = [
        (int(m.group(1)), float(m.group(2)), float(m.group(3)), m.group(4))
        for m in re.finditer(
            r"^\s*(\d+) docs\s+([\d.]+) s wall\s+([\d.]+) s CPU\s+([\d.]+) docs/s", out, re.M
        )
    ]
    for n, wall, _cpu, rate in sizes:
        note = ""
        if sizes and n != sizes[0][0]:
            s0 = sizes[0]
            note = f"s/doc ×{(wall / n) / (s0[1] / s0[0]):.2f} vs {s0[0]} docs (same run)"
        rows.append((f"cluster scale {n} docs", f"{rate} docs/s ({wall} s wall)", note))
    m = re.search(r"peak PSS \(process \+ workers\)\s+([\d.]+) MB", out)
    if m:
        rows.append(("cluster scale peak PSS (first size)", f"{m.group(1)} MB", ""))
    return rows


def parse_crawl_speed(out: str) -> list[Row]:
    rows: list[Row] = []
    found = re.findall(
        r"^(.+):\n\s+(\d+) pages stored; crawl ([\d.]+) s -> ([\d.]+) pages/s; "
        r"wall ([\d.]+) s -> ([\d.]+) pages/s",
        out,
        re.M,
    )
    anchor = float(found[0][3]) if found else None
    for label, pages, _crawl, rate, _wall, wall_rate in found:
        note = (
            f"×{float(rate) / anchor:.2f} of politeness off (same run)"
            if anchor and float(rate) != anchor
            else ""
        )
        rows.append((f"crawl {label}", f"{rate} pages/s ({pages} pages; {wall_rate}/s incl. start-up)", note))
    return rows


def e2e_rows(data: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for r in data["results"]:
        tag = f"e2e {r['store']} {r['articles_stored']} articles/{r['web']['outlets']} outlets"
        f, s = r["first"], r["second"]
        x = f.get("extraction") or {}
        # anchor: trafilatura alone, its own CPU time per page in this run, on every core
        anchor = (
            x["pages"] / x["trafilatura_s"] * (data["machine"]["cores"] or 1)
            if x.get("trafilatura_s")
            else None
        )
        rows.append(
            (
                f"{tag}: total",
                f"{f['articles_per_s']} articles/s ({f['wall_s']} s)",
                f"×{f['articles_per_s'] / anchor:.2f} of trafilatura alone on every core "
                f"({anchor:.1f} pages/s from its CPU time per page in this run)"
                if anchor
                else "",
            )
        )
        if f.get("politeness_bound_s"):
            rows.append(
                (
                    f"{tag}: politeness (delay {r['delay']:g} s)",
                    f"wall {f['wall_s']:.1f} s, bound {f['politeness_bound_s']:.1f} s, "
                    f"ratio {f['politeness_ratio']}",
                    "aim ≤ 1.15; bound = busiest host's requests × delay, same run",
                )
            )
        x_bound = x.get("cpu_bound_s")
        if x_bound:
            rows.append(
                (
                    f"{tag}: wall / clean CPU bound",
                    f"{f['clean_cpu_ratio']} ({x_bound} s = extraction CPU over {x['cores']} cores)",
                    "aim ≤ 1.25 with delay 0; stages overlap, so this is the whole run",
                )
            )
        peak = f.get("peak") or {}
        rows.append(
            (
                f"{tag}: timeline, peaks",
                ", ".join(f"{k} {v}" for k, v in f["times"].items())
                + (
                    f"; peak fds {peak['fds_tree']} (main {peak['fds_main']}), RSS {peak['rss_tree_mb']} MB"
                    if peak
                    else ""
                ),
                "seconds from the run's start at which each part ended; process tree without the web",
            )
        )
        rows.append(
            (
                f"{tag}: CPU seconds",
                ", ".join(f"{k} {v}" for k, v in f["cpu_s"].items()) + f"; total {f['cpu_total_s']}",
                "pipeline process + Scrapy child + the extract workers' own CPU; web server excluded",
            )
        )
        for scope, share in x.get("share", {}).items():
            rows.append(
                (
                    f"{tag}: trafilatura share of {scope} CPU",
                    f"{share['trafilatura']:.1%} (rest {1 - share['trafilatura']:.1%}); "
                    f"{share['with_parse']:.1%} with the HTML parse it works on",
                    "aim: rest ≤ 10%; CPU inside trafilatura/htmldate calls, all workers",
                )
            )
        req = s["requests"]
        unconditional = {
            k: n - req["conditional_by_kind"].get(k, 0)
            for k, n in req["by_kind"].items()
            if n - req["conditional_by_kind"].get(k, 0)
        }
        rows.append(
            (
                f"{tag}: second run, nothing new",
                f"{s['wall_s']} s = {s['fraction_of_first']:.1%} of the first run; "
                f"{req['requests']} requests, {req['conditional']} conditional "
                f"({req['not_modified']} × 304); rows changed {sum(s['rows_changed'].values())}",
                f"aim ≤ 10%; unconditional: {unconditional or 'none'}",
            )
        )
        mem = r["peak_memory"]
        rows.append(
            (
                f"{tag}: peak memory (maxrss)",
                f"{mem['self_mb']} MB self, {mem['children_mb']} MB largest child",
                "maxrss of the process that ran the pipeline, read right after its first run; "
                "each store and size in its own process",
            )
        )
        w = r["web"].get("page_weight")
        if w:
            rows.append(
                (
                    f"{tag}: generated article page weight",
                    f"median {w['median_kb']} KB, mean {w['mean_kb']} KB, p10 {w['p10_kb']} KB, "
                    f"p90 {w['p90_kb']} KB",
                    w.get("target", ""),
                )
            )
    for store, g in data.get("growth", {}).items():
        rows.append(
            (
                f"e2e {store} growth {g['small']} → {g['large']} articles",
                f"seconds per article ×{g['ratio']}",
                "1.0 = linear; anchor: smaller size, same run",
            )
        )
    for store, why in data.get("skipped", {}).items():
        rows.append((f"e2e {store}", "not measured", why))
    return rows


Parser = Callable[[str], list[Row]]


def benchmarks(
    quick: bool, e2e_articles: str | None, e2e_store: str, json_path: Path
) -> list[tuple[str, list[str], Parser | None]]:
    e2e_sizes = e2e_articles or ("1000,3000" if quick else "1000,10000")
    return [
        ("extraction_quality", [], parse_extraction_quality),
        ("extraction_speed", [] if quick else ["--rounds", "3"], parse_extraction_speed),
        ("cluster_quality", ["--no-cv"] if quick else [], parse_cluster_quality),
        ("cluster_scale", ["--sizes", "10000" if quick else "10000,50000,100000"], parse_cluster_scale),
        ("crawl_speed", ["--pages", "200"] if quick else [], parse_crawl_speed),
        (
            "e2e",
            [
                "--articles",
                e2e_sizes,
                "--outlets",
                "50",
                "--days",
                "7",
                "--store",
                e2e_store,
                "--json-out",
                str(json_path),
            ],
            None,
        ),
    ]


def machine() -> dict[str, Any]:
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    cpu = ""
    with contextlib.suppress(OSError):
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    return {
        "cores": os.cpu_count(),
        "usable cores": len(os.sched_getaffinity(0)),
        "memory": mem,
        "cpu": cpu,
        "os": platform.platform(),
    }


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("trafilatura", "Scrapy", "SQLAlchemy", "newsagg"):
        try:
            out[dist.lower()] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist.lower()] = "not installed"
    return out


def _clip(text: str, head: int = 3000, tail: int = 3000) -> str:
    if len(text) <= head + tail:
        return text
    return f"{text[:head]}\n[... {len(text) - head - tail} characters left out ...]\n{text[-tail:]}"


def write_doc(path: Path, runs: list[dict[str, Any]], started: str, args: argparse.Namespace) -> None:
    m, v = machine(), versions()
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `{shlex.join(['.venv/bin/python', 'benchmarks/run_all.py', *args.argv])}` "
        f"on {started} (UTC); every figure below was measured in that run. "
        "Regenerate with `make bench` (full sizes) — do not edit by hand.",
        "",
        "## Machine",
        "",
        f"- cores: {m['cores']} ({m['usable cores']} usable), memory {m['memory']}, {m['cpu']}",
        f"- {m['os']}",
        f"- load average before the run {args.load_before}, after {os.getloadavg()[0]:.2f} "
        "(other jobs on the machine stretch wall-clock figures; ratios within one run are "
        "steadier than absolute times)",
        "",
        "## Versions",
        "",
        ", ".join(f"{k} {val}" for k, val in v.items()),
        "",
        "## Figures",
        "",
        "| figure | value | anchor / note | command |",
        "| --- | --- | --- | --- |",
    ]
    for run in runs:
        cmd = f"`{run['command']}`"
        if run["status"] != "ok":
            lines.append(f"| {run['name']} | {run['status']} | exit {run['rc']} | {cmd} |")
            continue
        if not run["rows"]:
            lines.append(f"| {run['name']} | see raw output | no figures parsed | {cmd} |")
        for figure, value, note in run["rows"]:
            lines.append(f"| {figure} | {value} | {note} | {cmd} |".replace("\n", " "))
    lines += [
        "",
        "## Methods",
        "",
        "Each benchmark's docstring states its method; the end-to-end one is "
        "`benchmarks/e2e.py` (generated news web from `benchmarks/newsweb.py`, stage timers "
        "around the `pipeline.run` stage functions, second-run dumps compared row by row, "
        "trafilatura share from CPU timers around trafilatura's and htmldate's calls in every "
        "extraction worker of the run itself, CPU per stage from `getrusage`).",
        "",
        "## Raw output",
        "",
    ]
    for run in runs:
        lines += [
            f"### {run['name']} ({run['seconds']:.0f} s, exit {run['rc']})",
            "",
            f"`{run['command']}`",
            "",
            "```",
            _clip(run["stdout"].rstrip()),
            "```",
            "",
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (same benchmarks)")
    ap.add_argument("--only", nargs="*", help="benchmark names to run (default: all)")
    ap.add_argument("--e2e-articles", help="e2e sizes, comma-separated (default 1000,10000)")
    ap.add_argument("--e2e-store", default="both", choices=("sqlite", "postgresql", "both"))
    ap.add_argument("--output", type=Path, default=REPO / "docs" / "BENCHMARKS.md")
    args = ap.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    args.load_before = f"{os.getloadavg()[0]:.2f}"
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="newsagg-bench-") as tmp:
        json_path = Path(tmp) / "e2e.json"
        for name, extra, parser in benchmarks(args.quick, args.e2e_articles, args.e2e_store, json_path):
            if args.only and name not in args.only:
                continue
            command = [".venv/bin/python", f"benchmarks/{name}.py", *extra]
            shown = shlex.join([c if c != str(json_path) else "e2e.json" for c in command])
            print(f"== {shown}", flush=True)
            start = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, str(REPO / "benchmarks" / f"{name}.py"), *extra],
                cwd=REPO,
                capture_output=True,
                text=True,
            )
            seconds = time.perf_counter() - start
            print(proc.stdout, end="", flush=True)
            if proc.returncode:
                print(proc.stderr[-3000:], file=sys.stderr)
            rows: list[Row] = []
            if proc.returncode == 0:
                try:
                    if name == "e2e":
                        rows = e2e_rows(json.loads(json_path.read_text(encoding="utf-8")))
                    elif parser is not None:
                        rows = parser(proc.stdout)
                except Exception as exc:  # a parse slip must not lose the other figures
                    rows = [(name, "see raw output", f"figures not parsed: {exc}")]
            if "skipped:" in proc.stdout and not rows:
                rows = [(name, "skipped", proc.stdout.strip().splitlines()[-1])]
            runs.append(
                {
                    "name": name,
                    "command": shown,
                    "rc": proc.returncode,
                    "seconds": seconds,
                    "status": "ok" if proc.returncode == 0 else "failed",
                    "stdout": proc.stdout,
                    "rows": rows,
                }
            )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_doc(args.output, runs, started, args)
    print(f"wrote {args.output}")
    return 1 if any(r["rc"] for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
