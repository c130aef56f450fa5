"""The store's tables (SQLAlchemy Core). Alembic migrations in ``pipeline/store/migrations`` create
them; a test checks the migrations and this metadata agree.

Internal tables may change between versions; downstream consumers read the versioned views.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
    text,
)

from pipeline.store.limits import EVIDENCE_CHARS

metadata = MetaData()

TS = DateTime(timezone=True)

# Discovery documents' HTTP state: conditional-GET validators per feed, robots.txt, sitemap and
# section page URL; for all but feeds also the last 200 body (migration 0003), which stands in
# for the document when the server answers 304.
feed_state = Table(
    "feed_state",
    metadata,
    Column("url", String(2048), primary_key=True),
    Column("source", String(64), nullable=False),  # the source that last stored it
    Column("etag", String(512)),
    Column("last_modified", String(128)),
    Column("content_type", String(255)),  # the Content-Type header of the kept body
    Column("body_gz", LargeBinary),  # gzip of the decoded body; NULL for feeds
    Column("fetched_at", TS),  # when the kept body (or its validators) last changed
)

# The frontier: every article URL discovered, and where it stands.
urls = Table(
    "urls",
    metadata,
    Column("url", String(2048), primary_key=True),
    Column("source", String(64), nullable=False),
    Column("discovered_at", TS, nullable=False),
    Column("hint_title", Text),
    Column("hint_published_at", TS),
    Column("lastmod", TS),  # the feed's or sitemap's last-modified claim for this URL
    Column("fingerprint", String(64)),  # hash of the feed entry; when it changes, refetch
    Column("status", String(16), nullable=False),  # pending | fetched | failed | dropped
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text),
    Index("ix_urls_status", "status"),
    Index("ix_urls_discovered_at", "discovered_at"),  # migration 0005: a run's new URLs (health)
)

# Raw pages, compressed, so cleaning can be re-run without fetching again.
pages = Table(
    "pages",
    metadata,
    Column("url", String(2048), primary_key=True),
    Column("source", String(64), nullable=False),
    Column("final_url", String(2048), nullable=False),
    Column("fetched_at", TS, nullable=False),
    Column("content_type", String(128)),
    Column("charset", String(64)),
    Column("etag", String(512)),
    Column("last_modified", String(128)),
    Column("body_sha256", String(64), nullable=False),
    Column("body_gz", LargeBinary, nullable=False),
    Column("cleaned_sha256", String(64)),  # body_sha256 at the last clean; differs: clean again
    Index("ix_pages_fetched_at", "fetched_at"),  # migration 0005: a run's pages (health, progress)
)

articles = Table(
    "articles",
    metadata,
    Column("article_id", String(32), primary_key=True),
    Column("url", String(2048), nullable=False, unique=True),
    Column("source", String(64), nullable=False),
    Column("title", Text),
    Column("authors", Text, nullable=False),  # JSON list
    Column("published_at", TS),
    Column("language", String(16)),
    Column("text", Text, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("fetched_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("duplicate_of", String(32)),  # exact copy (same content hash) of this article
    Column("copy_of", String(32)),  # near-duplicate (syndicated copy) of this article
    Column("story_id", String(32)),
    Column("dedup_sig", String(64)),  # signature at the last dedup; differs: dedup again
    Column("change_seq", BigInteger),  # change feed: seq of the last change (pipeline.store.changes)
    # a live blog page, whose text holds every entry so far (migration 0008; rows before: false)
    Column("live_blog", Boolean, nullable=False, default=False, server_default=false()),
    Index("ix_articles_content_hash", "content_hash"),
    Index("ix_articles_story_id", "story_id"),
    Index("ix_articles_published_at", "published_at"),
    Index("ix_articles_change_seq", "change_seq"),
    Index("ix_articles_updated_at", "updated_at"),  # migration 0005: a run's articles (health)
)

# Why an URL did not become an article (the latest reason per URL and stage).
drops = Table(
    "drops",
    metadata,
    Column("url", String(2048), primary_key=True),
    Column("stage", String(16), primary_key=True),  # feed | fetch | clean
    Column("source", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", TS, nullable=False),
    Index("ix_drops_at", "at"),  # migration 0005: a run's drops (summary, health)
)

stories = Table(
    "stories",
    metadata,
    Column("story_id", String(32), primary_key=True),
    Column("title", Text),
    Column("summary", Text),
    Column("best_article_id", String(32)),
    Column("first_seen", TS, nullable=False),
    Column("last_updated", TS, nullable=False),
    Column("article_count", Integer, nullable=False),
    Column("change_seq", BigInteger),  # change feed: seq of the last change (pipeline.store.changes)
    # why the reports are together (pipeline.cluster.explain.story_evidence; migration
    # story_evidence): JSON within EVIDENCE_CHARS, NULL until dedup has seen the story since
    Column("evidence", Text, info={"json": EVIDENCE_CHARS}),
    # sha256 of the member texts the evidence was worked out from (pipeline.dedup.members_key):
    # while it matches, dedup keeps the evidence instead of working it out again
    Column("evidence_key", String(64)),
    Index("ix_stories_last_updated", "last_updated"),
    Index("ix_stories_change_seq", "change_seq"),
    # the stories dedup still owes their evidence: found without reading the whole table
    Index(
        "ix_stories_no_evidence",
        "story_id",
        sqlite_where=text("evidence IS NULL"),
        postgresql_where=text("evidence IS NULL"),
    ),
)

figures = Table(
    "figures",
    metadata,
    Column("article_id", String(32), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("value", String(256), primary_key=True),
    Column("story_id", String(32), nullable=False),
    Column("source", String(64), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("reported_at", TS),
    # who the report says gives the figure (migration 0007): "air force", "mayor"; NULL: unsaid
    Column("source_claim", String(128)),
    Index("ix_figures_story_id", "story_id"),
)

# The change feed (migration 0002, pipeline.store.changes): one row per committed change of a story or
# an article, numbered in commit order from the single counter row.
changes = Table(
    "changes",
    metadata,
    Column("change_seq", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(16), nullable=False),  # story | article
    Column("entity_id", String(32), nullable=False),
    Column("op", String(8), nullable=False),  # insert | update | delete
    Column("changed_at", TS, nullable=False),
)

change_counter = Table(
    "change_counter",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("last_seq", BigInteger, nullable=False),
)

# Read-API bearer tokens (pipeline.serve.tokens): only the SHA-256 of a token is kept.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created_at", TS, nullable=False),
    Column("revoked_at", TS),
)

# The run lock (migration 0004, Store.run_lock): its one row is row-locked for a whole run; the
# reader role cannot lock it. ``token``: the holding run's random token, 0 when none holds it.
run_lock = Table(
    "run_lock",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("token", BigInteger, nullable=False),
    Column("holder", String(256)),  # host, pid and start of the run that took it last
    Column("since", TS),
)

# Source health (migration 0005, pipeline.health): one row per source per run, the figures the
# health rules compare across runs. JSON columns are cut to their bound before they are written.
source_runs = Table(
    "source_runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("source", String(64), primary_key=True),
    Column("started_at", TS, nullable=False),
    Column("finished_at", TS, nullable=False),
    Column("discovered", Integer, nullable=False),
    Column("fetched", Integer, nullable=False),
    Column("cleaned", Integer, nullable=False),  # articles new or changed in this run
    Column("dropped", Integer, nullable=False),
    Column("no_body", Integer, nullable=False),  # drops for "no article body found"
    Column("drop_reasons", String(4000), nullable=False),  # JSON {reason: count}
    Column("statuses", String(1000), nullable=False),  # JSON {"200": n, "404": n, "error": n}
    Column("median_body", Integer),  # median cleaned text length (characters)
    Column("last_article_at", TS),  # newest article of the source, any run
    Column("challenge_pages", Integer, nullable=False),  # pages that look like a bot or consent wall
    Column("state", String(16), nullable=False),  # ok | quiet | warning | failed
    Column("flags", String(4000), nullable=False),  # JSON [{"rule": ..., "detail": ...}]
    Index("ix_source_runs_source_started", "source", "started_at"),
)

# Tables that record runs, not content: every run writes them by design, so "a rerun with nothing
# new changes no row" is about the other tables.
RUN_LOGS = frozenset({"source_runs", "run_lock"})

# The read contract (docs/store.md): views consumers may rely on; created by migration 0002.
READ_VIEWS = (
    "newsagg_v1_stories",
    "newsagg_v1_articles",
    "newsagg_v1_story_articles",
    "newsagg_v1_story_figures",
    "newsagg_v1_changes",
)

__all__ = [
    "READ_VIEWS",
    "RUN_LOGS",
    "api_tokens",
    "articles",
    "change_counter",
    "changes",
    "drops",
    "feed_state",
    "figures",
    "metadata",
    "pages",
    "run_lock",
    "source_runs",
    "stories",
    "urls",
]
