"""The figures a strike report gives: killed, injured, missiles and drones launched, intercepted,
and the places hit, each with who the report says gives it.

Rules, not a model: reports phrase these few figures in a few dozen ways, a rule that misses one
is easy to see and fix, and a wrong number in a story is worse than a missing one. So every
pattern is anchored on the verb or noun that says what is counted, and "dozens", "hundreds" or
"several" are ignored rather than guessed.

Decisions:

* ``intercepted`` is the total shot down in one statement ("shot down 9 missiles and 41 drones"
  gives 50); reports rarely agree on the split, the total is what stories compare.
* ``missiles`` and ``drones`` are the numbers launched; numbers in an interception clause count
  as intercepted, except "shot down 11 of 14 drones", where 14 is the launched number. A passive
  interception ("most of which were shot down") says nothing of the numbers after it.
* A figure repeated with the same value is given once; different values (an updated toll) are
  all kept, in the order the text gives them.
* Background is not the event. Reports recall earlier strikes ("less than 24 hours after a
  strike that killed two"), other places the same night and totals of the war ("since February
  2022, 1,200 civilians have been killed"). A sentence is cut at ";", ":" and dashes; within a
  part, a clause opened by "than", "<time> after", "followed", "came as", "the same night as" or
  "an earlier count" is background to its end, and a part that names another time ("the
  previous night", "last week", "earlier this month", "in a similar attack", "since ...", a date
  before the report's day) is background as a whole, unless that time sits in a relative clause
  ("a man who was fired last week shot three people, killing one": only "who ... last week"). A
  bare "after a strike that killed two" is background only when the rest of the sentence gives
  casualties of its own or the clause names another time: "residents emerged after a
  bombardment that killed two" is this event's toll. Counts in a paragraph headed by one
  district ("Dniprovskyi district: ...") are that district's share.
* Attribution: "<who> said", "according to <who>", "<who>, which said", "it said" (the last
  source named in the paragraph) give the figure's ``source_claim``, a short normalised name
  ("air force", "Russian defence ministry", "city military administration"); two sources in
  one sentence each keep the figures of their own clause.
* Places are conservative: "<Name> district|region|oblast|province", "city of <Name>",
  "in <Name>" (a capitalised name that is not a month, weekday or institution), and a dateline
  ("KYIV, March 13 -"). District, region and oblast names keep their qualifier. Not places hit:
  competitions ("Conference League"), where something came from ("fired from Russia's Bryansk
  region", "a driver from the Vinnytsia region") and places in background clauses.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from pipeline.models import FIGURE_KINDS
from pipeline.timeutil import MONTH_NAMES, WEEKDAY_NAMES

__all__ = ["FIGURE_KINDS", "Claim", "extract_claims", "extract_figures", "extract_places"]


class Claim(NamedTuple):
    """One figure a report gives and who it says gives it (None: the report does not say)."""

    kind: str
    value: str
    source_claim: str | None = None


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
_N = rf"(?<![\w.,:/-])(?<!\b[Nn]o\s)(?<!\b[Nn]ot\s)(?:\d{{1,3}}(?:,\d{{3}})+|\d+|{_NW})(?![\w.,:/-]\d|\w)"
_Q = (
    r"(?:(?:at\s+least|more\s+than|over|up\s+to|some|about|around|nearly|almost|another|"
    r"a\s+further|a\s+total\s+of)\s+)?"
)
_WHO = (
    r"(?:(?:people|persons|person|civilians|residents|children|child|adults|women|woman|men|man|"
    r"others|soldiers|workers|bystanders|individuals|victims|passengers|of\s+them)\s+)?"
)
_BE = r"(?:(?:were|was|have\s+been|has\s+been|had\s+been|are|is|got|reportedly|been)\s+)*"

_KILLED = [
    rf"(?P<n>{_N})\s+{_WHO}{_BE}(?:killed|dead|confirmed\s+dead|died|perished|lost\s+their\s+lives)",
    rf"\b(?:killing|killed|kills|kill|claimed\s+the\s+lives\s+of|took\s+the\s+lives\s+of)"
    rf"\s+{_Q}(?P<n>{_N})(?!\s+(?:years?|months?|weeks?|days?|hours?|minutes?)\b)",
    rf"\bleft\s+{_Q}(?P<n>{_N})\s+{_WHO}dead",
    rf"\b(?:death\s+toll|number\s+of\s+(?:dead|deaths|fatalities|people\s+killed))\s+"
    rf"(?:[\w'’]+\s+){{0,6}}?(?:(?:rose|risen|rises|climbed|increased|jumped|reached|stands|stood|is|"
    rf"was|grew|hit)\s+(?:to|at)?|at|to)\s*{_Q}(?P<n>{_N})",
    rf"(?P<n>{_N})\s+(?:deaths|fatalities|dead)\b",
]
_INJURED = [
    rf"(?P<n>{_N})\s+{_WHO}{_BE}(?:injured|wounded|hurt|hospitali[sz]ed\s+with\s+injuries)",
    rf"\b(?:injuring|wounding|injured|wounded|injures|wounds|injure|wound|hurting)\s+{_Q}"
    rf"(?P<n>{_N})",
    rf"\bleft\s+{_Q}(?P<n>{_N})\s+{_WHO}(?:injured|wounded|hurt)",
    rf"(?P<n>{_N})\s+(?:injuries|injured|wounded)\b",
    rf"\bnumber\s+of\s+(?:injured|wounded|people\s+(?:injured|wounded|hurt))\s+"
    rf"(?:[\w'’]+\s+){{0,4}}?(?:at|to)\s+{_Q}(?P<n>{_N})",
]
# a count that ends a list of counts ("two women and <one> man")
_LISTED = re.compile(rf"{_N}\s+{_WHO}and\s+$", re.IGNORECASE)
_KILLED_RE = [re.compile(p, re.IGNORECASE) for p in _KILLED]
_INJURED_RE = [re.compile(p, re.IGNORECASE) for p in _INJURED]
# Words every match of a kind's patterns contains (matched with the same IGNORECASE folding):
# a sentence without one cannot give that kind, so its patterns are not tried on it.
_KILLED_HINT = re.compile(r"kill|dead|died|perish|lives|death|fatalit", re.IGNORECASE)
_INJURED_HINT = re.compile(r"injur|wound|hurt|hospitali", re.IGNORECASE)
_CASUALTY = [
    (kind, rx) for kind, patterns in (("killed", _KILLED_RE), ("injured", _INJURED_RE)) for rx in patterns
]

# "<n> [up to four modifiers] missiles|drones"; modifiers carry no number and are not the words
# between two statements ("14 hurt as missiles ...")
_MOD = (
    r"(?:(?!(?:and|of|as|in|on|at|by|for|from|to|with|when|while|after|before|than|were|was|"
    r"have|had|hurt|injured|wounded|killed|dead|died|people)\b)[A-Za-z][\w'’-]*"
    r"|and(?=\s+[A-Za-z][\w-]*\s+(?:missiles?|drones?)\b))"
)
_WEAPON_RE = re.compile(
    rf"{_Q}(?P<n>{_N})\s+(?:{_MOD}\s+){{0,4}}?(?P<w>missiles?|drones?|UAVs?)\b",
    re.IGNORECASE,
)
# "four of the missiles", "21 of the drones": a share of a number given elsewhere
_SHARE_RE = re.compile(
    rf"(?P<n>{_N})\s+of\s+(?:the|them|these|those)\s+(?P<w>missiles?|drones?|UAVs?)\b", re.I
)
_OF_WHICH_RE = re.compile(
    rf"\bof\s+which\s+{_Q}(?P<n>{_N})\s+(?:(?:were|was|had\s+been|have\s+been|been)\s+)?"
    r"(?:shot\s+down|downed|intercepted|destroyed|neutrali[sz]ed)\b",
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
_PASSIVE = re.compile(r"\b(?:were|was|been|be|are|is)\s+(?:\w+\s+)?$", re.IGNORECASE)
_JOIN = re.compile(r"\s*(?:,|,?\s*and|,?\s*as\s+well\s+as|,?\s*plus)\s*", re.IGNORECASE)
_OF_BEFORE = re.compile(rf"(?P<a>{_N})\s+(?:out\s+)?of\s+(?:the\s+)?$", re.IGNORECASE)
_OUT_OF = re.compile(r"\b(?:out\s+of|of\s+the|of)\s+$", re.IGNORECASE)
_AFTER_INTERCEPT = re.compile(
    r"^\s*(?:(?:were|was|had\s+been|have\s+been|had|have|been|all|successfully)\s+){0,3}"
    r"(?:shot\s+down|downed|intercepted|destroyed|neutrali[sz]ed)\b",
    re.IGNORECASE,
)
_CLAUSE_BREAK = re.compile(r"[;.!?]|,\s+(?:while|but|and\s+the|as)\b|\bwhile\b|\bbut\b", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"“'‘(])")

# -- background: another event, another time, a total --------------------------------------------

_MONTH_NAMES = MONTH_NAMES
_MONTHS = {name: i for i, name in enumerate(_MONTH_NAMES, start=1)}
_MONTH = "|".join(_MONTH_NAMES)
_EVENT = r"(?:strikes?|attacks?|assaults?|raids?|bombardments?|barrages?|shelling|bombings?|onslaught|ones?)"
_SPAN_WORDS = r"(?:a|an|one|two|three|four|five|six|seven|several|few|a\s+few|\d+)"
_UNITS = r"(?:hours?|days?|nights?|weeks?|months?|years?)"
# Parts of a sentence: a clause after one of these is read on its own.
_HARD_BREAK = re.compile(r";|:\s|\s[—–]\s|\s-\s")
# A clause that opens onto another event (or a count the report says is superseded: "an earlier
# count had put the number of injured at eight"), to the end of its part of the sentence.
_OTHER_EVENT = re.compile(
    rf"\b(?:(?:less|more|fewer)\s+than\s+|just\s+|only\s+|barely\s+|about\s+|some\s+|nearly\s+|"
    rf"almost\s+)?{_SPAN_WORDS}\s+{_UNITS}\s+(?:after|before)\b"
    rf"|\b(?:hours|days|weeks|months|the\s+day|the\s+night)\s+(?:after|before)\b"
    rf"|(?<!more\s)(?<!less\s)(?<!fewer\s)(?<!rather\s)\bthan\s+(?:[\w'’-]+\s+){{0,4}}?{_EVENT}\b"
    r"|\b(?:on\s+)?the\s+same\s+(?:night|day|morning|evening)\s+(?:as|that|when)\b"
    r"|\b(?:came|comes|come)\s+(?:just\s+|only\s+)?as\b"
    rf"|\b(?:followed|follows)\s+(?:[\w'’-]+\s+){{0,4}}?{_EVENT}\b"
    r"|\b(?:an?|the|its|their)\s+(?:earlier|initial|previous|old)\s+(?:count|tally|figure|estimate|toll)s?\b",
    re.IGNORECASE,
)
# "after a strike that killed two": background when the rest gives its own casualties or the
# clause names another time (see the module docstring).
_AFTER_EVENT = re.compile(rf"\b(?:after|following)\s+(?:[\w'’-]+\s+){{0,4}}?{_EVENT}\b", re.IGNORECASE)
_COMPARED = re.compile(
    r"\b(?:heavier|larger|bigger|smaller|deadlier|earlier|previous|prior|similar|separate|last|"
    r"other|another|more\s+\w+)\b",
    re.IGNORECASE,
)
# Another time (or all of them): the whole part of the sentence is background.
_OTHER_TIME = re.compile(
    r"\bthe\s+(?:previous|prior|preceding)\s+(?:night|day|evening|morning|week|weekend|month|year)\b"
    r"|\bthe\s+(?:night|day|evening|morning|week)\s+before\b"
    rf"|\b{_SPAN_WORDS}\s+{_UNITS}\s+(?:earlier|ago)\b"
    r"|\blast\s+(?:week|weekend|month|year|time|summer|winter|spring|autumn|fall|monday|tuesday|"
    r"wednesday|thursday|friday|saturday|sunday)\b"
    r"|\bearlier\s+(?:this|that|in\s+the)\s+(?:week|month|year|summer|winter|spring|autumn)\b"
    rf"|\b(?:similar|earlier|previous|prior|separate|last|other)\s+(?:[\w-]+\s+){{0,2}}?{_EVENT}"
    r"|\b(?:war|invasion|conflict)\s+(?:has|had)\s+(?:killed|claimed|left|wounded|injured)\b"
    r"|\bthis\s+(?:month|year)\b"
    r"|\bsince\s+(?!(?:the\s+)?(?:morning|midnight|dawn|evening|night|then|early\s+morning)\b|\d{1,2}[:.]?\d*\s*[ap]\.?m)",
    re.IGNORECASE,
)
_RELATIVE = re.compile(r"\b(?:which|who|whom|whose)\b", re.IGNORECASE)
# "the deadliest since July", "the most this year": a record, said of this event
_RECORD = re.compile(
    r"\b(?:\w+est|most|first|worst|biggest|largest)\b(?:\s+[\w'’-]+){0,5}\s*$", re.IGNORECASE
)
_DATE = re.compile(
    rf"\b(?:(?P<d1>\d{{1,2}})\s+(?P<m1>{_MONTH})|(?P<m2>{_MONTH})\s+(?P<d2>\d{{1,2}})(?!\d|:))"
    rf"(?:,?\s+(?P<y>(?:19|20)\d\d))?"
    rf"|\b(?i:in|since|during|of|early|late|mid-?)\s+(?P<m3>{_MONTH})(?:\s+(?P<y3>(?:19|20)\d\d))?\b(?!\s+\d)"
    r"|\b(?i:in|since|during)\s+(?P<y4>(?:19|20)\d\d)\b"
)
# A word every background pattern above contains (matched with the same folding): most
# sentences have none, and then no pattern is tried.
_BACKGROUND_HINT = re.compile(
    rf"than|after|before|follow|came|come|same|previous|prior|preceding|ago\b|earlier|initial|old|"
    rf"last|similar|separate|other|war\b|invasion|conflict|this\s|since|{_MONTH}|(?:19|20)\d\d",
    re.IGNORECASE,
)
# A report published this soon after midnight (UTC) still names the evening before as its day.
_DAY_GRACE = timedelta(hours=6)


def _days_before(sentence: str, start: int, end: int, published: datetime | None) -> Iterator[int]:
    """Where ``sentence[start:end]`` names a day, month or year before the report's day (a date
    without a year is taken in the report's year)."""
    if published is None:
        return
    ref = (published - _DAY_GRACE).date()
    for m in _DATE.finditer(sentence, start, end):
        if m.group("y4"):
            if int(m.group("y4")) < ref.year:
                yield m.start()
            continue
        year = int(m.group("y") or m.group("y3") or ref.year)
        month = _MONTHS[m.group("m1") or m.group("m2") or m.group("m3")]
        day = m.group("d1") or m.group("d2")
        if day is None:
            if (year, month) < (ref.year, ref.month):
                yield m.start()
            continue
        try:
            if date(year, month, int(day)) < ref:
                yield m.start()
        except ValueError:
            continue


def _other_time(sentence: str, start: int, end: int, published: datetime | None) -> list[int]:
    """Where ``sentence[start:end]`` names another time than the event's (not a record)."""
    hits = []
    for m in _OTHER_TIME.finditer(sentence, start, end):
        if m.group(0)[:5].lower() in ("since", "this ") and _RECORD.search(sentence, start, m.start()):
            continue
        hits.append(m.start())
    hits.extend(_days_before(sentence, start, end, published))
    return hits


def _parts(sentence: str) -> Iterator[tuple[int, int]]:
    start = 0
    for m in _HARD_BREAK.finditer(sentence):
        yield start, m.start()
        start = m.end()
    yield start, len(sentence)


def _has_casualty(sentence: str, start: int, end: int) -> bool:
    text = sentence[start:end]
    if not (_KILLED_HINT.search(text) or _INJURED_HINT.search(text)):
        return False
    return any(_count(m.group("n")) for _, rx in _CASUALTY for m in rx.finditer(text))


def background_spans(sentence: str, published: datetime | None = None) -> list[tuple[int, int]]:
    """The stretches of ``sentence`` about another event, time or a total (module docstring)."""
    spans: list[tuple[int, int]] = []
    if not _BACKGROUND_HINT.search(sentence):
        return spans
    for start, end in _parts(sentence):
        clauses: dict[int, bool] = {}  # clause start -> background
        for m in _OTHER_EVENT.finditer(sentence, start, end):
            clauses[m.start()] = True
        for m in _AFTER_EVENT.finditer(sentence, start, end):
            if any(a <= m.start() for a in clauses):
                continue  # already inside a background clause
            clauses[m.start()] = bool(_COMPARED.search(sentence, m.start(), m.end())) or _has_casualty(
                sentence, 0, m.start()
            )
        whole = False
        for t in _other_time(sentence, start, end, published):
            opened = [a for a in clauses if a <= t]
            if opened:
                clauses[max(opened)] = True  # the clause names another time
                continue
            relative = list(_RELATIVE.finditer(sentence, max(start, sentence.rfind(",", start, t) + 1), t))
            if relative:  # "a man who was fired last week": that clause alone, to its comma
                comma = sentence.find(",", t, end)
                spans.append((relative[-1].start(), end if comma == -1 else comma))
            else:
                whole = True  # another time outside any clause: the whole part
        if whole:
            spans.append((start, end))
        elif any(clauses.values()):
            spans.append((min(a for a, sure in clauses.items() if sure), end))
    return spans


# -- who says it ---------------------------------------------------------------------------------

_ROLES: tuple[tuple[str, str], ...] = (
    (
        r"(?:city|(?-i:[A-Z])[\w-]+['’]s)(?:['’]s)?\s+military\s+administration",
        "city military administration",
    ),
    (r"(?:regional|oblast)(?:['’]s)?\s+military\s+administration", "regional military administration"),
    (r"(?:regional|oblast)\s+(?:state\s+)?administration", "regional administration"),
    (r"city\s+(?:state\s+)?administration", "city administration"),
    (r"air\s+force", "air force"),
    (r"(?:defen[cs]e\s+ministry|ministry\s+of\s+defen[cs]e|defen[cs]e\s+department)", "defence ministry"),
    (r"general\s+staff", "general staff"),
    (r"(?:state\s+)?emergency\s+services?|\b(?-i:SES)\b", "State Emergency Service"),
    (r"(?:health\s+ministry|ministry\s+of\s+health)", "health ministry"),
    (r"(?:interior\s+ministry|ministry\s+of\s+(?:the\s+)?interior)", "interior ministry"),
    (r"(?:regional\s+|military\s+)?governor", "governor"),
    (r"mayor", "mayor"),
    (r"police", "police"),
    (r"prosecutor(?:['’]s\s+office|s)?", "prosecutors"),
    (r"kremlin", "Kremlin"),
    (r"military", "military"),
    (r"(?:city|municipal)\s+(?:officials|authorities)", "city officials"),
    (r"(?:regional|local|oblast)\s+(?:officials|authorities)", "regional officials"),
    (r"officials|authorities", "officials"),
)
_ROLE_RE = re.compile("|".join(rf"(?P<r{i}>\b(?:{p})\b)" for i, (p, _) in enumerate(_ROLES)), re.IGNORECASE)
_SAYS = (
    r"(?:said|says|say|reported|reports|announced|confirmed|stated|wrote|posted|told|added|"
    r"estimated|put|counted|gave|recorded)"
)
# "<who> said", "<who> had earlier put", "Mayor Vitali Klitschko said", "<who>, which said"
_SAYS_AFTER = re.compile(
    rf"(?:\s+[A-Z][\w'’-]+){{0,3}}(?:,?\s+(?:which|who))?\s+(?:(?:has|had|have|also|earlier|later|"
    rf"previously|separately|then|on\s+\w+)\s+){{0,3}}{_SAYS}\b"
)
# "according to <who>", "said <who>", with a few words between ("according to preliminary
# information from the Kyiv City ...")
_SAYS_BEFORE = re.compile(
    r"\b(?:according\s+to|citing|cited|reported\s+by)\s+(?:[\w'’-]+\s+){0,6}$"
    r"|\b(?:said|says)\s+(?:(?:a|an|the)\s+)?(?:[\w'’-]+\s+){0,2}$",
    re.IGNORECASE,
)
# in every sentence that attributes (the verbs of _SAYS_AFTER and _SAYS_BEFORE)
_SAYS_HINT = re.compile(
    r"said|says|\bsay|report|announc|confirm|stated|wrote|posted|told|added|estimated|\bput|count|gave|"
    r"recorded|according|citing|cited",
    re.IGNORECASE,
)
_RUSSIAN = re.compile(r"\b(?:Russia['’]s|Russian|Moscow['’]s)\s+(?:[\w-]+\s+)?$", re.IGNORECASE)
_PRONOUN_SAYS = re.compile(
    rf"\b(?:it|he|she|they|the\s+(?:agency|service|administration|ministry|force))\s+{_SAYS}\b", re.IGNORECASE
)
_CLAIM_BREAK = re.compile(r";|,?\s+(?:while|whereas|but)\s+", re.IGNORECASE)


def _claimants(sentence: str) -> list[tuple[int, str]]:
    """(position, normalised name) of each source the sentence says gives its figures."""
    found: list[tuple[int, str]] = []
    if not _SAYS_HINT.search(sentence):
        return found
    for m in _ROLE_RE.finditer(sentence):
        before = sentence[max(0, m.start() - 80) : m.start()]
        if not (_SAYS_AFTER.match(sentence, m.end()) or _SAYS_BEFORE.search(before)):
            continue
        label = next(_ROLES[int(k[1:])][1] for k, v in m.groupdict().items() if v is not None)
        if _RUSSIAN.search(before[-30:]) and label != "Kremlin":
            label = f"Russian {label}"
        found.append((m.start(), label))
    return found


def _inherited(sentences: list[_Sentence], i: int) -> str | None:
    """The last source named before sentence ``i`` in its paragraph, for "it said" (only
    looked for when that sentence says so)."""
    if not _PRONOUN_SAYS.search(sentences[i].text):
        return None
    for s in reversed(sentences[:i]):
        if s.paragraph != sentences[i].paragraph:
            return None
        claimants = _claimants(s.text)
        if claimants:
            return claimants[-1][1]
    return None


def _rank(claim: str | None) -> int:
    """A named source (air force) says more than "officials", which says more than nothing."""
    return 0 if claim is None else 1 if claim.split()[-1] == "officials" else 2


def _claim_for(
    pos: int, sentence: str, claimants: list[tuple[int, str]], inherited: str | None
) -> str | None:
    """The source of the figure at ``pos``: the one named in its clause, else the nearest one in
    the sentence, else the paragraph's last source when the sentence says "it said"."""
    if claimants:
        bounds = [0, *(m.end() for m in _CLAIM_BREAK.finditer(sentence)), len(sentence) + 1]
        for a, b in itertools.pairwise(bounds):
            if a <= pos < b:
                own = [c for c in claimants if a <= c[0] < b]
                if own:
                    return min(own, key=lambda c: abs(c[0] - pos))[1]
        return min(claimants, key=lambda c: abs(c[0] - pos))[1]
    if inherited is not None and _PRONOUN_SAYS.search(sentence):
        return inherited
    return None


# -- places --------------------------------------------------------------------------------------

_PLACE_STOP = frozenset(
    (
        *(name.lower() for name in (*MONTH_NAMES, *WEEKDAY_NAMES)),
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
# Competitions are named like places ("in Conference League"); none is a place hit.
_COMPETITION = frozenset(
    ("league", "cup", "championship", "championships", "trophy", "open", "games", "olympics", "tournament")
)
_QUALIFIERS = frozenset(("district", "region", "oblast", "province", "county", "raion"))
_UP = r"[A-Z\u00c0-\u00de\u0400-\u042f\u0404\u0406\u0407\u0490]"
_PNAME = rf"{_UP}[\w'’-]*[a-z\u00df-\u00ff\u0430-\u045f\u0454\u0456\u0457\u0491](?:[\s-]{_UP}[\w'’-]*)?"
_KINDS = r"(?i:district|region|oblast|province|county|raion)"
_DISTRICT_RE = re.compile(rf"(?<![\w-])(?P<name>{_PNAME})\s+(?P<kind>{_KINDS})\b")
_CITY_OF_RE = re.compile(rf"\b(?:city|town|village|port|capital)\s+of\s+(?P<name>{_PNAME})")
_IN_RE = re.compile(
    rf"(?:^In|(?<=[.!?]\s)In|\b(?:in|near|outside|across|hit|hitting|hits|struck|striking|strikes|"
    rf"targeted|targeting|attacked|attacking|shelled|shelling))\s+"
    rf"(?P<name>{_PNAME})(?![\w'’-]*\s+{_UP})"
)
_ATTACK_ON_RE = re.compile(
    rf"\b(?:attacks?|strikes?|assault|raids?|shelling|bombardment|"
    rf"bombing)\s+(?:on|of|against)\s+(?P<name>{_PNAME})"
    rf"(?![\w'’-]*\s+{_UP})"
)
# "the Holosiivskyi, Obolonskyi and Dniprovskyi districts": each name with the qualifier
_DISTRICTS_RE = re.compile(
    rf"(?<![\w-])(?P<names>(?:{_PNAME},\s+)*{_PNAME},?\s+and\s+{_PNAME})\s+(?P<kind>{_KINDS})s\b"
)
_LIST_NAME = re.compile(rf"{_PNAME}")
_DATELINE_RE = re.compile(
    rf"^\s*(?P<name>{_UP}[A-Z\u0400-\u042f'’ -]{{2,30}}?)"
    r"(?:,\s*[A-Z][\w ]{0,20})?\s*(?:,|\()\s*(?:\w+\.?\s+\d{1,2}|"
    r"\d{1,2}\s+\w+|Reuters|AP|AFP)"
)
# "(launched|fired|a driver) from [the] [Russia's] <name>": where it came from, not where it hit
_FROM_BEFORE = re.compile(r"\bfrom\s+(?:the\s+)?$", re.IGNORECASE)
# a paragraph about one district: its counts are that district's share of the event's
_LOCAL_HEADING = re.compile(rf"^\s*{_PNAME}\s+{_KINDS}\s*[:.](?:\s|$)")


def _count(token: str) -> int | None:
    t = token.lower().replace(",", "")
    if t.isdigit():
        return int(t)
    return _NUMBER_WORDS.get(t)


class _Sentence(NamedTuple):
    start: int  # offset in the whole text (title, newline, body)
    text: str
    paragraph: int
    local: bool  # in a paragraph headed by one district


def _sentences(full: str) -> list[_Sentence]:
    out: list[_Sentence] = []
    offset = 0
    for number, line in enumerate(full.split("\n")):
        local = bool(_LOCAL_HEADING.match(line))
        pos = 0
        for piece in _SENTENCE.split(line):
            at = line.find(piece, pos)
            pos = at + len(piece)
            if piece.strip():
                out.append(_Sentence(offset + at, piece, number, local))
        offset += len(line) + 1
    return out


def _full(text: str, title: str | None) -> str:
    return (title + "\n" if title else "") + text


def _in(pos: int, spans: list[tuple[int, int]]) -> bool:
    return any(a <= pos < b for a, b in spans)


def _weapon_figures(sentence: str) -> list[tuple[int, str, str]]:
    """Launched and intercepted counts of one sentence, each with the offset of its number.

    Consecutive "<n> missiles and <n> drones" mentions form one group; a group preceded by an
    active interception verb (the last verb before it wins over a launch verb), or followed by
    "were shot down", is intercepted, and "<a> of <group>" after an interception verb makes <a>
    intercepted and the group's first item launched ("destroyed four of the six missiles and 55
    drones": 6 missiles launched, 59 intercepted). "<n> of the drones" and "of which <n> were
    shot down" are intercepted shares.
    """
    out: list[tuple[int, str, str]] = []
    bounds = [0, *(m.end() for m in _CLAUSE_BREAK.finditer(sentence)), len(sentence)]
    for c0, c1 in itertools.pairwise(bounds):
        clause = sentence[c0:c1]
        items = list(_WEAPON_RE.finditer(clause))
        groups: list[list[re.Match[str]]] = []
        for m in items:
            if groups and _JOIN.fullmatch(clause[groups[-1][-1].end() : m.start()]):
                groups[-1].append(m)
            else:
                groups.append([m])
        intercepted = 0
        first: int | None = None

        def icpt(n: int, at: int) -> None:
            nonlocal intercepted, first
            intercepted += n
            first = at if first is None else min(first, at)

        def icpt_verb(before: str, passive: bool = False) -> bool:
            """Whether the last verb before is an interception (``passive``: in either voice)."""
            last_verb = None
            for v in _VERB.finditer(before):
                last_verb = v
            return (
                last_verb is not None
                and last_verb.group("icpt") is not None
                and (passive or not _PASSIVE.search(before[: last_verb.start()]))
            )

        for group in groups:
            before = clause[: group[0].start()]
            after = clause[group[-1].end() :]
            by_verb = icpt_verb(before)
            of = _OF_BEFORE.search(before)
            counts = [(m, _count(m.group("n"))) for m in group]
            launched = [False] * len(group)
            if of is not None:
                a = _count(of.group("a"))
                if a is not None and by_verb:
                    icpt(a, c0 + of.start("a"))
                launched[0] = True
                is_intercepted = by_verb
            elif _OUT_OF.search(before):
                launched = [True] * len(group)
                is_intercepted = False
            else:
                is_intercepted = by_verb or bool(_AFTER_INTERCEPT.match(after))
            for (m, n), base in zip(counts, launched, strict=True):
                if n is None:
                    continue
                if is_intercepted and not base:
                    icpt(n, c0 + m.start("n"))
                else:
                    kind = "missiles" if m.group("w").lower().startswith("missile") else "drones"
                    out.append((c0 + m.start("n"), kind, str(n)))
        for m in _SHARE_RE.finditer(clause):
            n = _count(m.group("n"))
            if n is not None and icpt_verb(clause[: m.start()], passive=True):
                icpt(n, c0 + m.start("n"))
        for m in _OF_WHICH_RE.finditer(clause):
            n = _count(m.group("n"))
            if n is not None:
                icpt(n, c0 + m.start("n"))
        if intercepted and first is not None:
            out.append((first, "intercepted", str(intercepted)))
    return out


def _tidy(name: str) -> str:
    name = name.strip(" '’-")
    if name.isupper():
        name = "-".join(p.capitalize() for p in name.title().split("-"))
    return re.sub(r"['’]s$", "", name)


def _not_hit(part: str, start: int, name: str) -> bool:
    """A name that is no place hit: a competition, or where something came from."""
    return name.split()[-1].lower() in _COMPETITION or bool(
        _FROM_BEFORE.search(part[max(0, start - 20) : start])
    )


def _in_background(
    pos: int, sentences: list[_Sentence], published: datetime | None, cache: dict[int, Any]
) -> bool:
    """Whether the text at ``pos`` lies in a background stretch of its sentence."""
    i = bisect.bisect_right(sentences, pos, key=lambda s: s.start) - 1
    if i < 0:
        return False
    if i not in cache:
        s = sentences[i]
        cache[i] = [(s.start + a, s.start + b) for a, b in background_spans(s.text, published)]
    return _in(pos, cache[i])


def extract_places(text: str, title: str | None = None, published: datetime | None = None) -> list[str]:
    """Places named as hit or as where it happened, in order of first mention; not those in
    background clauses (``published``: the report's time, to tell earlier dates)."""
    return _places(text, title, published, None)


def _places(
    text: str, title: str | None, published: datetime | None, sentences: list[_Sentence] | None
) -> list[str]:
    full = _full(text, title)
    if sentences is None:
        sentences = _sentences(full)
    cache: dict[int, Any] = {}
    found: list[tuple[int, str]] = []
    for at, part in ((0, title), (len(full) - len(text), text)):
        m = _DATELINE_RE.match(part or "")
        if m and len(m.group("name").split()) <= 3:
            found.append((at + m.start("name"), _tidy(m.group("name"))))
    offset = 0
    for part in full.split("\n"):
        for m in _DISTRICT_RE.finditer(part):
            name = _tidy(m.group("name"))
            if name.split()[-1].lower() in _QUALIFIERS:  # "Kharkiv Oblast region"
                continue
            if name.split()[0].lower() not in _PLACE_STOP and not _not_hit(part, m.start(), name):
                found.append((offset + m.start(), f"{name} {m.group('kind').lower()}"))
        listed: list[tuple[int, int]] = []
        for m in _DISTRICTS_RE.finditer(part):
            listed.append(m.span())
            for n in _LIST_NAME.finditer(part, m.start("names"), m.end("names")):
                name = _tidy(n.group(0))
                if name.split()[0].lower() not in _PLACE_STOP and not _not_hit(part, m.start(), name):
                    found.append((offset + n.start(), f"{name} {m.group('kind').lower()}"))
        for rx in (_CITY_OF_RE, _IN_RE, _ATTACK_ON_RE):
            for m in rx.finditer(part):
                name = _tidy(m.group("name"))
                words = name.split()
                if not words or words[0].lower() in _PLACE_STOP or (words[-1].lower() in _QUALIFIERS):
                    continue
                if _not_hit(part, m.start("name"), name) or _in(m.start("name"), listed):
                    continue
                tail = part[m.end("name") : m.end("name") + 20].lower()
                if re.match(r"\s+(?:district|region|oblast|province|county|raion)\b", tail):
                    continue  # counted with its qualifier above
                found.append((offset + m.start("name"), name))
        offset += len(part) + 1
    seen: set[str] = set()
    out: list[str] = []
    for pos, name in sorted(found, key=lambda x: x[0]):
        if name not in seen and not _in_background(pos, sentences, published, cache):
            seen.add(name)
            out.append(name)
    return out


def extract_claims(
    text: str, title: str | None = None, published: datetime | None = None, language: str | None = None
) -> list[Claim]:
    """The report's figures with who it says gives each: counts as decimal strings, kinds from
    FIGURE_KINDS, places last. A (kind, value) is given once, with the first source named for it.
    ``published`` (the report's time) lets a date before the report's day mark background.

    The rules read English: a report in another ``language`` gives none, or its words would be
    read as English ("in Brand", a German fire, would be a place called Brand)."""
    if language and language.strip().lower().replace("_", "-").split("-")[0] not in ("en", "und"):
        return []
    hits: list[tuple[int, str, str, str | None]] = []
    full = _full(text, title)
    sentences = _sentences(full)
    for i, s in enumerate(sentences):
        sentence = s.text
        found: list[tuple[int, str, str]] = []
        for kind, patterns, hint in (
            ("killed", _KILLED_RE, _KILLED_HINT),
            ("injured", _INJURED_RE, _INJURED_HINT),
        ):
            if s.local or not hint.search(sentence):
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
                    if _LISTED.search(sentence, 0, span[0]):
                        continue  # "two women and one man died": one part of a total
                    taken.append(span)
                    found.append((span[0], kind, str(n)))
        if not s.local and _WEAPON_HINT.search(sentence):
            found.extend(_weapon_figures(sentence))
        if found:
            skip = background_spans(sentence, published)
            claimants = _claimants(sentence)
            inherited = None if claimants else _inherited(sentences, i)
            for pos, kind, value in found:
                if not _in(pos, skip):
                    claim = _claim_for(pos, sentence, claimants, inherited)
                    hits.append((s.start + pos, kind, value, claim))
    hits.sort(key=lambda h: h[0])
    out: dict[tuple[str, str], str | None] = {}
    for _, kind, value, claim in hits:
        if _rank(claim) > _rank(out.get((kind, value))):
            out[(kind, value)] = claim
        else:
            out.setdefault((kind, value), None)
    for place in _places(text, title, published, sentences):
        out.setdefault(("place", place), None)
    return [Claim(kind, value, claim) for (kind, value), claim in out.items()]


def extract_figures(
    text: str, title: str | None = None, published: datetime | None = None, language: str | None = None
) -> list[tuple[str, str]]:
    """(kind, value) pairs, kinds from FIGURE_KINDS, counts as decimal strings
    (:func:`extract_claims` without who gives them)."""
    return [(c.kind, c.value) for c in extract_claims(text, title, published, language)]
