"""The v1 read views (migration 0002, docs/store.md) as SQLAlchemy selectables.

Every read command reads through them, so the reader role from ``newsagg db grant-reader``, which
may select these views and nothing else, can run ``stories``, ``export`` and ``serve``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    DateTime,
    Integer,
    String,
    Text,
    column,
    literal_column,
    table,
)

TS = DateTime(timezone=True)

v1_stories = table(
    "newsagg_v1_stories",
    column("story_id", String),
    column("title", Text),
    column("summary", Text),
    column("best_article_id", String),
    column("first_seen", TS),
    column("last_updated", TS),
    column("article_count", Integer),
    column("outlet_count", Integer),
    column("change_seq", BigInteger),
    column("evidence", Text),  # JSON; added after v1 was first published (a column at the end)
)

v1_articles = table(
    "newsagg_v1_articles",
    column("article_id", String),
    column("url", String),
    column("source", String),
    column("title", Text),
    column("authors", Text),
    column("published_at", TS),
    column("language", String),
    column("text", Text),
    column("content_hash", String),
    column("fetched_at", TS),
    column("updated_at", TS),
    column("story_id", String),
    column("copy_of", String),  # copy_of, else duplicate_of
    column("change_seq", BigInteger),
)

# ``live_blog`` is the last column of newsagg_v1_articles and newsagg_v1_story_articles since
# migration 0008. It stays out of ``v1_articles.c`` so that reading the whole view (the article
# export) still works on a store its owner has not migrated yet; reads name it where they want it,
# after looking that the view has it.
v1_articles_live_blog: ColumnElement[bool] = literal_column(f"{v1_articles.name}.live_blog", Boolean)

v1_story_figures = table(
    "newsagg_v1_story_figures",
    column("story_id", String),
    column("article_id", String),
    column("kind", String),
    column("value", String),
    column("number", BigInteger),
    column("source", String),
    column("url", String),
    column("reported_at", TS),
    column("change_seq", BigInteger),
    column("source_claim", String),  # added at the end by migration 0007
)

v1_changes = table(
    "newsagg_v1_changes",
    column("change_seq", BigInteger),
    column("kind", String),
    column("id", String),
    column("op", String),
    column("changed_at", TS),
)

__all__ = ["v1_articles", "v1_articles_live_blog", "v1_changes", "v1_stories", "v1_story_figures"]
