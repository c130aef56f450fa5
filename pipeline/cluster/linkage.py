"""Average linkage with cannot-link pairs: hard evidence holds whatever else is in the batch.

Plain average linkage merges two groups when their mean similarity is high enough, so a pair
that must stay apart (two cities the same night, two event windows that do not overlap) can
still end up together when enough of the batch's other reports sit between them; and whether
they do depends on which sources ran. Here a cannot-link pair forbids every merge that would put
its two reports in one group, so the partition never joins them, in any batch.
"""

from __future__ import annotations

import numpy as np

__all__ = ["average_link"]

_FORBIDDEN = -1.0


def average_link(sim: np.ndarray, cannot: np.ndarray | None, threshold: float) -> np.ndarray:
    """A label per item (the smallest index of its group): groups merged while the average
    (all pairs) similarity of the best pair of groups reaches ``threshold`` and no cannot-link
    pair would be joined.

    ``sim`` is a symmetric matrix in [0, 1]; ``cannot`` a symmetric boolean matrix or None.
    Each row keeps its best partner, so a merge costs O(m) and the whole linkage O(m²) in the
    usual case; ties go to the lowest indices, so the result is deterministic.
    """
    m = len(sim)
    label = np.arange(m)
    if m < 2:
        return label
    avg = np.array(sim, dtype=np.float64)
    if cannot is not None:
        avg[cannot] = _FORBIDDEN
    np.fill_diagonal(avg, _FORBIDDEN)
    size = np.ones(m)
    alive = np.ones(m, dtype=bool)
    best = np.argmax(avg, axis=1)
    best_val = avg[np.arange(m), best]
    while True:
        i = int(np.argmax(best_val))
        if best_val[i] < threshold:
            break
        a, b = sorted((i, int(best[i])))
        forbidden = (avg[a] == _FORBIDDEN) | (avg[b] == _FORBIDDEN)
        row = (size[a] * avg[a] + size[b] * avg[b]) / (size[a] + size[b])
        row[forbidden] = _FORBIDDEN
        row[a] = _FORBIDDEN
        avg[a, :] = row
        avg[:, a] = row
        avg[b, :] = _FORBIDDEN
        avg[:, b] = _FORBIDDEN
        size[a] += size[b]
        alive[b] = False
        label[label == b] = a
        best_val[b] = -np.inf
        stale = np.nonzero(alive & ((best == a) | (best == b)))[0]
        for r in stale.tolist():
            best[r] = int(np.argmax(avg[r]))
            best_val[r] = avg[r, best[r]]
        if alive[a] and a not in stale:
            best[a] = int(np.argmax(avg[a]))
            best_val[a] = avg[a, best[a]]
        better = alive & (row > best_val)
        better[a] = False
        best[better] = a
        best_val[better] = row[better]
    return label
