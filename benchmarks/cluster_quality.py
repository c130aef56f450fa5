"""Event-clustering quality: ECB+ dev, its random subsamples, the multilingual sample, titles-only.

Usage (from the repo root)::

    .venv/bin/python benchmarks/cluster_quality.py [--shared ../shared] [--no-cv] [--draws 20]

Prints, for the project's defaults:

* ECB+ dev (772 articles, through the CLI contract path): B³ precision, recall and F1 and
  pairwise F1; then a two-fold cross-validation of the merge threshold (tuned on the odd topics,
  scored on the even ones, and the other way round); then the mean and the worst B³ F1 over
  ``--draws`` random 30% subsamples (a smaller batch must not change the partition much); and a
  titles-only variant (the first line and the first sentence of the body, like a headline and a
  feed summary).
* the bundled sample web (the pages ``newsagg demo`` serves, as the pipeline extracts them): B³
  and pairwise F1, full and titles-only, and over every subset of its outlets the worst B³ F1
  and the number of subsets where two of its events shared a story.
* the bundled multilingual sample (``pipeline/sampleweb/multilingual_events.jsonl``: en, uk, ru,
  de, pl; one strike reported in five languages, the next night's strike on the same city, a
  strike on another city the same night, a visit, a reopening): B³ and pairwise F1, full and
  titles-only, and the worst B³ F1 over every subset of its sources.

ECB+ has no publication times and no languages, so it measures the text evidence only; the
multilingual sample measures time, places and cross-language evidence.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import random
import re
import tempfile
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.cluster.core import DEFAULT_PARAMS, ClusterParams, Doc, cluster_docs, cluster_file
from pipeline.cluster.score import b_cubed, pairwise_f1

REPO = Path(__file__).resolve().parents[1]
DEV_REL = Path("data/events/ecbplus-dev.jsonl")
THRESHOLDS = tuple(round(0.10 + 0.01 * i, 2) for i in range(13))  # 0.10 .. 0.22


def load_dev(shared: Path) -> list[dict[str, Any]]:
    with (shared / DEV_REL).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


MULTILINGUAL = REPO / "pipeline" / "sampleweb" / "multilingual_events.jsonl"
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _docs(rows: Sequence[Mapping[str, Any]], titles_only: bool = False) -> list[Doc]:
    out = []
    for r in rows:
        text = r["text"]
        if titles_only:
            head, _, body = text.partition("\n")
            text = head + "\n" + _SENTENCE.split(body.strip(), maxsplit=1)[0]
        out.append(Doc(id=r["doc_id"], text=text, url=r.get("url")))
    return out


def subsamples(
    rows: Sequence[Mapping[str, Any]], draws: int = 20, share: float = 0.3, seed: int = 13
) -> tuple[float, float]:
    """Mean and worst B³ F1 over ``draws`` random ``share`` subsamples of the articles."""
    rng = random.Random(seed)
    scores = []
    for _ in range(draws):
        sample = rng.sample(list(rows), max(2, int(share * len(rows))))
        part = cluster_docs(_docs(sample))
        scores.append(b_cubed(part, {r["doc_id"]: r["event"] for r in sample})[2])
    return sum(scores) / len(scores), min(scores)


def load_multilingual(path: Path = MULTILINGUAL) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def multilingual_docs(rows: Sequence[Mapping[str, Any]], titles_only: bool = False) -> list[Doc]:
    """The sample's reports as docs; titles-only keeps the headline and the first sentence."""
    out = []
    for r in rows:
        text = _SENTENCE.split(r["text"], maxsplit=1)[0] if titles_only else r["text"]
        out.append(
            Doc(
                id=r["id"],
                text=text,
                title=r["title"],
                published_at=datetime.fromisoformat(r["published_at"].replace("Z", "+00:00")),
                source=r["source"],
                language=r["language"],
            )
        )
    return out


def evaluate_multilingual(path: Path = MULTILINGUAL) -> dict[str, Any]:
    """B³/pairwise F1 of the multilingual sample (full, titles-only) and the worst B³ F1 over
    every subset of its sources (with the number of subsets where two events shared a story)."""
    rows = load_multilingual(path)
    gold = {r["id"]: r["event"] for r in rows}
    out: dict[str, Any] = {"docs": len(rows), "events": len(set(gold.values()))}
    for name, titles_only in (("full", False), ("titles", True)):
        part = cluster_docs(multilingual_docs(rows, titles_only))
        p, r, f = b_cubed(part, gold)
        out[name] = {"b3_precision": round(p, 4), "b3_recall": round(r, 4), "b3_f1": round(f, 4)}
        out[name]["pairwise_f1"] = round(pairwise_f1(part, gold), 4)
    sources = sorted({r["source"] for r in rows})
    worst, mixed, subsets = 1.0, 0, 0
    for k in range(1, len(sources) + 1):
        for chosen in itertools.combinations(sources, k):
            sub = [r for r in rows if r["source"] in chosen]
            part = cluster_docs(multilingual_docs(sub))
            subsets += 1
            worst = min(worst, b_cubed(part, {r["id"]: r["event"] for r in sub})[2])
            events_of: dict[str, set[str]] = defaultdict(set)
            for r in sub:
                events_of[part[r["id"]]].add(r["event"])
            mixed += any(len(e) > 1 for e in events_of.values())
    out["source_subsets"] = {"subsets": subsets, "worst_b3_f1": round(worst, 4), "with_mixed_story": mixed}
    return out


def sampleweb_docs(titles_only: bool = False) -> list[tuple[str, Doc]]:
    """The bundled sample web's article pages as the pipeline stores them (extracted title and
    body, the manifest's time and outlet), with their manifest event; titles-only keeps the
    headline and the first sentence, like a feed entry."""
    from pipeline.extract import extract
    from pipeline.sampleweb.server import SITE_DIR, load_manifest

    base = "http://127.0.0.1:8000"
    out = []
    for e in load_manifest():
        html = (SITE_DIR / e["path"]).read_text(encoding="utf-8").replace("{{BASE}}", base)
        page = extract(html, base + e["url_path"])
        text = _SENTENCE.split(page.text, maxsplit=1)[0] if titles_only else page.text
        when = datetime.fromisoformat(e["published_at"].replace("Z", "+00:00"))
        doc = Doc(e["path"], text=text, title=page.title, published_at=when, source=e["outlet"])
        out.append((e["event"], dataclasses.replace(doc, language=page.language or e["language"])))
    return out


def evaluate_sampleweb() -> dict[str, Any]:
    """The sample web (the strike webs' kind: one night's strike in several outlets and
    languages, the next night's, another city's): B³/pairwise F1 full and titles-only, and over
    every subset of its outlets the worst B³ F1 and the subsets where two events shared a story."""
    out: dict[str, Any] = {}
    for name, titles_only in (("full", False), ("titles", True)):
        labelled = sampleweb_docs(titles_only)
        gold = {d.id: event for event, d in labelled}
        docs = [d for _, d in labelled]
        part = cluster_docs(docs)
        p, r, f = b_cubed(part, gold)
        out.update(docs=len(docs), events=len(set(gold.values())))
        out[name] = {"b3_precision": round(p, 4), "b3_recall": round(r, 4), "b3_f1": round(f, 4)}
        out[name]["pairwise_f1"] = round(pairwise_f1(part, gold), 4)
        outlets = sorted({d.source or "" for d in docs})
        worst, mixed, subsets = 1.0, 0, 0
        for k in range(1, len(outlets) + 1):
            for chosen in itertools.combinations(outlets, k):
                sub = [d for d in docs if d.source in chosen]
                sub_part = cluster_docs(sub)
                subsets += 1
                worst = min(worst, b_cubed(sub_part, {d.id: gold[d.id] for d in sub})[2])
                events_of: dict[str, set[str]] = defaultdict(set)
                for d in sub:
                    events_of[sub_part[d.id]].add(gold[d.id])
                mixed += any(len(e) > 1 for e in events_of.values())
        out[name]["subsets"] = {"subsets": subsets, "worst_b3_f1": round(worst, 4), "with_mixed_story": mixed}
    return out


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
    mean, worst = subsamples(rows)
    result["subsample_b3_f1_mean"] = round(mean, 4)
    result["subsample_b3_f1_worst"] = round(worst, 4)
    p, r, f = b_cubed(cluster_docs(_docs(rows, titles_only=True)), gold)
    result["titles_only"] = {"b3_precision": round(p, 4), "b3_recall": round(r, 4), "b3_f1": round(f, 4)}
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
    ml = evaluate_multilingual()
    print(f"multilingual sample: {ml['docs']} docs, {ml['events']} gold events")
    for name in ("full", "titles"):
        m = ml[name]
        print(
            f"  {name:6s} B3 precision {m['b3_precision']:.4f}  recall {m['b3_recall']:.4f}  "
            f"F1 {m['b3_f1']:.4f}   pairwise F1 {m['pairwise_f1']:.4f}"
        )
    sub = ml["source_subsets"]
    print(
        f"  every subset of its sources ({sub['subsets']}): worst B3 F1 {sub['worst_b3_f1']:.4f}, "
        f"subsets with two events in one story: {sub['with_mixed_story']}"
    )
    web = evaluate_sampleweb()
    print(f"sample web: {web['docs']} reports, {web['events']} events")
    for name in ("full", "titles"):
        m = web[name]
        sub = m["subsets"]
        print(
            f"  {name:6s} B3 precision {m['b3_precision']:.4f}  recall {m['b3_recall']:.4f}  "
            f"F1 {m['b3_f1']:.4f}   pairwise F1 {m['pairwise_f1']:.4f}; every subset of its outlets "
            f"({sub['subsets']}): worst B3 F1 {sub['worst_b3_f1']:.4f}, with two events in one story: "
            f"{sub['with_mixed_story']}"
        )
    if not (args.shared / DEV_REL).exists():
        print(f"ECB+ skipped: {args.shared / DEV_REL} not found (pass --shared)")
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
    print(
        f"random 30% subsamples (20): mean B3 F1 {res['subsample_b3_f1_mean']:.4f}  "
        f"worst {res['subsample_b3_f1_worst']:.4f}"
    )
    t = res["titles_only"]
    print(
        f"titles-only: B3 precision {t['b3_precision']:.4f}  recall {t['b3_recall']:.4f}  F1 {t['b3_f1']:.4f}"
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
