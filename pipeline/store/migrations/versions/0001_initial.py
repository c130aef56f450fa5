"""initial store: frontier, raw pages, articles, drops, stories, figures

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "feed_state",
        sa.Column("url", sa.String(2048), primary_key=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("etag", sa.String(512)),
        sa.Column("last_modified", sa.String(128)),
    )
    op.create_table(
        "urls",
        sa.Column("url", sa.String(2048), primary_key=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("discovered_at", TS, nullable=False),
        sa.Column("hint_title", sa.Text()),
        sa.Column("hint_published_at", TS),
        sa.Column("lastmod", TS),
        sa.Column("fingerprint", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text()),
    )
    op.create_index("ix_urls_status", "urls", ["status"])
    op.create_table(
        "pages",
        sa.Column("url", sa.String(2048), primary_key=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("final_url", sa.String(2048), nullable=False),
        sa.Column("fetched_at", TS, nullable=False),
        sa.Column("content_type", sa.String(128)),
        sa.Column("charset", sa.String(64)),
        sa.Column("etag", sa.String(512)),
        sa.Column("last_modified", sa.String(128)),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("body_gz", sa.LargeBinary(), nullable=False),
        sa.Column("cleaned_sha256", sa.String(64)),
    )
    op.create_table(
        "articles",
        sa.Column("article_id", sa.String(32), primary_key=True),
        sa.Column("url", sa.String(2048), nullable=False, unique=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("title", sa.Text()),
        sa.Column("authors", sa.Text(), nullable=False),
        sa.Column("published_at", TS),
        sa.Column("language", sa.String(16)),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("fetched_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("duplicate_of", sa.String(32)),
        sa.Column("copy_of", sa.String(32)),
        sa.Column("story_id", sa.String(32)),
        sa.Column("dedup_sig", sa.String(64)),
    )
    op.create_index("ix_articles_content_hash", "articles", ["content_hash"])
    op.create_index("ix_articles_story_id", "articles", ["story_id"])
    op.create_index("ix_articles_published_at", "articles", ["published_at"])
    op.create_table(
        "drops",
        sa.Column("url", sa.String(2048), primary_key=True),
        sa.Column("stage", sa.String(16), primary_key=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_table(
        "stories",
        sa.Column("story_id", sa.String(32), primary_key=True),
        sa.Column("title", sa.Text()),
        sa.Column("summary", sa.Text()),
        sa.Column("best_article_id", sa.String(32)),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("last_updated", TS, nullable=False),
        sa.Column("article_count", sa.Integer(), nullable=False),
    )
    op.create_index("ix_stories_last_updated", "stories", ["last_updated"])
    op.create_table(
        "figures",
        sa.Column("article_id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("value", sa.String(256), primary_key=True),
        sa.Column("story_id", sa.String(32), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("reported_at", TS),
    )
    op.create_index("ix_figures_story_id", "figures", ["story_id"])


def downgrade() -> None:
    for table in ("figures", "stories", "drops", "articles", "pages", "urls", "feed_state"):
        op.drop_table(table)
