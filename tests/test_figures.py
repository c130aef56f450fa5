"""Figures extraction: the phrasings strike reports use, and the ones that must give nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline.cluster.figures import FIGURE_KINDS, extract_claims, extract_figures, extract_places
from pipeline.extract.page import extract
from pipeline.models import FIGURE_KINDS as MODEL_KINDS
from pipeline.sampleweb.server import SITE_DIR, load_manifest


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


# -- the labelled check: sentences with the figures they give, and what they must not give --------

NOV20 = datetime(2026, 11, 20, 6, 15, tzinfo=UTC)  # a report on the second night's strike


@pytest.mark.parametrize(
    ("text", "published", "expected"),
    [
        # an earlier strike, recalled by its toll
        (
            "Russia attacked Kyiv with drones for a second night, killing one person and injuring five, "
            "officials said, less than 24 hours after a strike that killed two people in the capital.",
            None,
            [("killed", "1"), ("injured", "5")],
        ),
        (
            "The attack followed a heavier strike the previous night that killed two people and injured 14.",
            None,
            [],
        ),
        ("The strikes came a day after an attack that killed two people in Kyiv.", None, []),
        (
            "Officials said the attack was smaller than the one the night before, which left two "
            "people dead.",
            None,
            [],
        ),
        ("Last week's attack on Kharkiv killed 5 people.", None, []),
        ("In a similar attack in March, five people were killed in Lviv.", None, []),
        ("Three people were killed earlier this month in Dnipro.", None, []),
        (
            "Russia attacked Kyiv overnight, killing two, after a strike that killed five last week.",
            None,
            [("killed", "2")],
        ),
        (
            "A missile hit Kyiv, killing 3 people, after an attack that killed 2 in Dnipro.",
            None,
            [("killed", "3")],
        ),
        # another place the same night
        (
            "The strike on Odesa came on the same night as a larger attack on Kyiv that killed two people.",
            None,
            [],
        ),
        # totals, not the event
        ("Since the war began, 1,200 civilians have been killed in Kyiv.", None, []),
        ("Since February 2022, 1,200 civilians have been killed in the city.", None, []),
        ("The war has killed more than 12,000 civilians, the UN says.", None, []),
        # a date before the report's day; the same words on the day itself are the event
        (
            "This is the second attack in two days: on the night of November 19, two people were killed "
            "and 14 injured.",
            NOV20,
            [],
        ),
        (
            "Two people were killed and 14 injured on the night of November 19.",
            datetime(2026, 11, 19, 9, 40, tzinfo=UTC),
            [("killed", "2"), ("injured", "14")],
        ),
        (
            "On November 19, one person was killed.",
            datetime(2026, 11, 20, 0, 30, tzinfo=UTC),
            [("killed", "1")],
        ),
        ("In March, five people were killed in Lviv.", NOV20, []),
        # this event's own, however it is phrased
        (
            "Residents emerged from shelters after a Russian bombardment that killed at least two people "
            "and injured 14, officials said.",
            None,
            [("killed", "2"), ("injured", "14")],
        ),
        (
            "It was the deadliest attack on the capital since July, killing 23 people.",
            None,
            [("killed", "23")],
        ),
        (
            "A man who was fired last week walked into his former office and shot three people, killing one.",
            None,
            [("killed", "1")],
        ),
        ("The death toll has risen to 16 since the morning.", None, [("killed", "16")]),
        # a count the report says is superseded
        ("An earlier count had put the number of injured at eight.", None, []),
        ("The number of injured rose to 16 from an earlier count of 14 injured.", None, [("injured", "16")]),
        ("Russia launched its largest attack this year, firing 64 drones.", None, [("drones", "64")]),
        ("In March, five people were killed in Lviv.", None, [("killed", "5")]),  # no date to compare
    ],
)
def test_background_figures_are_not_the_events(
    text: str, published: datetime | None, expected: list[tuple[str, str]]
) -> None:
    assert [f for f in extract_figures(text, published=published) if f[0] != "place"] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Ukraine's air force said it shot down 52 of 64 drones.",
            [("intercepted", "52", "air force"), ("drones", "64", "air force")],
        ),
        (
            "Air defences destroyed 41 Ukrainian drones overnight, according to the Russian defence "
            "ministry.",
            [("intercepted", "41", "Russian defence ministry")],
        ),
        (
            "Russia's defence ministry said its forces shot down 30 drones.",
            [("intercepted", "30", "Russian defence ministry")],
        ),
        (
            "Two people were killed, the State Emergency Service said.",
            [("killed", "2", "State Emergency Service")],
        ),
        ("Three people were injured, officials said.", [("injured", "3", "officials")]),
        ("Kyiv's mayor said five people were injured.", [("injured", "5", "mayor")]),
        ("Mayor Vitali Klitschko said five people were injured.", [("injured", "5", "mayor")]),
        ("Police said one person was killed.", [("killed", "1", "police")]),
        (
            "One person has been killed and nine injured, according to preliminary information from the "
            "Kyiv City Military Administration.",
            [
                ("killed", "1", "city military administration"),
                ("injured", "9", "city military administration"),
            ],
        ),
        (
            "The city's military administration had earlier put the number of injured at 14.",
            [("injured", "14", "city military administration")],
        ),
        (
            "Two people were killed and 16 injured, Ukraine's State Emergency Service said. "
            "The city's military administration had earlier put the number of injured at 14.",
            [
                ("killed", "2", "State Emergency Service"),
                ("injured", "16", "State Emergency Service"),
                ("injured", "14", "city military administration"),
            ],
        ),
        (  # two sources in one sentence: each keeps its own clause's figure, side by side
            "The city military administration said two people were killed, while the State Emergency "
            "Service put the death toll at three.",
            [("killed", "2", "city military administration"), ("killed", "3", "State Emergency Service")],
        ),
        (  # "it said": the source named last in the paragraph
            "Ukraine's air force said Russia fired 12 missiles and 48 drones. Air defences brought down "
            "50 targets, including 9 missiles and 41 drones, it said.",
            [
                ("missiles", "12", "air force"),
                ("drones", "48", "air force"),
                ("intercepted", "50", "air force"),
            ],
        ),
        (  # a named source says more than "officials"
            "Two people were killed, officials said. The State Emergency Service said two people "
            "were killed.",
            [("killed", "2", "State Emergency Service")],
        ),
        ("Two people were killed in the attack.", [("killed", "2", None)]),
        ("Two people were killed, paramilitary sources said.", [("killed", "2", None)]),
        (
            "There was no immediate comment from Russia's defence ministry. Two people were killed.",
            [("killed", "2", None)],
        ),
    ],
)
def test_who_gives_a_figure(text: str, expected: list[tuple[str, str, str | None]]) -> None:
    assert [tuple(c) for c in extract_claims(text) if c.kind != "place"] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Two dead and 14 hurt as missiles and drones hit the capital.",
            [("killed", "2"), ("injured", "14")],
        ),
        (
            "The attack involved 27 drones, most of which were shot down, and two guided missiles.",
            [("drones", "27"), ("missiles", "2")],
        ),
        (
            "Ukraine's air force said it had destroyed four of the six missiles and 55 drones.",
            [("intercepted", "59"), ("missiles", "6")],
        ),
        (
            "It said 59 targets had been shot down or jammed: four of the missiles and 55 of the drones.",
            [("intercepted", "59")],
        ),
        (
            "Russia launched 27 drones at the Odesa region, of which 21 were shot down by air defence.",
            [("drones", "27"), ("intercepted", "21")],
        ),
        (
            "Air defense crews shot down 21 of the drones; both missiles struck the port.",
            [("intercepted", "21")],
        ),
        ("Windows were blown out but no one was hurt.", []),
        ("Police said two women and one man died at the bank.", []),  # a part, not the toll
        ("The father of two boys died almost immediately.", []),
        ("One man was killed and four people were injured.", [("killed", "1"), ("injured", "4")]),
        (  # a paragraph about one district gives that district's share, not the event's count
            "Seven people were injured in the attack.\nDniprovskyi district: a drone hit a petrol "
            "station. Two people were injured, including a station worker.",
            [("injured", "7")],
        ),
    ],
)
def test_more_phrasings(text: str, expected: list[tuple[str, str]]) -> None:
    assert counts(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ballistic missiles were fired from Russia's Bryansk region.", []),
        ("Drones launched from the Kursk region hit Sumy.", ["Sumy"]),
        ("A driver from the Vinnytsia region was among the injured.", []),
        ("Slavutych Kyiv beat Nordvik to stay in Conference League hunt", []),
        ("The club hopes to play in Champions League football again.", []),
        ("The attack on Odesa came on the same night as a larger strike on Kyiv.", ["Odesa"]),
        (
            "Seven people were injured in the Holosiivskyi, Obolonskyi and Dniprovskyi districts.",
            ["Holosiivskyi district", "Obolonskyi district", "Dniprovskyi district"],
        ),
        ("In Shevchenkivskyi, the top floors of a building burned.", ["Shevchenkivskyi"]),
        ("Debris fell in the Solomianskyi district.", ["Solomianskyi district"]),
        ("Drones were shot down over the Odesa region.", ["Odesa region"]),
        ("A fire broke out in Kharkiv.", ["Kharkiv"]),
        ("Man Killed In Queens Hit-And-Run", []),  # a headline's capitals are no sentence start
    ],
)
def test_places_hit_not_leagues_origins_or_background(text: str, expected: list[str]) -> None:
    assert extract_places(text) == expected


# -- the labelled check on the sample web: every English strike report against its manifest entry --

# Stated in the text, though the manifest lists a narrower set: the city administration's
# earlier count beside the emergency service's, and "destroyed four of the six missiles and 55
# drones". Places: the event's own city, and the neighbourhood a resident stood in.
ALSO_STATED = {
    "/monitor/article/2026/11/19/kyiv-strike-death-toll-rises-16-injured": {("injured", "14")},
    "/monitor/article/2026/11/20/russia-strikes-kyiv-again-ballistic-missiles": {("intercepted", "59")},
}
EVENT_PLACES = {"kyiv": {"Kyiv", "Obolon"}, "odesa": {"Odesa", "Odesa region"}}
STRIKES = [e for e in load_manifest() if "strike" in e["event"] and e["language"] == "en"]


def _variants(entry: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(entry["path"], entry["figures"])] + [
        (ed["path"], ed["figures"]) for ed in entry.get("editions", [])
    ]


@pytest.mark.parametrize("entry", STRIKES, ids=lambda e: e["url_path"])
def test_sample_web_strike_reports_give_their_events_figures_only(entry: dict[str, Any]) -> None:
    for path, truth in _variants(entry):
        page = extract((SITE_DIR / path).read_bytes(), "https://sample.example" + entry["url_path"])
        got = extract_claims(page.text, page.title, page.published_at)
        counts_got = {(c.kind, c.value) for c in got if c.kind != "place"}
        counts_truth = {(k, str(v)) for k, v in truth.items() if k != "place"}
        extra = ALSO_STATED.get(entry["url_path"].rstrip("/"), set())
        assert counts_got - extra == counts_truth, path
        places = {
            c.value.rsplit(" ", 1)[0] if c.value.endswith(" district") else c.value
            for c in got
            if c.kind == "place"
        }
        assert places - EVENT_PLACES[entry["event"].split("-")[0]] == set(truth.get("place", [])), path


def test_sample_web_gives_no_competition_or_launch_site_as_a_place() -> None:
    for entry in load_manifest():
        page = extract((SITE_DIR / entry["path"]).read_bytes(), "https://sample.example" + entry["url_path"])
        places = extract_places(page.text, page.title, page.published_at)
        assert not [p for p in places if p.split()[-1] in ("League", "Cup") or "Bryansk" in p], entry["path"]
