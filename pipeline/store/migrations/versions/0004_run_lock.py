"""the run lock: one row only the writer can lock; a token check the reader role may call

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

Runs were serialised by a session advisory lock, which any role (the read-only one included) could
take and hold, and which vanished with its backend. A row lock on ``run_lock`` needs UPDATE on the
table, which the reader role never gets; its ``token`` is the holding run's own random number, so
a run whose lock was lost can tell that another one has it now (``pipeline.store.core.Store.run_lock``).

PostgreSQL also gets ``newsagg_v1_token_name(sha256)``: the name of the active API token with that
hash, or NULL. It runs with its owner's rights, so ``newsagg serve`` under the reader role can check
tokens without reading ``api_tokens``; ``newsagg db grant-reader`` grants EXECUTE on it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "run_lock",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.String(256)),
        sa.Column("since", sa.DateTime(timezone=True)),
    )
    op.bulk_insert(table, [{"id": 1, "token": 0, "holder": None, "since": None}])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        schema = bind.execute(sa.text("SELECT current_schema()")).scalar_one()
        ident = '"' + schema.replace('"', '""') + '"'
        op.execute(
            f"CREATE OR REPLACE FUNCTION {ident}.newsagg_v1_token_name(sha256 text) RETURNS text "
            f"LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {ident}, pg_temp AS "
            f"$$ SELECT name FROM {ident}.api_tokens WHERE token_sha256 = sha256 AND revoked_at IS NULL $$"
        )
        op.execute(f"REVOKE ALL ON FUNCTION {ident}.newsagg_v1_token_name(text) FROM PUBLIC")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS newsagg_v1_token_name(text)")
    op.drop_table("run_lock")
