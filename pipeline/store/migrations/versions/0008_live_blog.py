"""live blog: whether an article is a live blog, kept from extraction to every reader

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

Extraction tells a live blog (a page whose text holds every entry so far, and grows) from a
finished report; ``articles.live_blog`` keeps it, false for every row stored before (a server
default, so the column needs no backfill). ``newsagg_v1_articles`` and
``newsagg_v1_story_articles`` gain it as their last column; the columns before it keep their
names, order and types. PostgreSQL replaces the views in place (grants to the reader role stay);
SQLite has no grants and recreates them.

Articles already stored get their flag when their page is cleaned again (a changed page, or
``pipeline.clean.clean_pending(ctx, force=True)``, which cleans every stored page).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# The two views as migration 0002 made them; the upgrade appends ``a.live_blog`` to each.
VIEWS = {
    "newsagg_v1_articles": (
        """
            SELECT a.article_id, a.url, a.source, a.title, a.authors, a.published_at,
                   a.language, a.text, a.content_hash, a.fetched_at, a.updated_at, a.story_id,
                   COALESCE(a.copy_of, a.duplicate_of) AS copy_of, a.change_seq{}
              FROM articles a"""
    ),
    "newsagg_v1_story_articles": (
        """
            SELECT a.story_id, a.article_id, a.source, a.url, a.title, a.published_at,
                   COALESCE(a.copy_of, a.duplicate_of) AS copy_of, a.change_seq{}
              FROM articles a
             WHERE a.story_id IS NOT NULL"""
    ),
}


def view_sql(name: str, live_blog: bool) -> str:
    return VIEWS[name].format(", a.live_blog" if live_blog else "").strip()


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.add_column("articles", sa.Column("live_blog", sa.Boolean(), nullable=False, server_default=sa.false()))
    for name in VIEWS:
        if dialect == "postgresql":
            op.execute(f"CREATE OR REPLACE VIEW {name} AS {view_sql(name, True)}")
        else:
            op.execute(f"DROP VIEW IF EXISTS {name}")
            op.execute(f"CREATE VIEW {name} AS {view_sql(name, True)}")


def _readers(bind: sa.Connection, view: str) -> list[str]:
    """Who may select ``view`` besides its owner: a view dropped to lose a column loses them."""
    if bind.dialect.name != "postgresql":
        return []
    return list(
        bind.execute(
            sa.text(
                "SELECT DISTINCT grantee FROM information_schema.role_table_grants "
                "WHERE table_schema = current_schema() AND table_name = :v "
                "AND privilege_type = 'SELECT' AND grantee <> current_user"
            ),
            {"v": view},
        ).scalars()
    )


def downgrade() -> None:
    bind = op.get_bind()
    readers = {name: _readers(bind, name) for name in VIEWS}
    for name in VIEWS:  # a view cannot lose a column in place
        op.execute(f"DROP VIEW IF EXISTS {name}")
    if bind.dialect.name == "sqlite":  # in place: a copied table would break the views over it
        op.execute("ALTER TABLE articles DROP COLUMN live_blog")
    else:
        op.drop_column("articles", "live_blog")
    for name in VIEWS:
        op.execute(f"CREATE VIEW {name} AS {view_sql(name, False)}")
        for role in readers[name]:
            grantee = "PUBLIC" if role == "PUBLIC" else '"' + role.replace('"', '""') + '"'
            op.execute(f"GRANT SELECT ON {name} TO {grantee}")
