"""Local angles: a city outlet's report from one district (the street, the figures, no city in
the headline) joins the story of the strike the other reports place in that district, in any
language; a district fire the same day with other figures, or the next night's strike there,
does not."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.cluster.core import Doc, cluster_docs

T = datetime(2026, 3, 4, 0, 0, tzinfo=UTC)


def _doc(i: str, lang: str, source: str, hour: int, title: str, text: str, day: int = 4) -> Doc:
    return Doc(
        i, text=text, title=title, published_at=T.replace(day=day, hour=hour), source=source, language=lang
    )


WIRE = _doc(
    "wire",
    "en",
    "wire",
    3,
    "Russian missiles and drones hit Kyiv overnight, two killed",
    "Russia attacked Kyiv with 8 missiles and 64 drones overnight, killing two people and injuring nine, "
    "the city military administration said. Debris fell in the Solomianskyi district.",
)
UKR = _doc(
    "ukr",
    "uk",
    "ukrpravda",
    4,
    "Атака на Київ у ніч на 4 березня: двоє загиблих, дев'ятеро поранених",
    "У ніч на 4 березня Росія атакувала Київ 8 ракетами та 64 дронами. Загинули двоє людей, дев'ятеро "
    "поранені. Уламки впали в Солом'янському районі.",
)
LOCAL = _doc(
    "local",
    "uk",
    "kyivcity",
    9,
    "Солом'янський район: мешканці розбирають завали після нічного удару",
    "Мешканці Солом'янського району розбирають завали після нічної атаки. Загинули двоє людей, дев'ятеро "
    "поранені. Уламки пошкодили будинок на вулиці Гарматній.",
)
FIRE = _doc(
    "fire",
    "uk",
    "kyivcity",
    15,
    "Солом'янський район: у багатоповерхівці сталася пожежа",
    "Сьогодні у Солом'янському районі загорілася квартира на сьомому поверсі. Одна людина постраждала.",
)
NEXT_NIGHT = _doc(
    "next",
    "uk",
    "kyivcity",
    8,
    "Солом'янський район: нова атака, уламки на вулиці Гарматній",
    "Мешканці Солом'янського району знову прокинулися від вибухів після нічної атаки. Поранені троє людей.",
    day=5,
)


def test_a_local_angle_joins_the_strike_its_district_was_hit_in() -> None:
    part = cluster_docs([WIRE, UKR, LOCAL])
    assert part["local"] == part["wire"] == part["ukr"]


def test_other_events_in_the_district_stay_apart() -> None:
    part = cluster_docs([WIRE, UKR, LOCAL, FIRE, NEXT_NIGHT])
    assert part["local"] == part["wire"]
    assert part["fire"] not in {part["wire"], part["next"]}
    assert part["next"] != part["wire"]
