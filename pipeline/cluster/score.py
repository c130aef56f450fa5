"""Partition scores shared by the quality benchmarks and the tests: B³ and pairwise F1."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

__all__ = ["b_cubed", "pairwise_f1"]


def b_cubed(pred: Mapping[str, str], gold: Mapping[str, str]) -> tuple[float, float, float]:
    """B³ precision, recall, F1 (Bagga and Baldwin) over the items of ``gold``; (0, 0, 0) for none."""
    if not gold:
        return 0.0, 0.0, 0.0
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
    if tp == 0:
        return 0.0
    precision, recall = tp / pairs(pred), tp / pairs(gold)
    return 2 * precision * recall / (precision + recall)
