"""Clustering throughput on 10k, 50k and 100k synthetic reports built from the ECB+ dev set.

Usage (from the repo root)::

    .venv/bin/python benchmarks/cluster_scale.py [--sizes 10000,50000,100000] [--shared ../shared]

Each size runs in a fresh child process so its peak memory is its own. Memory: the peak PSS of
that process plus its forked workers, sampled from /proc every 0.2 s (PSS shares copy-on-write
pages out instead of counting them in every process), and the peak RSS from
``resource.getrusage`` (RUSAGE_SELF, RUSAGE_CHILDREN: the largest worker). Both include the
generated docs, not only the clusterer. Time
is the wall clock of ``cluster_docs`` alone, and its CPU time including the workers'; the load
average is printed because other jobs on the machine stretch the wall clock.

Why synthetic: there is no 100k-article labelled corpus. Each synthetic event copies one real
ECB+ event and makes it another event of the same kind: its names, numbers and a quarter of its
content words are consistently replaced (so two events from one source are as alike as two
shootings, not identical), it gets its own time, and its reports are the source reports with
sentences shuffled and dropped, mixed, or syndicated with light edits. Arrival rate is fixed
(10,000 reports a day, a large aggregator), so 100k reports span ten days; the gold events give
a B³ figure as a sanity check.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.cluster.core import Doc, cluster_docs
from pipeline.cluster.score import b_cubed

REPO = Path(__file__).resolve().parents[1]
DEV_REL = Path("data/events/ecbplus-dev.jsonl")
RATE_PER_DAY = 10_000
START = datetime(2024, 3, 1, tzinfo=UTC)
_CAPWORD = re.compile(
    r"\b(?!(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec|Mon|Tue|Wed|Thu|"
    r"Fri|Sat|Sun)[a-z]*\b)[A-Z][a-z][\w'-]*"
)
_NUMBER = re.compile(r"\b\d+\b")
_LOWER = re.compile(r"\b[a-z]{5,}\b")
_WHEN = re.compile(
    r"\b(?:(?:on|late|early)\s+)?(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|"
    r"yesterday|today|last\s+night|overnight|tonight)\b(?:\s+(?:morning|afternoon|evening|night))?"
    r"|\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?\s+\d{1,2}(?:st|nd|rd|th)?"
    r"(?:,?\s+\d{4})?|\b\d{1,2}\s+(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
    r"(?:\s+\d{4})?",
    re.IGNORECASE,
)
_SYLLABLES = [
    c + v
    for c in ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "sh", "tr", "br", "dr")
    for v in ("a", "e", "i", "o", "u", "ar", "el", "on")
]  # 144: names stay rare


def _pseudo(rng: random.Random, parts: int) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(parts))


def load_dev(shared: Path) -> list[dict]:
    path = shared / DEV_REL
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _sentences(text: str) -> list[str]:
    return [s for s in text.split("\n") if s.strip()]


def generate(rows: list[dict], n_docs: int, seed: int = 0) -> tuple[list[Doc], dict[str, str]]:
    """``n_docs`` synthetic reports and their gold event labels."""
    rng = random.Random(seed)
    by_event: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_event[r["event"]].append(r)
    events = sorted(by_event)
    vocab = {}
    for ev in events:
        text = "\n".join(r["text"] for r in by_event[ev])
        vocab[ev] = (sorted(set(_CAPWORD.findall(text))), sorted(set(_LOWER.findall(text))))
    span_days = max(1.0, n_docs / RATE_PER_DAY)
    docs: list[Doc] = []
    gold: dict[str, str] = {}
    k = 0
    while len(docs) < n_docs:
        src = rng.choice(events)
        caps, lowers = vocab[src]
        mapping = {w: _pseudo(rng, rng.randint(2, 4)).capitalize() for w in caps if not _WHEN.fullmatch(w)}
        mapping.update({w: _pseudo(rng, 3) for w in rng.sample(lowers, len(lowers) // 4)})
        shift = rng.randint(1, 40)

        t0 = START + timedelta(days=rng.uniform(0, span_days))
        when = f"on {t0:%A}, {t0:%B} {t0.day}"

        def transform(
            text: str, mapping: dict[str, str] = mapping, shift: int = shift, when: str = when
        ) -> str:
            text = _CAPWORD.sub(lambda m: mapping.get(m.group(), m.group()), text)
            text = _LOWER.sub(lambda m: mapping.get(m.group(), m.group()), text)
            text = _NUMBER.sub(
                lambda m: str(int(m.group()) + shift) if len(m.group()) < 5 else m.group(), text
            )
            # the source's own dates and weekdays would contradict the new event time
            return _WHEN.sub(when, text)

        event_id = f"e{k}"
        k += 1
        size = max(1, min(80, int(rng.lognormvariate(1.6, 0.9))))
        srcs = by_event[src]
        made: list[str] = []
        for j in range(size):
            if len(docs) >= n_docs:
                break
            kind = rng.random()
            if made and kind < 0.2:  # syndicated copy with light edits
                sents = _sentences(rng.choice(made))
                if len(sents) > 2:
                    del sents[rng.randrange(1, len(sents))]
                sents.append(
                    f"Reporting by {_pseudo(rng, 2).capitalize()}; editing by {_pseudo(rng, 2).capitalize()}"
                )
                text = "\n".join(sents)
            else:
                a = rng.choice(srcs)
                sents = _sentences(a["text"])
                head, body = sents[0], sents[1:]
                if kind > 0.9 and len(srcs) > 1:
                    body = body + _sentences(rng.choice(srcs)["text"])[1:]
                rng.shuffle(body)
                keep = max(1, int(len(body) * rng.uniform(0.6, 1.0)))
                text = transform("\n".join([head, *body[:keep]]))
            made.append(text)
            doc_id = f"{event_id}-{j}"
            published = t0 + timedelta(hours=min(72.0, rng.expovariate(1 / 8.0)))
            docs.append(
                Doc(
                    id=doc_id,
                    text=text,
                    published_at=published,
                    source=f"outlet{rng.randrange(300)}",
                    language="en",
                )
            )
            gold[doc_id] = event_id
    rng.shuffle(docs)
    return docs, gold


class _TreeMemory:
    """Peak proportional set size (PSS) of this process plus its live children, sampled every
    0.2 s from /proc (Linux). PSS splits shared copy-on-write pages between the processes that
    share them, so unlike summed RSS it is the memory the tree really holds."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _pss_kb(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def _children(self) -> list[int]:
        pids: list[int] = []
        try:
            for task in os.listdir("/proc/self/task"):
                with open(f"/proc/self/task/{task}/children", encoding="ascii") as fh:
                    pids += [int(p) for p in fh.read().split()]
        except OSError:
            pass
        return pids

    def _run(self) -> None:
        while not self._stop.is_set():
            total = self._pss_kb(os.getpid()) + sum(self._pss_kb(p) for p in self._children())
            self.peak_kb = max(self.peak_kb, total)
            self._stop.wait(0.2)

    def __enter__(self) -> _TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def run_one(n: int, shared: Path) -> dict:
    rows = load_dev(shared)
    docs, gold = generate(rows, n)
    load = os.getloadavg()[0]
    cpu = _cpu()
    with _TreeMemory() as memory:
        t = time.perf_counter()
        part = cluster_docs(docs)
        elapsed = time.perf_counter() - t
    cpu = _cpu() - cpu
    p, r, f = b_cubed(part, gold)
    return {
        "docs": n,
        "seconds": round(elapsed, 2),
        "cpu_seconds": round(cpu, 2),
        "docs_per_s": round(n / elapsed),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "worker_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "tree_peak_pss_mb": round(memory.peak_kb / 1024),
        "load_before": round(load, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "clusters": len(set(part.values())),
        "gold_events": len(set(gold.values())),
        "b3_p": round(p, 4),
        "b3_r": round(r, 4),
        "b3_f1": round(f, 4),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000,50000,100000")
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if not (args.shared / DEV_REL).exists():
        print(f"skipped: {args.shared / DEV_REL} not found (pass --shared)")
        return 0
    if args.one:
        print(json.dumps(run_one(args.one, args.shared)))
        return 0
    results = []
    for n in (int(x) for x in args.sizes.split(",")):
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(n), "--shared", str(args.shared)],
            check=True,
            capture_output=True,
            text=True,
        )
        res = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(res)
        print(
            f"{res['docs']:>7} docs  {res['seconds']:>7.2f} s wall  {res['cpu_seconds']:>7.2f} s "
            f"CPU  {res['docs_per_s']:>6} docs/s  peak PSS (process + workers) "
            f"{res['tree_peak_pss_mb']:>5} MB  peak RSS {res['peak_rss_mb']:>5} MB (workers "
            f"{res['worker_peak_rss_mb']} MB each, mostly shared)  load {res['load_before']}"
            f"->{res['load_after']}  clusters {res['clusters']} (gold {res['gold_events']})  "
            f"synthetic B3 P/R/F1 {res['b3_p']:.3f}/{res['b3_r']:.3f}/{res['b3_f1']:.3f}",
            flush=True,
        )
    by = {r["docs"]: r for r in results}
    if 10000 in by and 100000 in by:
        print(
            f"growth 100k/10k: {by[100000]['seconds'] / by[10000]['seconds']:.1f}x wall, "
            f"{by[100000]['cpu_seconds'] / by[10000]['cpu_seconds']:.1f}x CPU"
        )
    print(
        f"cores available: {len(os.sched_getaffinity(0))}; load average is that of the "
        "whole machine (other jobs slow the wall clock)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
