"""The figures a strike report gives: killed, injured, missiles and drones launched, intercepted,
and the places hit.

Rules, not a model: reports phrase these few figures in a few dozen ways, a rule that misses one
is easy to see and fix, and a wrong number in a story is worse than a missing one. So every
pattern is anchored on the verb or noun that says what is counted, and "dozens", "hundreds" or
"several" are ignored rather than guessed.

Decisions:

* ``intercepted`` is the total shot down in one statement ("shot down 9 missiles and 41 drones"
  gives 50); reports rarely agree on the split, the total is what stories compare.
* ``missiles`` and ``drones`` are the numbers launched; numbers in an interception clause count
  as intercepted, except "shot down 11 of 14 drones", where 14 is the launched number.
* A figure repeated with the same value is given once; different values (an updated toll) are
  all kept, in the order the text gives them.
* Places are conservative: "<Name> district|region|oblast|province", "city of <Name>",
  "in <Name>" (a capitalised name that is not a month, weekday or institution), and a dateline
  ("KYIV, March 13 -"). District, region and oblast names keep their qualifier.
"""

from __future__ import annotations

import re

from pipeline.models import FIGURE_KINDS

__all__ = ["FIGURE_KINDS", "extract_figures", "extract_places"]


_NUMBER_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
}
_NW = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
    "fifteen|sixteen|seventeen|eighteen|nineteen|twenty"
)
# a count: digits (1,234 allowed) or a number word; not part of a time, date or decimal
_N = rf"(?<![\w.,:/-])(?:\d{{1,3}}(?:,\d{{3}})+|\d+|{_NW})(?![\w.,:/-]\d|\w)"
_Q = (
    r"(?:(?:at\s+least|more\s+than|over|up\s+to|some|about|around|nearly|almost|another|"
    r"a\s+further|a\s+total\s+of)\s+)?"
)
_WHO = (
    r"(?:(?:people|persons|civilians|residents|children|adults|women|men|others|soldiers|"
    r"workers|bystanders|individuals|victims|passengers|of\s+them)\s+)?"
)
_BE = r"(?:(?:were|was|have\s+been|has\s+been|had\s+been|are|is|got|reportedly|been)\s+)*"

_KILLED = [
    rf"(?P<n>{_N})\s+{_WHO}{_BE}(?:killed|dead|confirmed\s+dead|died|perished|lost\s+their\s+lives)",
    rf"\b(?:killing|killed|kills|kill|claimed\s+the\s+lives\s+of|took\s+the\s+lives\s+of)"
    rf"\s+{_Q}(?P<n>{_N})(?!\s+(?:years?|months?|weeks?|days?|hours?|minutes?)\b)",
    rf"\bleft\s+{_Q}(?P<n>{_N})\s+{_WHO}dead",
    rf"\bdeath\s+toll\s+(?:[\w'’]+\s+){{0,6}}?(?:rose|risen|rises|climbed|increased|jumped|reached|"
    rf"stands|stood|is|was|grew|hit)\s+(?:to|at)?\s*{_Q}(?P<n>{_N})",
    rf"(?P<n>{_N})\s+(?:deaths|fatalities|dead)\b",
]
_INJURED = [
    rf"(?P<n>{_N})\s+{_WHO}{_BE}(?:injured|wounded|hurt|hospitali[sz]ed\s+with\s+injuries)",
    rf"\b(?:injuring|wounding|injured|wounded|injures|wounds|injure|wound|hurting)\s+{_Q}"
    rf"(?P<n>{_N})",
    rf"\bleft\s+{_Q}(?P<n>{_N})\s+{_WHO}(?:injured|wounded|hurt)",
    rf"(?P<n>{_N})\s+(?:injuries|injured|wounded)\b",
]
_KILLED_RE = [re.compile(p, re.IGNORECASE) for p in _KILLED]
_INJURED_RE = [re.compile(p, re.IGNORECASE) for p in _INJURED]
# Words every match of a kind's patterns contains (matched with the same IGNORECASE folding):
# a sentence without one cannot give that kind, so its patterns are not tried on it.
_KILLED_HINT = re.compile(r"kill|dead|died|perish|lives|death|fatalit", re.IGNORECASE)
_INJURED_HINT = re.compile(r"injur|wound|hurt|hospitali", re.IGNORECASE)

# "<n> [up to four modifiers] missiles|drones"; modifiers carry no number
_MOD = r"(?:(?!(?:and|of)\b)[A-Za-z][\w'’-]*|and(?=\s+[A-Za-z][\w-]*\s+(?:missiles?|drones?)\b))"
_WEAPON_RE = re.compile(
    rf"{_Q}(?P<n>{_N})\s+(?:{_MOD}\s+){{0,4}}?(?P<w>missiles?|drones?|UAVs?)\b",
    re.IGNORECASE,
)
_WEAPON_HINT = re.compile(r"missile|drone|UAV", re.IGNORECASE)  # in every _WEAPON_RE match
_VERB = re.compile(
    r"\b(?:(?P<icpt>shot\s+down|shooting\s+down|shoots\s+down|downed|intercepted|"
    r"intercepting|destroyed|destroying|neutrali[sz]ed|repelled|repelling|took\s+down|"
    r"brought\s+down)|(?P<launch>launched|launching|launches|fired|firing|used|sent|"
    r"attacked|deployed|targeted))\b",
    re.IGNORECASE,
)
_JOIN = re.compile(r"\s*(?:,|,?\s*and|,?\s*as\s+well\s+as|,?\s*plus)\s*", re.IGNORECASE)
_OF_BEFORE = re.compile(rf"(?P<a>{_N})\s+(?:out\s+)?of\s+(?:the\s+)?$", re.IGNORECASE)
_OUT_OF = re.compile(r"\b(?:out\s+of|of\s+the|of)\s+$", re.IGNORECASE)
_AFTER_INTERCEPT = re.compile(
    r"^\s*(?:(?:were|was|had\s+been|have\s+been|had|have|been|all|successfully)\s+){0,3}"
    r"(?:shot\s+down|downed|intercepted|destroyed|neutrali[sz]ed)\b",
    re.IGNORECASE,
)
_CLAUSE_BREAK = re.compile(r"[;.!?]|,\s+(?:while|but|and\s+the|as)\b|\bwhile\b|\bbut\b", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"“'‘(])|\n+")

_PLACE_STOP = frozenset(
    (
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "the",
        "a",
        "an",
        "this",
        "that",
        "these",
        "those",
        "his",
        "her",
        "their",
        "its",
        "our",
        "my",
        "your",
        "parliament",
        "congress",
        "court",
        "senate",
        "government",
        "office",
        "ministry",
        "english",
        "ukrainian",
        "russian",
        "german",
        "french",
        "total",
        "addition",
        "particular",
        "response",
        "fact",
        "order",
        "part",
        "general",
        "spite",
        "turn",
        "recent",
        "contrast",
        "reply",
        "support",
        "front",
    )
)
_QUALIFIERS = frozenset(("district", "region", "oblast", "province", "county", "raion"))
_UP = r"[A-Z\u00c0-\u00de\u0400-\u042f\u0404\u0406\u0407\u0490]"
_PNAME = rf"{_UP}[\w'’-]*[a-z\u00df-\u00ff\u0430-\u045f\u0454\u0456\u0457\u0491](?:[\s-]{_UP}[\w'’-]*)?"
_KINDS = r"(?i:district|region|oblast|province|county|raion)"
_DISTRICT_RE = re.compile(rf"(?<![\w-])(?P<name>{_PNAME})\s+(?P<kind>{_KINDS})\b")
_CITY_OF_RE = re.compile(rf"\b(?:city|town|village|port|capital)\s+of\s+(?P<name>{_PNAME})")
_IN_RE = re.compile(
    rf"\b(?:in|near|outside|across|hit|hitting|hits|struck|striking|strikes|"
    rf"targeted|targeting|attacked|attacking|shelled|shelling)\s+"
    rf"(?P<name>{_PNAME})(?![\w'’-]*\s+{_UP})"
)
_ATTACK_ON_RE = re.compile(
    rf"\b(?:attacks?|strikes?|assault|raids?|shelling|bombardment|"
    rf"bombing)\s+(?:on|of|against)\s+(?P<name>{_PNAME})"
    rf"(?![\w'’-]*\s+{_UP})"
)
_TWO_DISTRICTS_RE = re.compile(rf"(?<![\w-])(?P<a>{_PNAME})\s+and\s+(?P<b>{_PNAME})\s+(?P<kind>{_KINDS})s\b")
_DATELINE_RE = re.compile(
    rf"^\s*(?P<name>{_UP}[A-Z\u0400-\u042f'’ -]{{2,30}}?)"
    r"(?:,\s*[A-Z][\w ]{0,20})?\s*(?:,|\()\s*(?:\w+\.?\s+\d{1,2}|"
    r"\d{1,2}\s+\w+|Reuters|AP|AFP)"
)


def _count(token: str) -> int | None:
    t = token.lower().replace(",", "")
    if t.isdigit():
        return int(t)
    return _NUMBER_WORDS.get(t)


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text) if s.strip()]


def _weapon_figures(sentence: str) -> list[tuple[str, str]]:
    """Launched and intercepted counts of one sentence.

    Consecutive "<n> missiles and <n> drones" mentions form one group; a group preceded by an
    interception verb (the last verb before it wins over a launch verb), or followed by "were
    shot down", is intercepted, and "<a> of <group>" after an interception verb makes <a>
    intercepted and the group launched.
    """
    out: list[tuple[str, str]] = []
    for clause in _CLAUSE_BREAK.split(sentence):
        items = list(_WEAPON_RE.finditer(clause))
        groups: list[list[re.Match[str]]] = []
        for m in items:
            if groups and _JOIN.fullmatch(clause[groups[-1][-1].end() : m.start()]):
                groups[-1].append(m)
            else:
                groups.append([m])
        intercepted = 0
        for group in groups:
            before = clause[: group[0].start()]
            after = clause[group[-1].end() :]
            last_verb = None
            for v in _VERB.finditer(before):
                last_verb = v
            by_verb = last_verb is not None and last_verb.group("icpt") is not None
            of = _OF_BEFORE.search(before)
            counts = [(m, _count(m.group("n"))) for m in group]
            if of is not None:
                a = _count(of.group("a"))
                if a is not None and by_verb:
                    intercepted += a
                is_intercepted = False
            elif _OUT_OF.search(before):
                is_intercepted = False
            else:
                is_intercepted = by_verb or bool(_AFTER_INTERCEPT.match(after))
            for m, n in counts:
                if n is None:
                    continue
                if is_intercepted:
                    intercepted += n
                else:
                    kind = "missiles" if m.group("w").lower().startswith("missile") else "drones"
                    out.append((kind, str(n)))
        if intercepted:
            out.append(("intercepted", str(intercepted)))
    return out


def _tidy(name: str) -> str:
    name = name.strip(" '’-")
    if name.isupper():
        name = "-".join(p.capitalize() for p in name.title().split("-"))
    return re.sub(r"['’]s$", "", name)


def extract_places(text: str, title: str | None = None) -> list[str]:
    """Places named as hit or as where it happened, in order of first mention."""
    found: list[tuple[int, str]] = []
    parts = [title or "", text]
    offset = 0
    for part in parts:
        m = _DATELINE_RE.match(part)
        if m and len(m.group("name").split()) <= 3:
            found.append((offset + m.start("name"), _tidy(m.group("name"))))
        for m in _DISTRICT_RE.finditer(part):
            name = _tidy(m.group("name"))
            if name.split()[-1].lower() in _QUALIFIERS:  # "Kharkiv Oblast region"
                continue
            if name.split()[0].lower() not in _PLACE_STOP:
                found.append((offset + m.start(), f"{name} {m.group('kind').lower()}"))
        for m in _TWO_DISTRICTS_RE.finditer(part):
            for key in ("a", "b"):
                name = _tidy(m.group(key))
                if name.split()[0].lower() not in _PLACE_STOP:
                    found.append((offset + m.start(key), f"{name} {m.group('kind').lower()}"))
        for rx in (_CITY_OF_RE, _IN_RE, _ATTACK_ON_RE):
            for m in rx.finditer(part):
                name = _tidy(m.group("name"))
                words = name.split()
                if not words or words[0].lower() in _PLACE_STOP or (words[-1].lower() in _QUALIFIERS):
                    continue
                tail = part[m.end("name") : m.end("name") + 20].lower()
                if re.match(r"\s+(?:district|region|oblast|province|county|raion)\b", tail):
                    continue  # counted with its qualifier above
                found.append((offset + m.start("name"), name))
        offset += len(part) + 1
    seen: set[str] = set()
    out: list[str] = []
    for _, name in sorted(found, key=lambda x: x[0]):
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def extract_figures(
    text: str, title: str | None = None, language: str | None = None
) -> list[tuple[str, str]]:
    """(kind, value) pairs, kinds from FIGURE_KINDS, counts as decimal strings.

    The rules read English: a report in another ``language`` gives none, or its words would be
    read as English ("in Brand", a German fire, would be a place called Brand)."""
    if language and language.strip().lower().replace("_", "-").split("-")[0] not in ("en", "und"):
        return []
    hits: list[tuple[int, str, str]] = []
    full = (title + "\n" if title else "") + text
    pos = 0
    for sentence in _sentences(full):
        start = full.find(sentence, pos)
        pos = max(pos, start)
        for kind, patterns, hint in (
            ("killed", _KILLED_RE, _KILLED_HINT),
            ("injured", _INJURED_RE, _INJURED_HINT),
        ):
            if not hint.search(sentence):
                continue
            taken: list[tuple[int, int]] = []
            for rx in patterns:
                for m in rx.finditer(sentence):
                    span = m.span("n")
                    if any(a <= span[0] < b for a, b in taken):
                        continue
                    n = _count(m.group("n"))
                    if n is None or (m.group("n").lower() in ("a", "an")):
                        continue
                    taken.append(span)
                    hits.append((start + span[0], kind, str(n)))
        if not _WEAPON_HINT.search(sentence):
            continue  # no weapon mentioned: _weapon_figures would find nothing
        for i, (kind, value) in enumerate(_weapon_figures(sentence)):
            hits.append((start + i, kind, value))
    hits.sort(key=lambda h: h[0])
    out: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for _, kind, value in hits:
        if (kind, value) not in seen:
            seen.add((kind, value))
            out.append((kind, value))
    for place in extract_places(text, title):
        if ("place", place) not in seen:
            seen.add(("place", place))
            out.append(("place", place))
    return out
