"""Decisions that explain themselves: story evidence and the pair explanation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from pipeline.cluster.core import Doc
from pipeline.cluster.explain import explain_pair, stories_evidence, story_evidence

AT = datetime(2026, 3, 4, 6, 0, tzinfo=UTC)
EN = Doc(
    "en",
    title="Russian missiles hit Kyiv overnight, two killed",
    text="Russia attacked Kyiv with 8 missiles and 64 drones overnight, killing two people and injuring nine "
    "in the Solomianskyi district, officials said.",
    published_at=AT,
    language="en",
)
UK = Doc(
    "uk",
    title="Атака на Київ у ніч на 4 березня: двоє загиблих",
    text="У ніч на 4 березня Росія атакувала Київ 8 ракетами та 64 дронами. У Солом'янському районі загинули "
    "двоє людей, ще дев'ятеро поранені.",
    published_at=AT,
    language="uk",
)
ODESA = Doc(
    "odesa",
    title="Russian drones hit Odesa port overnight, one killed",
    text="Russian drones hit port infrastructure in Odesa overnight, killing one person, officials said.",
    published_at=AT,
    language="en",
)


def test_story_evidence_names_what_the_reports_share() -> None:
    ev = story_evidence([EN, UK])
    assert ev["reports"] == 2
    assert ev["languages"] == ["en", "uk"]
    assert "Kyiv" in ev["shared_places"]
    assert {"8", "64", "2", "9"} <= set(ev["shared_counts"])
    assert ev["event_window"]["reports_with_window"] == 2
    assert ev["event_window"]["from"] == "2026-03-03T16:00:00Z"


def test_explain_pair_says_what_joins_and_what_keeps_apart() -> None:
    joined = explain_pair(EN, UK)
    assert joined["shared_places"] == ["Kyiv"]
    assert joined["kept_apart_by"] == []
    assert "n:slmnsk" in joined["shared_name_keys"]
    apart = explain_pair(EN, ODESA)
    assert any("far-apart cities" in r for r in apart["kept_apart_by"])
    next_day = Doc(ODESA.id, title=EN.title, text=EN.text, published_at=datetime(2026, 3, 8, tzinfo=UTC))
    assert any("published" in r for r in explain_pair(EN, next_day)["kept_apart_by"])


def test_a_single_report_shares_nothing() -> None:
    ev = story_evidence([EN])
    assert ev["reports"] == 1 and ev["languages"] == ["en"]
    assert ev["shared_names"] == ev["shared_places"] == ev["shared_counts"] == []
    assert ev["nearest_similarity"] == {"min": None, "mean": None}
    assert ev["event_window"]["reports_with_window"] == 1


def test_evidence_in_one_go_is_the_evidence_of_each_story() -> None:
    groups = [[EN, UK], [ODESA], [UK, ODESA, EN]]
    assert stories_evidence(groups) == [story_evidence(g) for g in groups]
    assert story_evidence([UK, EN]) == story_evidence([EN, UK]), "the order reports come in is irrelevant"


_EVIDENCE_IN_A_NEW_PROCESS = """
import json
from tests.test_dedup_stability import article
from pipeline.cluster.core import Doc
from pipeline.cluster.explain import story_evidence
docs = [Doc(a.article_id, a.text, a.title, a.url, a.published_at, a.source, a.language)
        for a in map(article, ("wire-1", "ledger-1", "courier-1"))]
print(json.dumps(story_evidence(docs)))
"""


def test_story_evidence_is_the_same_in_every_process() -> None:
    """Dedup stores the evidence and rewrites a story whose evidence differs, so a run in a new
    process (another hash seed, another order of a set of names) must give the same text."""
    root = Path(__file__).resolve().parent.parent
    outputs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(root)}
        done = subprocess.run(
            [sys.executable, "-c", _EVIDENCE_IN_A_NEW_PROCESS],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        outputs.add(done.stdout)
    [only] = outputs
    names = json.loads(only)["shared_names"]
    assert len(names) >= 4, "ties in the names are what a hash seed would reorder"
    assert names == sorted(names) and "tkachenko" in names  # all three give each: ties, by name
