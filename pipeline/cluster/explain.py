"""Decisions that explain themselves: why reports share a story, or why two do not.

The clusterer decides on a batch; these functions restate the evidence for a story or a pair in
words a reader can check: the names, cities and counts the reports share, the time window they
give, how similar their texts are, and the hard evidence (far-apart cities the same day, event
windows that do not overlap) that keeps two apart whatever else is in the batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sklearn.preprocessing import normalize

from pipeline.cluster.core import (
    DEFAULT_PARAMS,
    ClusterParams,
    Doc,
    _as_utc,
    _language,
    _names,
    _raw_counts,
    _split_title,
    clean_titles,
    event_window,
    lead_evidence,
)
from pipeline.cluster.places import city_name, nearby

__all__ = ["explain_pair", "story_evidence"]

_MAX_ITEMS = 12


def _iso(ts: datetime | None) -> str | None:
    return _as_utc(ts).isoformat().replace("+00:00", "Z") if ts else None


def _similarities(docs: Sequence[Doc], params: ClusterParams) -> np.ndarray:
    """Cosine of the reports' word counts (sublinear, headline counted twice): the text
    similarity on its own, without the batch's term weights."""
    W, E, N = _raw_counts([(d.text, d.title) for d in docs], params)
    blocks = []
    for M, wt in ((W, params.word_weight), (E, params.name_weight), (N, params.number_weight)):
        M = M.astype(np.float32)
        M.data = 1.0 + np.log(M.data)
        blocks.append(normalize(M) * np.sqrt(wt))
    sims = np.zeros((len(docs), len(docs)))
    for B in blocks:
        sims += np.asarray((B @ B.T).todense())
    return sims


def _names_of(doc: Doc) -> set[str]:
    head, body = _split_title(doc.text, doc.title)
    return {n for n in _names(head, body[:2000]) if " " not in n}


def _window(doc: Doc) -> tuple[datetime, datetime] | None:
    return event_window(doc.published_at, doc.text, doc.title) if doc.published_at else None


def _shared(counter: Counter[Any], n: int) -> list[Any]:
    return [x for x, c in counter.most_common() if c >= min(2, n)][:_MAX_ITEMS]


def story_evidence(docs: Sequence[Doc], params: ClusterParams = DEFAULT_PARAMS) -> dict[str, Any]:
    """Why these reports are one story: what at least two of them share, the window they give,
    and how close each is to its nearest fellow report."""
    docs = clean_titles(sorted(docs, key=lambda d: d.id))
    n = len(docs)
    names: Counter[str] = Counter()
    cities: Counter[int] = Counter()
    counts: Counter[str] = Counter()
    for d in docs:
        names.update(_names_of(d))
        places, keys = lead_evidence(d.text, d.title)
        cities.update(places)
        counts.update(k[1:] for k in keys if k.startswith("#"))
    windows = [w for w in map(_window, docs) if w is not None]
    times = [d.published_at for d in docs if d.published_at]
    nearest: list[float] = []
    if n > 1:
        sims = _similarities(docs, params)
        np.fill_diagonal(sims, -1.0)
        nearest = [round(float(x), 3) for x in sims.max(axis=1)]
    return {
        "reports": n,
        "languages": sorted({_language(d) for d in docs}),
        "shared_names": _shared(names, n),
        "shared_places": [city_name(c) for c in _shared(cities, n)],
        "shared_counts": _shared(counts, n),
        "event_window": {
            "from": _iso(max(w[0] for w in windows)) if windows else None,
            "to": _iso(min(w[1] for w in windows)) if windows else None,
            "reports_with_window": len(windows),
        },
        "published": {"from": _iso(min(times)) if times else None, "to": _iso(max(times)) if times else None},
        "nearest_similarity": {
            "min": min(nearest) if nearest else None,
            "mean": round(sum(nearest) / len(nearest), 3) if nearest else None,
        },
    }


def explain_pair(a: Doc, b: Doc, params: ClusterParams = DEFAULT_PARAMS) -> dict[str, Any]:
    """What two reports share and what keeps them apart, as the clusterer sees the pair alone
    (in a batch, other reports can only add agreement between reports that already agree)."""
    a, b = clean_titles([a, b])
    sim = float(_similarities([a, b], params)[0, 1])
    pa, ka = lead_evidence(a.text, a.title)
    pb, kb = lead_evidence(b.text, b.title)
    wa, wb = _window(a), _window(b)
    reasons_apart: list[str] = []
    gap = None
    if a.published_at and b.published_at:
        gap = abs((_as_utc(a.published_at) - _as_utc(b.published_at)).total_seconds()) / 3600
        if gap >= params.max_gap_hours:
            reasons_apart.append(f"published {gap:.0f} h apart (story window {params.max_gap_hours:.0f} h)")
    slack = params.slack_hours * 3600
    if wa and wb and ((wa[0] - wb[1]).total_seconds() > slack or (wb[0] - wa[1]).total_seconds() > slack):
        reasons_apart.append("the event windows do not overlap")
    if pa and pb and gap is not None and gap <= params.same_place_hours:
        near = {c for p in pa for c in nearby(p)}
        if not near & set(pb):
            reasons_apart.append(
                "the leads name far-apart cities the same day: "
                + ", ".join(map(city_name, pa))
                + " vs "
                + ", ".join(map(city_name, pb))
            )
    la, lb = _language(a), _language(b)
    return {
        "articles": [a.id, b.id],
        "titles": [a.title, b.title],
        "languages": [la, lb],
        "text_similarity": round(sim, 3),
        "merge_threshold": params.threshold,
        "shared_names": sorted(_names_of(a) & _names_of(b))[:_MAX_ITEMS],
        "shared_places": [city_name(c) for c in sorted(set(pa) & set(pb))],
        "shared_counts": sorted(
            {k[1:] for k in ka if k.startswith("#")} & {k[1:] for k in kb if k.startswith("#")}
        ),
        "shared_name_keys": sorted(
            {k for k in ka if k.startswith("n:")} & {k for k in kb if k.startswith("n:")}
        ),
        "event_windows": [[_iso(w[0]), _iso(w[1])] if w else None for w in (wa, wb)],
        "published_gap_hours": round(gap, 1) if gap is not None else None,
        "kept_apart_by": reasons_apart,
        "note": (
            "different languages: joined on shared cities, names and counts, not on words"
            if la != lb
            else "same language: joined when the text similarity (with the batch's context) is high enough"
        ),
    }
