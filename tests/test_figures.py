"""Figures extraction: the phrasings strike reports use, and the ones that must give nothing."""

from __future__ import annotations

import pytest

from pipeline.cluster.figures import FIGURE_KINDS, extract_figures, extract_places
from pipeline.models import FIGURE_KINDS as MODEL_KINDS


def counts(text: str, title: str | None = None) -> list[tuple[str, str]]:
    return [f for f in extract_figures(text, title) if f[0] != "place"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("At least two people were killed in the attack.", [("killed", "2")]),
        ("The strike hit a market, killing 3 civilians.", [("killed", "3")]),
        ("The death toll rose to 5 on Thursday.", [("killed", "5")]),
        ("The death toll from the attack has risen to 12.", [("killed", "12")]),
        ("The death toll stood at seven by the evening.", [("killed", "7")]),
        ("Three people died in hospital.", [("killed", "3")]),
        ("Russian missile attack kills two", [("killed", "2")]),
        ("The blast left 4 dead.", [("killed", "4")]),
        ("Eleven people have been killed, officials said.", [("killed", "11")]),
        ("Officials confirmed 1,204 deaths.", [("killed", "1204")]),
        ("14 injured were taken to hospital.", [("injured", "14")]),
        ("The blast was wounding 9 passers-by.", [("injured", "9")]),
        ("Debris fell on a house, injuring five people.", [("injured", "5")]),
        ("Sixteen people were wounded.", [("injured", "16")]),
        ("Twenty residents were hurt.", [("injured", "20")]),
        ("The attack left 8 people injured.", [("injured", "8")]),
    ],
)
def test_casualties(text: str, expected: list[tuple[str, str]]) -> None:
    assert counts(text) == expected


def test_killed_and_injured_in_one_sentence() -> None:
    assert counts("At least two people were killed and 16 wounded.") == [("killed", "2"), ("injured", "16")]
    assert counts("The strike hit a market, killing 3 and wounding 9.") == [("killed", "3"), ("injured", "9")]
    assert counts("Russian missile and drone attack on Kyiv kills two, injures 14") == [
        ("killed", "2"),
        ("injured", "14"),
    ]
    assert counts("Three people died and twenty were hurt.") == [("killed", "3"), ("injured", "20")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Russia launched 12 ballistic and cruise missiles and 48 drones.",
            [("missiles", "12"), ("drones", "48")],
        ),
        (
            "The air force said 48 drones and 12 missiles were launched.",
            [("drones", "48"), ("missiles", "12")],
        ),
        ("Russia attacked with 31 Shahed drones overnight.", [("drones", "31")]),
        ("Air defence shot down 9 missiles and 41 drones.", [("intercepted", "50")]),
        ("Air defence units destroyed 41 drones.", [("intercepted", "41")]),
        ("41 drones and 9 missiles were downed.", [("intercepted", "50")]),
        ("Air defence shot down 11 of 14 drones over the region.", [("drones", "14"), ("intercepted", "11")]),
        (
            "Air defence shot down 6 missiles and 25 drones out of 8 missiles and 32 drones "
            "launched overnight.",
            [("intercepted", "31"), ("missiles", "8"), ("drones", "32")],
        ),
        ("Russia launched 48 drones, while air defence shot down 41.", [("drones", "48")]),
        ("One missile hit a power plant.", [("missiles", "1")]),
    ],
)
def test_weapons(text: str, expected: list[tuple[str, str]]) -> None:
    assert sorted(counts(text)) == sorted(expected)


@pytest.mark.parametrize(
    "text",
    [
        "Dozens of people were injured.",
        "Hundreds of drones have been launched this month.",
        "Several people were killed.",
        "The attack began at 2:30 a.m. local time.",
        "The 2022 invasion killed thousands.",  # a year is not a count; "thousands" ignored
        "He was killed 3 years ago.",
        "Nine of the injured were hospitalised.",
    ],
)
def test_vague_or_unrelated_numbers_give_nothing(text: str) -> None:
    assert counts(text) == []


def test_repeated_value_once_and_update_kept() -> None:
    text = (
        "Two people were killed in the strike. Officials said two people were killed. "
        "Later the death toll rose to 3."
    )
    assert counts(text) == [("killed", "2"), ("killed", "3")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Debris fell in the Shevchenkivskyi district.", ["Shevchenkivskyi district"]),
        (
            "Debris fell in the Shevchenkivskyi and Solomianskyi districts.",
            ["Shevchenkivskyi district", "Solomianskyi district"],
        ),
        ("A fire broke out in Kyiv after the attack.", ["Kyiv"]),
        ("Drones were shot down over the Odesa region.", ["Odesa region"]),
        ("Three people were injured in Kharkiv Oblast.", ["Kharkiv oblast"]),
        ("The port in the city of Izmail was hit.", ["Izmail"]),
        ("KYIV, March 13 (Reuters) - Russia attacked the capital.", ["Kyiv"]),
        ("The missile strike on Dnipro killed two.", ["Dnipro"]),
        ("In March, five people were killed in Lviv.", ["Lviv"]),
        ("The talks were held in Parliament on Monday.", []),
        ("It happened in January.", []),
    ],
)
def test_places(text: str, expected: list[str]) -> None:
    assert extract_places(text) == expected


def test_full_report() -> None:
    title = "Russian missile and drone attack on Kyiv kills two, injures 14"
    text = (
        "KYIV, March 13 - Russia launched a massive missile and drone attack on Kyiv "
        "overnight, killing at least two people and injuring 14, Mayor Vitali Klitschko "
        "said. Debris fell in the Shevchenkivskyi district. Ukraine's air force said Russia "
        "launched 12 ballistic and cruise missiles and 48 drones, and air defence shot down "
        "9 missiles and 41 drones."
    )
    figures = extract_figures(text, title)
    assert figures == [
        ("killed", "2"),
        ("injured", "14"),
        ("missiles", "12"),
        ("drones", "48"),
        ("intercepted", "50"),
        ("place", "Kyiv"),
        ("place", "Shevchenkivskyi district"),
    ]
    assert {kind for kind, _ in figures} <= set(MODEL_KINDS)
    assert FIGURE_KINDS == MODEL_KINDS


def test_reports_in_other_languages_give_no_figures() -> None:
    german = "Im Bezirk Darnyzkyj geriet eine Lagerhalle in Brand, 16 Menschen wurden verletzt."
    assert extract_figures(german, "Zwei Tote in Kiew", language="de") == []
    english = "A warehouse caught fire in Darnytskyi district; 16 people were injured."
    assert extract_figures(english, language="en-GB") == extract_figures(english)
    assert ("injured", "16") in extract_figures(english, language="und")


def test_empty() -> None:
    assert extract_figures("") == []
    assert extract_figures("Nothing to count here.", title="Calm night") == []
