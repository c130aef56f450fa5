"""Date phrases beyond English resolve to the same windows as the English ones; two reports agree
on when only when their windows are one time, not merely overlapping ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.cluster.core import Doc, cluster_docs, event_window
from pipeline.cluster.language import ClusterSummary, same_window
from pipeline.cluster.when import window_phrase, without_dates

PUB = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)  # a Wednesday morning
NIGHT = (datetime(2026, 3, 3, 16, 0, tzinfo=UTC), datetime(2026, 3, 4, 8, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    "lead",
    [
        "у ніч на 4 березня росія атакувала київ",
        "в ночь на 4 марта россия атаковала киев",
        "in der nacht zum 4. märz griff russland kiew an",
        "w nocy z wtorku na środę rosja zaatakowała kijów",
        "dans la nuit de mardi à mercredi, la russie a frappé kiev",
        "anoche rusia atacó kiev",
        "вночі росія атакувала київ",
        "мешканці розбирають завали після нічної атаки",
        "жители разбирают завалы после ночной атаки",
        "nach dem nächtlichen angriff räumen anwohner trümmer",
    ],
)
def test_the_night_before_publication(lead: str) -> None:
    assert window_phrase(PUB, lead) == NIGHT


def test_next_night_yesterday_and_plain_dates() -> None:
    next_night = window_phrase(datetime(2026, 3, 5, 9, 0, tzinfo=UTC), "у ніч на 5 березня знову атака")
    assert next_night == (datetime(2026, 3, 4, 16, 0, tzinfo=UTC), datetime(2026, 3, 5, 8, 0, tzinfo=UTC))
    assert window_phrase(PUB, "hier soir, une explosion") == (
        datetime(2026, 3, 3, 16, 0, tzinfo=UTC),
        datetime(2026, 3, 4, 8, 0, tzinfo=UTC),
    )
    assert window_phrase(PUB, "вчера в городе") == (
        datetime(2026, 3, 3, 0, 0, tzinfo=UTC),
        datetime(2026, 3, 4, 2, 0, tzinfo=UTC),
    )
    assert window_phrase(PUB, "am 2. märz wurde gewählt") == (
        datetime(2026, 3, 2, 0, 0, tzinfo=UTC),
        datetime(2026, 3, 3, 2, 0, tzinfo=UTC),
    )
    assert window_phrase(PUB, "er ist hier geblieben") is None  # German "hier" is not "hier soir"


def test_event_window_falls_back_to_other_languages() -> None:
    assert event_window(PUB, "У ніч на 4 березня Росія атакувала Київ.", "Атака на Київ") == NIGHT


def test_dates_are_not_counts() -> None:
    assert "4" not in without_dates("у ніч на 4 березня загинули 2 людини").split()
    assert without_dates("on march 4 two died").split() == ["on", "two", "died"]


def test_a_night_attack_in_an_english_headline_is_last_night() -> None:
    # a headline alone ("Night attack on Kyiv: ...") must still tell this night's strike from the next
    assert event_window(PUB, "The capital is under attack.", "Night attack on Kyiv: one dead") == NIGHT
    assert event_window(PUB, "Strikes again.", "Kyiv after a night-time raid") == NIGHT
    assert event_window(PUB, "The knight attacked.", "Chess: a knight attack wins") is None


@pytest.mark.parametrize(
    "lead",
    [
        "die außenminister einigten sich am mittwoch in brüssel",
        "в среду министры договорились",
        "у середу міністри домовилися",
        "w środę ministrowie uzgodnili",
        "el miércoles los ministros acordaron",
    ],
)
def test_a_plain_weekday_is_that_day(lead: str) -> None:
    day = datetime(2026, 3, 4, 0, 0, tzinfo=UTC)
    assert window_phrase(PUB, lead) == (day, day + timedelta(hours=26))  # as "on Wednesday"


def test_a_night_phrase_beats_a_weekday() -> None:
    assert window_phrase(PUB, "in der nacht zum mittwoch griff russland an, am mittwoch sprach er") == NIGHT


def _summary(lo: datetime, hi: datetime) -> ClusterSummary:
    hours = 3600.0
    none: frozenset[str] = frozenset()
    return ClusterSummary("en", frozenset(), none, none, 0.0, lo.timestamp() / hours, hi.timestamp() / hours)


def test_a_day_and_the_night_after_it_overlap_but_are_not_one_window() -> None:
    day = _summary(datetime(2026, 3, 4, 0, 0, tzinfo=UTC), datetime(2026, 3, 5, 2, 0, tzinfo=UTC))
    night = _summary(datetime(2026, 3, 4, 16, 0, tzinfo=UTC), datetime(2026, 3, 5, 8, 0, tzinfo=UTC))
    assert not same_window(day, night) and not same_window(night, day)
    assert same_window(night, night) and same_window(day, day)


def test_a_reopening_by_day_does_not_join_the_strike_of_the_night_after() -> None:
    # the same city, windows that overlap, and five months of repairs against five injured
    reopening = Doc(
        "metro-ru",
        title="Станцию метро «Политехнический институт» открыли после пяти месяцев ремонта",
        text="В четверг, 19 ноября, в Киеве снова открылась для пассажиров станция метро "
        "«Политехнический институт». Об этом сообщили в метрополитене.",
        published_at=datetime(2026, 11, 19, 13, 10, tzinfo=UTC),
        source="vestnik",
        language="ru",
    )
    strike = Doc(
        "strike-en",
        title="Kyiv comes under attack for second night running; one killed",
        text="Russia attacked Kyiv with drones and ballistic missiles overnight, killing one person and "
        "injuring five, officials said.",
        published_at=datetime(2026, 11, 20, 2, 5, tzinfo=UTC),
        source="wire",
        language="en",
    )
    part = cluster_docs([reopening, strike])
    assert part["metro-ru"] != part["strike-en"]
