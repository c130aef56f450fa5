"""Per-outlet headline boilerplate: learnt from the outlet's own titles, stripped before clustering."""

from __future__ import annotations

from pipeline.parse.titles import TitleCleaner, clean_title, learn_cleaners

WMC = [
    "Man shot on Elm Street overnight - WMC Action News 5 - Memphis",
    "Church fire on Union Avenue ruled arson - WMC Action News 5 - Memphis",
]
CHINA_POST = [
    "Typhoon makes landfall in Hualien | The China Post, Taiwan",
    "Legislature passes budget | The China Post, Taiwan",
]
AP = ["The Latest: Storm nears Florida coast", "The Latest: Vote count continues in Georgia"]


def test_recurring_suffixes_and_prefixes_of_an_outlet_are_stripped() -> None:
    titles = [("wmc", t) for t in WMC] + [("cp", t) for t in CHINA_POST] + [("ap", t) for t in AP]
    cleaners = learn_cleaners(titles)
    assert [cleaners["wmc"].clean(t) for t in WMC] == [
        "Man shot on Elm Street overnight",
        "Church fire on Union Avenue ruled arson",
    ]
    assert cleaners["cp"].clean(CHINA_POST[0]) == "Typhoon makes landfall in Hualien"
    assert cleaners["ap"].clean(AP[1]) == "Vote count continues in Georgia"


def test_one_outlets_habit_never_strips_another_outlets_headline() -> None:
    cleaners = learn_cleaners([("wmc", t) for t in WMC] + [("other", "Fire on Elm St - Memphis")])
    assert cleaners["other"].clean("Fire on Elm St - Memphis") == "Fire on Elm St - Memphis"


def test_a_suffix_seen_once_stays_unless_it_is_the_site_name() -> None:
    cleaners = learn_cleaners(
        [
            ("x", "Slavutych Kyiv beat Nordvik 2-1 - match report"),
            ("y", "Storm hits coast - Eastbridge Herald"),
        ],
        site_names={"y": "The Eastbridge Herald"},
    )
    assert cleaners["x"].clean("Slavutych Kyiv beat Nordvik 2-1 - match report").endswith("match report")
    assert cleaners["y"].clean("Storm hits coast - Eastbridge Herald") == "Storm hits coast"


def test_a_title_that_is_only_boilerplate_is_kept_and_known_labels_go_anywhere() -> None:
    cleaner = TitleCleaner(suffixes={"memphis"}, prefixes=set())
    assert cleaner.clean("Memphis") == "Memphis"
    assert clean_title("LIVE: Russian strikes on Kyiv") == "Russian strikes on Kyiv"
    assert clean_title(None) is None
