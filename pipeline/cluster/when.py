"""Date phrases beyond English: when a report says its event happened, in uk, ru, de, fr, es, pt, pl.

"в ніч на 4 березня", "в ночь на 7 марта", "in der Nacht zum 4. März", "dans la nuit de mardi à
mercredi", "w nocy z wtorku na środę", "hier soir", "anoche", "am Mittwoch": the night before a
date or a weekday, last night, yesterday, today, a weekday, or a plain date. Resolved against the
publication time, in its own offset, into the same windows as the English phrases (see
``core.event_window``); the next night's strike on one city is apart because its window is.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

__all__ = ["Span", "window_phrase", "without_dates"]

Span = tuple[datetime, datetime]

_MONTHS: dict[str, int] = {}
for _n, _forms in enumerate(
    (
        "січня січень января январь januar janvier enero janeiro stycznia styczeń",
        "лютого лютий февраля февраль februar février fevereiro febrero lutego luty",
        "березня березень марта март märz maerz mars marzo março marca marzec",
        "квітня квітень апреля апрель april avril abril kwietnia kwiecień",
        "травня травень мая май mai mayo maio maja",
        "червня червень июня июнь juni juin junio junho czerwca czerwiec",
        "липня липень июля июль juli juillet julio julho lipca lipiec",
        "серпня серпень августа август august août agosto sierpnia sierpień",
        "вересня вересень сентября сентябрь september septembre septiembre setembro września wrzesień",
        "жовтня жовтень октября октябрь oktober octobre octubre outubro października październik",
        "листопада листопад ноября ноябрь november novembre noviembre novembro listopada listopad",
        "грудня грудень декабря декабрь dezember décembre diciembre dezembro grudnia grudzień",
    ),
    start=1,
):
    for _f in _forms.split():
        _MONTHS[_f] = _n

# weekday forms (nominative, accusative, genitive) -> Monday=0
_WEEKDAYS: dict[str, int] = {}
for _n, _forms in enumerate(
    (
        "понеділок понеділка понедельник понедельника montag lundi lunes segunda poniedziałek poniedziałku",
        "вівторок вівторка вторник вторника dienstag mardi martes terça wtorek wtorku",
        "середа середу середи среда среду среды mittwoch mercredi miércoles quarta środa środę środy",
        "четвер четверга четверг четверга donnerstag jeudi jueves quinta czwartek czwartku",
        "п'ятниця п'ятницю п'ятниці пятница пятницу пятницы freitag vendredi viernes sexta piątek piątku",
        "субота суботу суботи суббота субботу субботы samstag samedi sábado sobota sobotę soboty",
        "неділя неділю неділі воскресенье воскресенья sonntag dimanche domingo niedziela niedzielę niedzieli",
    )
):
    for _f in _forms.split():
        _WEEKDAYS[_f] = _n

_MONTH = "(?P<month>" + "|".join(sorted(map(re.escape, _MONTHS), key=len, reverse=True)) + ")"
_WD = "|".join(sorted(map(re.escape, _WEEKDAYS), key=len, reverse=True))

# the night before a date: uk, ru, de
_NIGHT_TO_DATE = re.compile(
    r"(?:в\s+ніч\s+на|у\s+ніч\s+на|в\s+ночь\s+на|in\s+der\s+nacht\s+(?:zum|zu|auf\s+den)|"
    r"dans\s+la\s+nuit\s+du\s+\d{1,2}\s+au|en\s+la\s+noche\s+del\s+\d{1,2}\s+al|w\s+nocy\s+z\s+\d{1,2}\s+na)"
    r"\s+(?P<day>\d{1,2})\.?\s+(?:de\s+)?" + _MONTH
)
# the night before a weekday: "в ніч на середу", "w nocy z wtorku na środę", "la nuit de mardi à mercredi"
_NIGHT_TO_WEEKDAY = re.compile(
    r"(?:в\s+ніч\s+(?:з\s+\S+\s+)?на|у\s+ніч\s+(?:з\s+\S+\s+)?на|в\s+ночь\s+(?:с\s+\S+\s+)?на|"
    r"in\s+der\s+nacht\s+(?:von\s+\S+\s+)?(?:zum|auf)|dans\s+la\s+nuit\s+de\s+\S+\s+à|"
    r"w\s+nocy\s+z\s+\S+\s+na|en\s+la\s+noche\s+del?\s+\S+\s+al?|na\s+noite\s+de\s+\S+\s+para)"
    r"\s+(?P<wd>" + _WD + r")\b"
)
_LAST_NIGHT = re.compile(
    r"\b(?:вночі|уночі|цієї\s+ночі|минулої\s+ночі|ночью|этой\s+ночью|прошлой\s+ночью|"
    r"letzte\s+nacht|in\s+der\s+nacht|heute\s+nacht|cette\s+nuit|la\s+nuit\s+dernière|dans\s+la\s+nuit|"
    r"anoche|esta\s+madrugada|de\s+madrugada|durante\s+la\s+noche|esta\s+madrugada|durante\s+a\s+noite|"
    r"na\s+última\s+noite|w\s+nocy|zeszłej\s+nocy|minionej\s+nocy|tej\s+nocy|"
    # "after the night attack": the adjective says last night as well
    r"нічн(?:ий|ого|ої|у|а|им|ою|і)|ночн(?:ой|ого|ая|ую|ые|ых)|nächtliche[nmrs]?|nocn(?:y|ego|ej|a|ą)|nocturne)(?!\w)"
)
_YESTERDAY = re.compile(
    r"(?<!\w)(?:вчора|учора|вчера|gestern|ayer|ontem|wczoraj|hier(?=\s+soir))(?:\s+(?P<part>ввечері|вечером|"
    r"abend|soir|por\s+la\s+noche|à\s+noite|wieczorem))?(?!\w)"
)
# a plain weekday with its preposition, as English "on Wednesday": "am Mittwoch", "в среду",
# "у середу", "w środę", "el miércoles", "na quarta-feira", "ce mercredi"
_ON_WEEKDAY = re.compile(r"(?<!\w)(?:am|в|во|у|w|we|el|na|no|ce|le)\s+(?P<wd>" + _WD + r")(?!\w)")
_TODAY = re.compile(r"(?<!\w)(?:сьогодні|сегодня|heute|aujourd'hui|hoy|hoje|dzisiaj|dziś)(?!\w)")
_DATE = re.compile(r"(?<![\d.])(?P<day>\d{1,2})\.?\s+(?:de\s+)?" + _MONTH + r"(?!\w)")


def _day(ts: datetime, back: int = 0) -> datetime:
    return ts.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=back)


def _night_before(day: datetime) -> Span:
    """From the evening before ``day`` to the morning of ``day``."""
    start = day - timedelta(hours=8)
    return start, day + timedelta(hours=8)


def _date(pub: datetime, day_s: str, month_s: str) -> datetime | None:
    try:
        day = pub.replace(month=_MONTHS[month_s], day=int(day_s), hour=0, minute=0, second=0, microsecond=0)
    except (ValueError, KeyError):
        return None
    if day > pub + timedelta(days=2):
        try:
            day = day.replace(year=day.year - 1)
        except ValueError:
            return None
    return day


def window_phrase(pub: datetime, lead: str) -> Span | None:
    """The event window a non-English headline and lead (lower case) give, or None."""
    m = _NIGHT_TO_DATE.search(lead)
    if m is not None:
        day = _date(pub, m.group("day"), m.group("month"))
        if day is not None:
            return _night_before(day)
    m = _NIGHT_TO_WEEKDAY.search(lead)
    if m is not None:
        back = (pub.weekday() - _WEEKDAYS[m.group("wd")]) % 7
        return _night_before(_day(pub, back))
    if _LAST_NIGHT.search(lead) is not None:
        return _night_before(_day(pub)) if pub.hour < 16 else (_day(pub) + timedelta(hours=16), pub)
    m = _YESTERDAY.search(lead)
    if m is not None:
        start = _day(pub, 1)
        if m.group("part"):
            return start + timedelta(hours=16), start + timedelta(hours=32)
        return start, start + timedelta(hours=26)
    if _TODAY.search(lead) is not None:
        return _day(pub), pub + timedelta(hours=1)
    m = _ON_WEEKDAY.search(lead)
    if m is not None:
        day = _day(pub, (pub.weekday() - _WEEKDAYS[m.group("wd")]) % 7)
        return day, day + timedelta(hours=26)
    m = _DATE.search(lead)
    if m is not None:
        day = _date(pub, m.group("day"), m.group("month"))
        if day is not None:
            return day, day + timedelta(hours=26)
    return None


_EN_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_ANY_DATE = re.compile(
    r"(?<![\d.])\d{1,2}(?:st|nd|rd|th)?\.?\s+(?:de\s+)?(?:"
    + _MONTH.replace("(?P<month>", "(?:")
    + "|"
    + _EN_MONTH
    + r")(?!\w)"
    r"|(?<!\w)" + _EN_MONTH + r"\s+\d{1,2}(?:st|nd|rd|th)?(?!\d)"
)


def without_dates(lower: str) -> str:
    """Lower-case text with its day-and-month dates taken out: the day is no count."""
    return _ANY_DATE.sub(" ", lower)
