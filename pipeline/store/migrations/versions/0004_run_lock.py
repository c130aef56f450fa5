"""the run lock: one row only the writer can lock

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

Runs were serialised by a session advisory lock, which any role (the read-only one included) could
take and hold, and which vanished with its backend. A row lock on ``run_lock`` needs UPDATE on the
table, which the reader role never gets; its ``token`` counts the runs that took it, so a run whose
lock was lost can tell that another one has it now (``pipeline.store.core.Store.run_lock``).
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


def downgrade() -> None:
    op.drop_table("run_lock")
