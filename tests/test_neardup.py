"""Near-duplicates: wire copies are found, their original is the earliest, order never matters."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.cluster.core import Doc
from pipeline.cluster.neardup import copy_groups, find_copies, shingles, signatures

T0 = datetime(2024, 3, 13, 5, 0, tzinfo=UTC)

WIRE = Doc(
    "wire-1",
    title="Russian missile and drone attack on Kyiv kills two, injures 14",
    text=(
        "KYIV, March 13 (Reuters) - Russia launched a massive missile and drone attack on Kyiv "
        "overnight, killing at least two people and injuring 14, Mayor Vitali Klitschko said "
        "on Wednesday. Debris from downed missiles fell in the Shevchenkivskyi and "
        "Solomianskyi districts, damaging a school and several apartment blocks. Ukraine's air "
        "force said Russia launched 12 ballistic and cruise missiles and 48 drones, and air "
        "defence shot down 9 missiles and 41 drones. Emergency crews were still searching the "
        "rubble of a five-storey building in the Shevchenkivskyi district in the morning."
    ),
    published_at=T0,
    source="wire",
)
# a syndicated copy: new headline, dateline dropped, a byline added, an hour later
SYNDICATED = replace(
    WIRE,
    id="paper-7",
    title="Two dead as Russia pounds Kyiv",
    text=WIRE.text.replace("KYIV, March 13 (Reuters) - ", "")
    + " (Reporting by Jane Doe; Editing by John Roe)",
    published_at=T0 + timedelta(hours=1),
    source="paper",
)
# a lightly edited copy: one sentence cut, one word changed
EDITED = replace(
    WIRE,
    id="site-3",
    title=None,
    text=WIRE.text.replace(
        " Emergency crews were still searching the rubble of a five-storey "
        "building in the Shevchenkivskyi district in the morning.",
        "",
    ).replace("massive", "large"),
    published_at=T0 + timedelta(hours=3),
    source="site",
)
# the same event written by another outlet: not a copy
OWN_REPORT = Doc(
    "national-a",
    title="Two killed, 16 injured as Russia pounds Kyiv with missiles overnight",
    text=(
        "At least two people were killed and 16 wounded in Kyiv after Russian forces fired "
        "ballistic missiles and Shahed drones at the capital last night, the city military "
        "administration said. Klitschko said a fire broke out in a residential building in the "
        "Shevchenkivskyi district after debris hit it."
    ),
    published_at=T0 + timedelta(hours=2),
    source="national",
)
OTHER = Doc(
    "other",
    text=(
        "The central bank kept its key rate at 13 percent on Friday, citing "
        "slowing inflation and a stable hryvnia exchange rate."
    ),
    published_at=T0,
)
DOCS = [WIRE, SYNDICATED, EDITED, OWN_REPORT, OTHER]


def test_wire_copies_found_and_original_is_earliest() -> None:
    assert find_copies(DOCS) == {"paper-7": "wire-1", "site-3": "wire-1"}


def test_original_is_earliest_not_smallest_id() -> None:
    early_copy = replace(SYNDICATED, published_at=T0 - timedelta(minutes=5))
    assert find_copies([WIRE, early_copy]) == {"wire-1": "paper-7"}


def test_ties_and_undated_go_by_id() -> None:
    a = replace(WIRE, id="b-doc")
    b = replace(SYNDICATED, id="a-doc", published_at=T0)
    assert find_copies([a, b]) == {"b-doc": "a-doc"}
    undated = replace(SYNDICATED, id="0-undated", published_at=None)
    assert find_copies([WIRE, undated]) == {"0-undated": "wire-1"}


def test_truncated_copy_is_a_copy() -> None:
    short = replace(WIRE, id="brief", text=WIRE.text[:420], published_at=T0 + timedelta(hours=5))
    assert find_copies([WIRE, short]) == {"brief": "wire-1"}


def test_no_copies_among_distinct_reports() -> None:
    assert find_copies([WIRE, OWN_REPORT, OTHER]) == {}
    assert find_copies([]) == {}
    assert find_copies([replace(OTHER, text="")]) == {}


@settings(max_examples=25, deadline=None)
@given(st.permutations(DOCS))
def test_order_independent(docs: list[Doc]) -> None:
    assert find_copies(docs) == {"paper-7": "wire-1", "site-3": "wire-1"}
    assert copy_groups(docs) == [["wire-1", "paper-7", "site-3"]]


def test_shingles_are_stable_and_minhash_estimates_jaccard() -> None:
    a, b = shingles(WIRE.text), shingles(EDITED.text)
    assert np.array_equal(a, shingles(WIRE.text))  # no per-process hash salt
    jaccard = len(np.intersect1d(a, b)) / len(np.union1d(a, b))
    sig = signatures([a, b])
    assert abs(float((sig[0] == sig[1]).mean()) - jaccard) < 0.15
