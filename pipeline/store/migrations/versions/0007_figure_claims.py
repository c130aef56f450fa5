"""figure claims: who a report says gives each figure

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

Reports quote sources that disagree (the air force and the Russian defence ministry, the city's
administration and the emergency service), so each figure keeps who the report says gives it:
``figures.source_claim``, NULL where the report does not say. ``newsagg_v1_story_figures`` gains
the column at its end; the columns before it keep their names, order and types, so readers that
name their columns or read them by position are unaffected. PostgreSQL replaces the view in place
(grants to the reader role stay); SQLite has no grants and recreates it.

Stories already stored get their claims when dedup next rebuilds them (``newsagg
recluster`` rebuilds every story).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

VIEW = "newsagg_v1_story_figures"


def _digits(column: str, dialect: str) -> str:
    """A portable "is a whole non-negative number" test, so the cast below can never fail."""
    if dialect == "postgresql":
        return f"{column} ~ '^[0-9]{{1,18}}$'"
    return f"({column} <> '' AND {column} NOT GLOB '*[^0-9]*' AND length({column}) <= 18)"


def view_sql(dialect: str, claims: bool) -> str:
    """The figures view as migration 0002 made it, with ``source_claim`` last when ``claims``."""
    return f"""
            SELECT f.story_id, f.article_id, f.kind, f.value,
                   CASE WHEN f.kind <> 'place' AND {_digits("f.value", dialect)}
                        THEN CAST(f.value AS BIGINT) END AS number,
                   f.source, f.url, f.reported_at, s.change_seq{", f.source_claim" if claims else ""}
              FROM figures f JOIN stories s ON s.story_id = f.story_id""".strip()


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.add_column("figures", sa.Column("source_claim", sa.String(128)))
    if dialect == "postgresql":
        op.execute(f"CREATE OR REPLACE VIEW {VIEW} AS {view_sql(dialect, True)}")
    else:
        op.execute(f"DROP VIEW IF EXISTS {VIEW}")
        op.execute(f"CREATE VIEW {VIEW} AS {view_sql(dialect, True)}")


def downgrade() -> None:
    """Drops and recreates the view: on PostgreSQL, run ``newsagg db grant-reader`` again."""
    dialect = op.get_bind().dialect.name
    op.execute(f"DROP VIEW IF EXISTS {VIEW}")  # a view cannot lose a column in place
    with op.batch_alter_table("figures") as batch:
        batch.drop_column("source_claim")
    op.execute(f"CREATE VIEW {VIEW} AS {view_sql(dialect, False)}")
