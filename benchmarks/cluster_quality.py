"""Event-clustering quality on the ECB+ dev set, through the CLI contract path.

Usage (from the repo root)::

    .venv/bin/python benchmarks/cluster_quality.py [--shared ../shared] [--no-cv]

Prints B³ precision, recall and F1 and pairwise F1 of ``cluster_file`` with the project's
defaults on all 772 articles, then a two-fold cross-validation of the merge threshold: tuned
on the odd topics and scored on the even ones, and the other way round (each half clustered
alone, so its ten-odd topics never see the other half). The held-out figures say how far the
defaults are from being tuned to this file. Callable as :func:`evaluate`.

The dev set has no publication times and no languages, so it measures the text evidence only;
time and language are covered by tests/test_cluster.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pipeline.cluster.core import DEFAULT_PARAMS, ClusterParams, Doc, cluster_docs, cluster_file  # noqa: E402

DEV_REL = Path("data/events/ecbplus-dev.jsonl")
THRESHOLDS = tuple(round(0.10 + 0.01 * i, 2) for i in range(13))  # 0.10 .. 0.22


def load_dev(shared: Path) -> list[dict[str, Any]]:
    with (shared / DEV_REL).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def b_cubed(pred: Mapping[str, str], gold: Mapping[str, str]) -> tuple[float, float, float]:
    """B³ precision, recall, F1 (Bagga and Baldwin): per item, averaged over items."""
    by_pred: dict[str, set[str]] = defaultdict(set)
    by_gold: dict[str, set[str]] = defaultdict(set)
    for d in gold:
        by_pred[pred[d]].add(d)
        by_gold[gold[d]].add(d)
    p = r = 0.0
    for d in gold:
        inter = len(by_pred[pred[d]] & by_gold[gold[d]])
        p += inter / len(by_pred[pred[d]])
        r += inter / len(by_gold[gold[d]])
    p, r = p / len(gold), r / len(gold)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def pairwise_f1(pred: Mapping[str, str], gold: Mapping[str, str]) -> float:
    """F1 over the pairs of items put together (by the clustering, by the gold)."""

    def pairs(labels: Mapping[str, str]) -> int:
        sizes: dict[str, int] = defaultdict(int)
        for d in gold:
            sizes[labels[d]] += 1
        return sum(k * (k - 1) // 2 for k in sizes.values())

    both: dict[tuple[str, str], int] = defaultdict(int)
    for d in gold:
        both[(pred[d], gold[d])] += 1
    tp = sum(k * (k - 1) // 2 for k in both.values())
    pp, gp = pairs(pred), pairs(gold)
    if tp == 0:
        return 0.0
    precision, recall = tp / pp, tp / gp
    return 2 * precision * recall / (precision + recall)


def _docs(rows: Sequence[Mapping[str, Any]]) -> list[Doc]:
    return [Doc(id=r["doc_id"], text=r["text"], url=r.get("url")) for r in rows]


def _score(rows: Sequence[Mapping[str, Any]], params: ClusterParams) -> float:
    part = cluster_docs(_docs(rows), params)
    return b_cubed(part, {r["doc_id"]: r["event"] for r in rows})[2]


def cross_validate(
    rows: Sequence[Mapping[str, Any]],
    base: ClusterParams = DEFAULT_PARAMS,
    thresholds: Sequence[float] = THRESHOLDS,
) -> list[dict[str, Any]]:
    """Tune the threshold on one half of the topics, score the other half; both ways."""
    halves = {
        "odd": [r for r in rows if int(r["topic"]) % 2 == 1],
        "even": [r for r in rows if int(r["topic"]) % 2 == 0],
    }
    folds = []
    for train, test in (("odd", "even"), ("even", "odd")):
        scores = {t: _score(halves[train], dataclasses.replace(base, threshold=t)) for t in thresholds}
        best = max(thresholds, key=lambda t: (scores[t], -abs(t - base.threshold)))
        held_out = _score(halves[test], dataclasses.replace(base, threshold=best))
        at_default = _score(halves[test], base)
        folds.append(
            {
                "tuned_on": train,
                "scored_on": test,
                "threshold": best,
                "train_b3_f1": round(scores[best], 4),
                "held_out_b3_f1": round(held_out, 4),
                "default_b3_f1": round(at_default, 4),
            }
        )
    return folds


def evaluate(shared: Path = REPO.parent / "shared", cv: bool = True) -> dict[str, Any]:
    """The figures, as a dict: B³ P/R/F1 and pairwise F1 of the CLI path with the defaults,
    and (``cv``) the two cross-validation folds. Raises FileNotFoundError without the data."""
    rows = load_dev(shared)
    gold = {r["doc_id"]: r["event"] for r in rows}
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
        with inp.open("w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps({"id": r["doc_id"], "text": r["text"], "url": r["url"]}) + "\n")
        n = cluster_file(inp, out)
        with out.open(encoding="utf-8") as fh:
            pred = {o["id"]: o["story_id"] for o in map(json.loads, fh)}
    precision, recall, f1 = b_cubed(pred, gold)
    result: dict[str, Any] = {
        "docs": n,
        "events": len(set(gold.values())),
        "stories": len(set(pred.values())),
        "threshold": DEFAULT_PARAMS.threshold,
        "b3_precision": round(precision, 4),
        "b3_recall": round(recall, 4),
        "b3_f1": round(f1, 4),
        "pairwise_f1": round(pairwise_f1(pred, gold), 4),
    }
    if cv:
        folds = cross_validate(rows)
        held_out = [float(fold["held_out_b3_f1"]) for fold in folds]
        result["cv"] = folds
        result["cv_held_out_b3_f1"] = round(sum(held_out) / len(held_out), 4)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--shared",
        type=Path,
        default=REPO.parent / "shared",
        help="the shared data directory (default: ../shared)",
    )
    ap.add_argument("--no-cv", action="store_true", help="skip the cross-validation")
    args = ap.parse_args(argv)
    if not (args.shared / DEV_REL).exists():
        print(f"skipped: {args.shared / DEV_REL} not found (pass --shared)")
        return 0
    res = evaluate(args.shared, cv=not args.no_cv)
    print(
        f"ECB+ dev: {res['docs']} docs, {res['events']} gold events, {res['stories']} stories "
        f"(threshold {res['threshold']})"
    )
    print(
        f"B3 precision {res['b3_precision']:.4f}  recall {res['b3_recall']:.4f}  "
        f"F1 {res['b3_f1']:.4f}   pairwise F1 {res['pairwise_f1']:.4f}"
    )
    for fold in res.get("cv", []):
        print(
            f"held out: tuned on {fold['tuned_on']} topics -> threshold {fold['threshold']} "
            f"(train F1 {fold['train_b3_f1']:.4f}); {fold['scored_on']} topics B3 F1 "
            f"{fold['held_out_b3_f1']:.4f} (with the default threshold "
            f"{fold['default_b3_f1']:.4f})"
        )
    if "cv" in res:
        print(f"mean held-out B3 F1 {res['cv_held_out_b3_f1']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
