"""Batch-independent evidence on the bundled sample web: whichever of its outlets ran, no two of
its events ever share a story (a user running ``newsagg run --only wire monitor gazette`` must
not see the Kyiv and Odesa strikes of one night in one story, nor ``--only courier`` the city's
budget vote in the next night's strike), and with every outlet each event is one story, in
English, Ukrainian, Russian and German. All 255 subsets of the eight outlets are clustered; each
page is extracted once."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import datetime

import pytest

from pipeline.cluster.core import Doc, cluster_docs
from pipeline.extract import extract
from pipeline.sampleweb.server import SITE_DIR, load_manifest

MANIFEST = load_manifest()
OUTLETS = sorted({e["outlet"] for e in MANIFEST})
BASE = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def docs() -> dict[str, tuple[str, Doc]]:
    """Manifest path -> (event, the report as the pipeline stores it: extracted title and body)."""
    out = {}
    for e in MANIFEST:
        html = (SITE_DIR / e["path"]).read_text(encoding="utf-8").replace("{{BASE}}", BASE)
        page = extract(html, BASE + e["url_path"])
        out[e["path"]] = (
            e["event"],
            Doc(
                id=e["path"],
                text=page.text,
                title=page.title,
                published_at=datetime.fromisoformat(e["published_at"].replace("Z", "+00:00")),
                source=e["outlet"],
                language=page.language or e["language"],
            ),
        )
    return out


def _stories(part: dict[str, str], events: dict[str, str]) -> list[set[str]]:
    by_story: dict[str, set[str]] = defaultdict(set)
    for doc_id, story in part.items():
        by_story[story].add(events[doc_id])
    return list(by_story.values())


def test_no_subset_of_outlets_puts_two_events_in_one_story(docs: dict[str, tuple[str, Doc]]) -> None:
    tried = 0
    for k in range(1, len(OUTLETS) + 1):
        for chosen in itertools.combinations(OUTLETS, k):
            subset = [d for _, d in docs.values() if d.source in chosen]
            events = {d.id: docs[d.id][0] for d in subset}
            for story in _stories(cluster_docs(subset), events):
                assert len(story) == 1, (chosen, sorted(story))
            tried += 1
    assert tried == 2 ** len(OUTLETS) - 1


def test_all_outlets_give_one_story_per_event_across_languages(docs: dict[str, tuple[str, Doc]]) -> None:
    part = cluster_docs([d for _, d in docs.values()])
    stories: dict[str, set[str]] = defaultdict(set)
    for path, (event, _) in docs.items():
        stories[event].add(part[path])
    assert {event: len(s) for event, s in stories.items() if len(s) > 1} == {}
    languages = {docs[p][1].language for p in docs if docs[p][0] == "kyiv-strike-2026-11-19"}
    assert languages == {"en", "uk", "ru", "de"}
    # the next night in Russian and German joins the next night's story, not the first night's
    [first] = stories["kyiv-strike-2026-11-19"]
    [second] = stories["kyiv-strike-2026-11-20"]
    next_night = [p for p, (event, d) in docs.items() if event == "kyiv-strike-2026-11-20"]
    assert {docs[p][1].language for p in next_night} >= {"ru", "de"}
    for path in next_night:
        assert part[path] == second != first, path
