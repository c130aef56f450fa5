from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from pipeline.errors import ConfigError
from pipeline.timeutil import iso, parse_since, utc


def test_one_instant_parses_the_same_however_it_is_written() -> None:
    spellings = [
        "2026-11-19T02:00:00Z",
        "2026-11-19T02:00:00+00:00",
        "2026-11-19T04:00:00+02:00",
        "2026-11-18T21:00:00-05:00",
        "2026-11-19T02:00:00",
    ]
    parsed = {parse_since(s) for s in spellings}
    assert parsed == {datetime(2026, 11, 19, 2, tzinfo=UTC)}


def test_a_bad_date_names_the_flag() -> None:
    with pytest.raises(ConfigError, match="--since: not an ISO date"):
        parse_since("yesterday")
    assert parse_since("  ") is None and parse_since(None) is None


def test_utc_and_iso_round_trip() -> None:
    kyiv = timezone(timedelta(hours=2))
    aware = datetime(2026, 11, 19, 1, 30, tzinfo=kyiv)
    assert iso(aware) == "2026-11-18T23:30:00Z"
    assert utc(datetime(2026, 11, 18, 23, 30)) == aware
    assert utc(None) is None and iso(None) is None


def test_extreme_years_are_a_clear_error_not_an_overflow() -> None:
    with pytest.raises(ConfigError, match="out of range"):
        parse_since("0001-01-01T00:00:00+05:00")
