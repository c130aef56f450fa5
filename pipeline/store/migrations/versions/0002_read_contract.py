"""read contract: change feed, API tokens and the v1 read views

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

The ``newsagg_v1_*`` views are the contract downstream consumers read (docs/store.md). Their
column lists must never change; a later, incompatible shape is a new set of ``newsagg_v2_*``
views next to these. Rows already in the store get change numbers here, so a consumer starting
from cursor 0 sees everything.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)

V1_VIEWS = (
    "newsagg_v1_stories",
    "newsagg_v1_articles",
    "newsagg_v1_story_articles",
    "newsagg_v1_story_figures",
    "newsagg_v1_changes",
)


def _digits(column: str, dialect: str) -> str:
    """A portable "is a whole non-negative number" test, so the cast below can never fail."""
    if dialect == "postgresql":
        return f"{column} ~ '^[0-9]{{1,18}}$'"
    return f"({column} <> '' AND {column} NOT GLOB '*[^0-9]*' AND length({column}) <= 18)"


def view_sql(dialect: str) -> dict[str, str]:
    """The v1 views; the same columns, in the same order, on SQLite and PostgreSQL."""
    return {
        "newsagg_v1_stories": """
            SELECT s.story_id, s.title, s.summary, s.best_article_id, s.first_seen,
                   s.last_updated, s.article_count,
                   (SELECT COUNT(DISTINCT a.source) FROM articles a
                     WHERE a.story_id = s.story_id) AS outlet_count,
                   s.change_seq
              FROM stories s""",
        "newsagg_v1_articles": """
            SELECT a.article_id, a.url, a.source, a.title, a.authors, a.published_at,
                   a.language, a.text, a.content_hash, a.fetched_at, a.updated_at, a.story_id,
                   COALESCE(a.copy_of, a.duplicate_of) AS copy_of, a.change_seq
              FROM articles a""",
        "newsagg_v1_story_articles": """
            SELECT a.story_id, a.article_id, a.source, a.url, a.title, a.published_at,
                   COALESCE(a.copy_of, a.duplicate_of) AS copy_of, a.change_seq
              FROM articles a
             WHERE a.story_id IS NOT NULL""",
        "newsagg_v1_story_figures": f"""
            SELECT f.story_id, f.article_id, f.kind, f.value,
                   CASE WHEN f.kind <> 'place' AND {_digits("f.value", dialect)}
                        THEN CAST(f.value AS BIGINT) END AS number,
                   f.source, f.url, f.reported_at, s.change_seq
              FROM figures f JOIN stories s ON s.story_id = f.story_id""",
        "newsagg_v1_changes": """
            SELECT c.change_seq, c.kind, c.entity_id AS id, c.op, c.changed_at
              FROM changes c""",
    }


def create_views(dialect: str) -> None:
    for name, sql in view_sql(dialect).items():
        op.execute(f"DROP VIEW IF EXISTS {name}")
        op.execute(f"CREATE VIEW {name} AS {sql.strip()}")


def upgrade() -> None:
    bind = op.get_bind()
    op.add_column("articles", sa.Column("change_seq", sa.BigInteger()))
    op.create_index("ix_articles_change_seq", "articles", ["change_seq"])
    op.add_column("stories", sa.Column("change_seq", sa.BigInteger()))
    op.create_index("ix_stories_change_seq", "stories", ["change_seq"])
    op.create_table(
        "changes",
        sa.Column("change_seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("entity_id", sa.String(32), nullable=False),
        sa.Column("op", sa.String(8), nullable=False),
        sa.Column("changed_at", TS, nullable=False),
    )
    counter = op.create_table(
        "change_counter",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS),
    )
    last = _backfill(bind)
    op.bulk_insert(counter, [{"id": 1, "last_seq": last}])
    create_views(bind.dialect.name)


def _backfill(bind: sa.Connection) -> int:
    """Number the rows an older store already holds, oldest first, as inserts."""
    meta = sa.MetaData()
    stories = sa.Table("stories", meta, autoload_with=bind)
    articles = sa.Table("articles", meta, autoload_with=bind)
    changes = sa.Table("changes", meta, autoload_with=bind)
    rows = [
        ("article", r[0], r[1]) for r in bind.execute(sa.select(articles.c.article_id, articles.c.fetched_at))
    ]
    rows += [("story", r[0], r[1]) for r in bind.execute(sa.select(stories.c.story_id, stories.c.first_seen))]
    rows.sort(key=lambda r: (str(r[2]), r[0], r[1]))
    stamp = datetime.now(UTC).replace(microsecond=0)
    log = []
    for seq, (kind, entity_id, _when) in enumerate(rows, start=1):
        table, key = (articles, articles.c.article_id) if kind == "article" else (stories, stories.c.story_id)
        bind.execute(table.update().where(key == entity_id).values(change_seq=seq))
        log.append(
            {"change_seq": seq, "kind": kind, "entity_id": entity_id, "op": "insert", "changed_at": stamp}
        )
    if log:
        bind.execute(changes.insert(), log)
    return len(rows)


def downgrade() -> None:
    for name in reversed(V1_VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.drop_table("api_tokens")
    op.drop_table("change_counter")
    op.drop_table("changes")
    op.drop_index("ix_stories_change_seq", table_name="stories")
    op.drop_index("ix_articles_change_seq", table_name="articles")
    with op.batch_alter_table("stories") as batch:
        batch.drop_column("change_seq")
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("change_seq")
