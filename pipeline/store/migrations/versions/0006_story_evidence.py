"""story evidence: why a story's reports are together, stored by dedup and shown in the v1 view

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

``stories.evidence`` holds what ``pipeline.cluster.explain.story_evidence`` says of the story's
members (shared names, places and counts, the event window, how similar the texts are) as JSON,
so ``stories --json``, the read API and the story page show what dedup saw instead of working it
out again on every read. Existing stories get NULL; the next dedup fills them in (a one-off pass
over the stories found by ``ix_stories_no_evidence``). ``stories.evidence_key`` (internal, not in
the view) says which member texts the evidence was worked out from, so dedup works it out again
only for stories whose members changed.

``newsagg_v1_stories`` gains ``evidence`` as its last column: every existing column keeps its name,
position, type and meaning, which is what the v1 contract promises (docs/store.md). PostgreSQL
replaces the view in place, so the grants of ``newsagg db grant-reader`` survive the upgrade;
SQLite has no grants and no CREATE OR REPLACE VIEW, so it drops and creates it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

VIEW = "newsagg_v1_stories"
# The view as migration 0002 created it, and with the new column last.
BEFORE = """
    SELECT s.story_id, s.title, s.summary, s.best_article_id, s.first_seen,
           s.last_updated, s.article_count,
           (SELECT COUNT(DISTINCT a.source) FROM articles a
             WHERE a.story_id = s.story_id) AS outlet_count,
           s.change_seq
      FROM stories s"""
AFTER = """
    SELECT s.story_id, s.title, s.summary, s.best_article_id, s.first_seen,
           s.last_updated, s.article_count,
           (SELECT COUNT(DISTINCT a.source) FROM articles a
             WHERE a.story_id = s.story_id) AS outlet_count,
           s.change_seq, s.evidence
      FROM stories s"""


def upgrade() -> None:
    op.add_column("stories", sa.Column("evidence", sa.Text()))
    op.add_column("stories", sa.Column("evidence_key", sa.String(64)))
    op.create_index(
        "ix_stories_no_evidence",
        "stories",
        ["story_id"],
        sqlite_where=sa.text("evidence IS NULL"),
        postgresql_where=sa.text("evidence IS NULL"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE OR REPLACE VIEW {VIEW} AS {AFTER.strip()}")
    else:
        op.execute(f"DROP VIEW IF EXISTS {VIEW}")
        op.execute(f"CREATE VIEW {VIEW} AS {AFTER.strip()}")


def downgrade() -> None:
    bind = op.get_bind()
    readers: list[str] = []
    if bind.dialect.name == "postgresql":  # a view cannot lose a column in place: keep its readers
        readers = list(
            bind.execute(
                sa.text(
                    "SELECT DISTINCT grantee FROM information_schema.role_table_grants "
                    "WHERE table_schema = current_schema() AND table_name = :v "
                    "AND privilege_type = 'SELECT' AND grantee <> current_user"
                ),
                {"v": VIEW},
            ).scalars()
        )
    op.execute(f"DROP VIEW IF EXISTS {VIEW}")
    op.drop_index("ix_stories_no_evidence", table_name="stories")
    for column in ("evidence_key", "evidence"):
        if bind.dialect.name == "sqlite":  # in place: a copied table would break the views over it
            op.execute(f"ALTER TABLE stories DROP COLUMN {column}")
        else:
            op.drop_column("stories", column)
    op.execute(f"CREATE VIEW {VIEW} AS {BEFORE.strip()}")
    for role in readers:
        grantee = "PUBLIC" if role == "PUBLIC" else '"' + role.replace('"', '""') + '"'
        op.execute(f"GRANT SELECT ON {VIEW} TO {grantee}")
