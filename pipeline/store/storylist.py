"""The web list page's story query: filtered story ids and the outlets and places to pick from.

The page parses its filters (pipeline.serve.web.filters); the SQL that applies them lives here,
with the rest of the store's SQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Engine, func, or_, select

from pipeline.store.schema import articles, figures, stories


def filtered_story_ids(
    engine: Engine,
    *,
    text: str = "",
    outlet: str = "",
    place: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
    limit: int,
    offset: int = 0,
) -> tuple[list[str], bool]:
    """Ids of the stories matching the filters, most recently updated first, and whether more
    follow. A story matches the dates when it was reported within them (first seen to last
    updated overlaps the range); ``text`` and ``place`` match as literals, case-insensitively."""
    query = select(stories.c.story_id).order_by(stories.c.last_updated.desc(), stories.c.story_id)
    if date_from:
        query = query.where(stories.c.last_updated >= datetime.combine(date_from, time(), UTC))
    if date_to:
        end = datetime.combine(date_to + timedelta(days=1), time(), UTC)
        query = query.where(stories.c.first_seen < end)
    if outlet:
        query = query.where(
            stories.c.story_id.in_(
                select(articles.c.story_id).where(
                    articles.c.source == outlet, articles.c.story_id.is_not(None)
                )
            )
        )
    if place:
        query = query.where(
            stories.c.story_id.in_(
                select(figures.c.story_id).where(
                    figures.c.kind == "place",
                    func.lower(figures.c.value).contains(place.lower(), autoescape=True),
                )
            )
        )
    if text:
        needle = text.lower()
        query = query.where(
            or_(
                func.lower(stories.c.title).contains(needle, autoescape=True),
                func.lower(stories.c.summary).contains(needle, autoescape=True),
            )
        )
    with engine.connect() as conn:
        ids = list(conn.execute(query.limit(limit + 1).offset(offset)).scalars())
    return ids[:limit], len(ids) > limit


def filter_choices(engine: Engine) -> tuple[list[str], list[str]]:
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
