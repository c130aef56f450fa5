"""source health: one row per source per run

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-06

``pipeline.health`` compares each source's run with its own history (discovered, fetched,
cleaned, drops by reason, HTTP status mix, median body length, wall-like pages) to flag outlets
that broke without failing: a bot wall answering 200, a selector that matches nothing, a feed
that stopped yielding.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
INDEXES = (
    ("ix_urls_discovered_at", "urls", "discovered_at"),
    ("ix_pages_fetched_at", "pages", "fetched_at"),
    ("ix_articles_updated_at", "articles", "updated_at"),
    ("ix_drops_at", "drops", "at"),
)


def upgrade() -> None:
    op.create_table(
        "source_runs",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=False),
        sa.Column("discovered", sa.Integer(), nullable=False),
        sa.Column("fetched", sa.Integer(), nullable=False),
        sa.Column("cleaned", sa.Integer(), nullable=False),
        sa.Column("dropped", sa.Integer(), nullable=False),
        sa.Column("no_body", sa.Integer(), nullable=False),
        sa.Column("drop_reasons", sa.String(4000), nullable=False),
        sa.Column("statuses", sa.String(1000), nullable=False),
        sa.Column("median_body", sa.Integer()),
        sa.Column("last_article_at", TS),
        sa.Column("challenge_pages", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("flags", sa.String(4000), nullable=False),
    )
    op.create_index("ix_source_runs_source_started", "source_runs", ["source", "started_at"])
    # what one run wrote, read by time: the summary, the health figures and the crawl's progress
    for name, table, column in INDEXES:
        op.create_index(name, table, [column])


def downgrade() -> None:
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
    op.drop_index("ix_source_runs_source_started", table_name="source_runs")
    op.drop_table("source_runs")
