"""discovery documents' HTTP state: the last body of robots.txt, sitemaps and section pages

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

``feed_state`` kept only the validators (ETag, Last-Modified) of feeds. The Scrapy crawl now asks
for robots.txt, sitemaps and section pages conditionally too (``spiders.middlewares.
ConditionalDiscoveryMiddleware``); a 304 there must still hand Scrapy the document, so the last
200 body is kept (gzip) with its Content-Type. Feeds leave the new columns NULL: a 304 feed is
simply not parsed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("feed_state", sa.Column("content_type", sa.String(255)))
    op.add_column("feed_state", sa.Column("body_gz", sa.LargeBinary()))
    op.add_column("feed_state", sa.Column("fetched_at", TS))


def downgrade() -> None:
    with op.batch_alter_table("feed_state") as batch:
        batch.drop_column("fetched_at")
        batch.drop_column("body_gz")
        batch.drop_column("content_type")
