"""Decisions that explain themselves: story evidence and the pair explanation."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.cluster.core import Doc
from pipeline.cluster.explain import explain_pair, story_evidence

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
