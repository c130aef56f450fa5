"""The list page's filters (date, place, outlet, text), parsed for the store's story-list query.

Filters arrive as free text from a form; they are parsed here, never trusted: a date that does
not parse is reported back to the reader and ignored, and text is matched as a literal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from pipeline.store.storylist import filter_choices, filtered_story_ids

if TYPE_CHECKING:
    from sqlalchemy import Engine

MAX_TEXT = 200  # characters of a filter value that are used


@dataclass(frozen=True)
class Filters:
    text: str = ""
    outlet: str = ""
    place: str = ""
    date_from: date | None = None
    date_to: date | None = None
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def active(self) -> bool:
        return bool(self.text or self.outlet or self.place or self.date_from or self.date_to)

    def query(self) -> dict[str, str]:
        """The filters as query parameters (for links that keep them)."""
        out = {"q": self.text, "outlet": self.outlet, "place": self.place}
        out["from"] = self.date_from.isoformat() if self.date_from else ""
        out["to"] = self.date_to.isoformat() if self.date_to else ""
        return {k: v for k, v in out.items() if v}


def _date(value: str | None, name: str, problems: list[str]) -> date | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        problems.append(f"{name}: {value[:40]!r} is not a date (YYYY-MM-DD); ignored")
        return None


def parse_filters(
    text: str | None = None,
    outlet: str | None = None,
    place: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
) -> Filters:
    problems: list[str] = []
    start = _date(date_from, "from", problems)
    end = _date(date_to, "to", problems)
    if start and end and end < start:
        problems.append("to is before from; swapped")
        start, end = end, start
    return Filters(
        text=" ".join((text or "").split())[:MAX_TEXT],
        outlet=(outlet or "").strip()[:64],
        place=" ".join((place or "").split())[:MAX_TEXT],
        date_from=start,
        date_to=end,
        problems=tuple(problems),
    )


def story_ids(engine: Engine, filters: Filters, limit: int, offset: int = 0) -> tuple[list[str], bool]:
    """Ids of the stories matching ``filters``, most recently updated first, and whether more
    follow (the query is the store's: :func:`pipeline.store.storylist.filtered_story_ids`)."""
    return filtered_story_ids(
        engine,
        text=filters.text,
        outlet=filters.outlet,
        place=filters.place,
        date_from=filters.date_from,
        date_to=filters.date_to,
        limit=limit,
        offset=offset,
    )


def choices(engine: Engine) -> tuple[list[str], list[str]]:
    """The outlets and places a reader can pick from (places: the most reported 200)."""
    return filter_choices(engine)
