"""Decisions that explain themselves: why reports share a story, or why two do not.

The clusterer decides on a batch; these functions restate the evidence for a story or a pair in
words a reader can check: the names, cities and counts the reports share, the time window they
give, how similar their texts are, and the hard evidence (far-apart cities the same day, event
windows that do not overlap) that keeps two apart whatever else is in the batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from pipeline.cluster.core import (
    DEFAULT_PARAMS,
    ClusterParams,
    Doc,
    _as_utc,
    _gram,
    _language,
    _names,
    _raw_counts,
    _split_title,
    clean_titles,
    event_window,
    lead_evidence,
)
from pipeline.cluster.places import city_name, nearby

__all__ = ["describe_evidence", "explain_pair", "stories_evidence", "story_evidence"]

_MAX_ITEMS = 12


def _iso(ts: datetime | None) -> str | None:
    return _as_utc(ts).isoformat().replace("+00:00", "Z") if ts else None


def _vectors(docs: Sequence[Doc], params: ClusterParams) -> sp.csr_matrix:
    """One row per report, made from that report alone: its word, name and number counts
    (sublinear, headline counted twice, unit length, weighted) side by side, so that the dot
    product of two rows is their text similarity without the batch's term weights."""
    W, E, N = _raw_counts([(d.text, d.title) for d in docs], params)
    blocks = []
    for M, wt in ((W, params.word_weight), (E, params.name_weight), (N, params.number_weight)):
        M = M.astype(np.float32)
        M.data = 1.0 + np.log(M.data)
        blocks.append(normalize(M) * np.float32(np.sqrt(wt)))
    return sp.hstack(blocks, format="csr", dtype=np.float32)


def _similarities(docs: Sequence[Doc], params: ClusterParams) -> np.ndarray:
    # over the reports' own columns: a product over all 2**21 would cost ~1 ms
    return _gram(_vectors(docs, params))


def _names_of(doc: Doc) -> set[str]:
    head, body = _split_title(doc.text, doc.title)
    return {n for n in _names(head, body[:2000]) if " " not in n}


def _window(doc: Doc) -> tuple[datetime, datetime] | None:
    return event_window(doc.published_at, doc.text, doc.title) if doc.published_at else None


def _shared(counter: Counter[Any], label: Callable[[Any], str] = str) -> list[str]:
    """What at least two reports give, most shared first, then by name: a fixed order, so the
    evidence stored for unchanged reports never changes (``most_common`` keeps insertion order,
    which for a set of names changes with the interpreter's hash seed)."""
    ranked = sorted(((label(x), c) for x, c in counter.items() if c >= 2), key=lambda kv: (-kv[1], kv[0]))
    return [x for x, _ in ranked][:_MAX_ITEMS]


def story_evidence(docs: Sequence[Doc], params: ClusterParams = DEFAULT_PARAMS) -> dict[str, Any]:
    """Why these reports are one story: what at least two of them share, the window they give,
    and how close each is to its nearest fellow report. It depends on the reports alone, in
    a fixed order, so the same reports always give the same evidence. A single report shares
    nothing: its lists are empty."""
    return stories_evidence([docs], params)[0]


def stories_evidence(
    groups: Sequence[Sequence[Doc]], params: ClusterParams = DEFAULT_PARAMS
) -> list[dict[str, Any]]:
    """:func:`story_evidence` of each group of reports, with the text vectors of all of them
    made in one go (a vector depends on its report alone, so each result is the same)."""
    cleaned = [clean_titles(sorted(g, key=lambda d: d.id)) for g in groups]
    several = [d for g in cleaned if len(g) > 1 for d in g]
    vectors = _vectors(several, params) if several else None
    out = []
    start = 0
    for docs in cleaned:
        sims = None
        if vectors is not None and len(docs) > 1:
            sims = _gram(vectors[start : start + len(docs)])
            start += len(docs)
        out.append(_evidence(docs, sims))
    return out


def _evidence(docs: Sequence[Doc], sims: np.ndarray | None) -> dict[str, Any]:
    n = len(docs)
    names: Counter[str] = Counter()
    cities: Counter[int] = Counter()
    counts: Counter[str] = Counter()
    for d in docs if n > 1 else ():
        names.update(_names_of(d))
        places, keys = lead_evidence(d.text, d.title)
        cities.update(places)
        counts.update(k[1:] for k in keys if k.startswith("#"))
    windows = [w for w in map(_window, docs) if w is not None]
    times = [d.published_at for d in docs if d.published_at]
    nearest: list[float] = []
    if sims is not None:
        np.fill_diagonal(sims, -1.0)
        nearest = [round(float(x), 3) for x in sims.max(axis=1)]
    return {
        "reports": n,
        "languages": sorted({_language(d) for d in docs}),
        "shared_names": _shared(names),
        "shared_places": _shared(cities, city_name),
        "shared_counts": _shared(counts),
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


def _strings(value: Any) -> list[str]:
    return [str(x) for x in value] if isinstance(value, list) else []


def _human_time(value: Any) -> str:
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return _as_utc(when).strftime("%d %b %Y %H:%M UTC")
    except (ValueError, OverflowError):
        return str(value)


def _span(value: Any) -> str | None:
    if not isinstance(value, Mapping) or not (value.get("from") or value.get("to")):
        return None
    start, end = (_human_time(value[k]) if value.get(k) else "?" for k in ("from", "to"))
    return start if start == end else f"{start} to {end}"


def describe_evidence(evidence: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """A story's evidence (:func:`story_evidence`) as ``(key, label, text)`` lines a reader can
    check against the reports; what is missing or empty is left out. The evidence comes from
    the store, so nothing in it is trusted to have the shape this module gives it."""
    lines: list[tuple[str, str, str]] = []
    for key, label, items in (
        ("shared_places", "Places they name", _strings(evidence.get("shared_places"))),
        ("shared_names", "Names they give", _strings(evidence.get("shared_names"))),
        ("shared_counts", "Numbers they give", _strings(evidence.get("shared_counts"))),
    ):
        if items:
            lines.append((key, label, ", ".join(items)))
    window = evidence.get("event_window")
    span = _span(window)
    if span is not None and isinstance(window, Mapping):
        given, reports = window.get("reports_with_window"), evidence.get("reports")
        if isinstance(given, int) and isinstance(reports, int):
            span += f" (the time {given} of the {reports} reports give for the event)"
        lines.append(("event_window", "When it happened", span))
    published = _span(evidence.get("published"))
    if published is not None:
        lines.append(("published", "Published", published))
    similarity = evidence.get("nearest_similarity")
    if isinstance(similarity, Mapping) and isinstance(similarity.get("min"), int | float):
        text = f"each report's closest fellow report is at least {similarity['min']:.2f} alike"
        if isinstance(similarity.get("mean"), int | float):
            text += f", {similarity['mean']:.2f} on average"
        text += " (0: no words in common, 1: the same text)"
        lines.append(("nearest_similarity", "Text similarity", text))
    languages = _strings(evidence.get("languages"))
    if languages:
        lines.append(("languages", "Languages", ", ".join(languages)))
    return lines


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
