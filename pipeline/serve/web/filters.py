"""The list page's filters (date, place, outlet, text) as one read query over the store's tables.

Filters arrive as free text from a form; they are parsed here, never trusted: a date that does
not parse is reported back to the reader and ignored, and text is matched as a literal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Engine, func, or_, select

from pipeline.store.schema import articles, figures, stories

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
    follow. A story matches the dates when it was reported within them (first seen to last
    updated overlaps the range)."""
    query = select(stories.c.story_id).order_by(stories.c.last_updated.desc(), stories.c.story_id)
    if filters.date_from:
        query = query.where(stories.c.last_updated >= datetime.combine(filters.date_from, time(), UTC))
    if filters.date_to:
        end = datetime.combine(filters.date_to + timedelta(days=1), time(), UTC)
        query = query.where(stories.c.first_seen < end)
    if filters.outlet:
        query = query.where(
            stories.c.story_id.in_(
                select(articles.c.story_id).where(
                    articles.c.source == filters.outlet, articles.c.story_id.is_not(None)
                )
            )
        )
    if filters.place:
        query = query.where(
            stories.c.story_id.in_(
                select(figures.c.story_id).where(
                    figures.c.kind == "place",
                    func.lower(figures.c.value).contains(filters.place.lower(), autoescape=True),
                )
            )
        )
    if filters.text:
        needle = filters.text.lower()
        query = query.where(
            or_(
                func.lower(stories.c.title).contains(needle, autoescape=True),
                func.lower(stories.c.summary).contains(needle, autoescape=True),
            )
        )
    with engine.connect() as conn:
        ids = list(conn.execute(query.limit(limit + 1).offset(offset)).scalars())
    return ids[:limit], len(ids) > limit


def choices(engine: Engine) -> tuple[list[str], list[str]]:
    """The outlets and places a reader can pick from (places: the most reported 200)."""
    with engine.connect() as conn:
        outlets = list(
            conn.execute(
                select(articles.c.source)
                .where(articles.c.story_id.is_not(None))
                .distinct()
                .order_by(articles.c.source)
            ).scalars()
        )
        places = list(
            conn.execute(
                select(figures.c.value)
                .where(figures.c.kind == "place")
                .group_by(figures.c.value)
                .order_by(func.count().desc(), figures.c.value)
                .limit(200)
            ).scalars()
        )
    return outlets, sorted(places)
