"""The typed models: one per thing (Source, Article, Story and the parts of a Story).

They are plain frozen dataclasses so that every stage, the store and the CLI agree on one shape.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

SourceKind = Literal["rss", "sitemap", "html"]
SOURCE_KINDS: tuple[str, ...] = ("rss", "sitemap", "html")

FigureKind = Literal["killed", "injured", "missiles", "drones", "intercepted", "place"]
FIGURE_KINDS: tuple[str, ...] = ("killed", "injured", "missiles", "drones", "intercepted", "place")


# The one rule for a source's name (registry, DAG params, Airflow form): lower case, digits and
# "_.-", at most 64 characters. A plain string too, for JSON schemas (the DAG's trigger form).
SOURCE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"

# The words the stages and the store exchange, as types: a misspelt status is a type error, not a
# row no query ever finds.
UrlStatus = Literal["pending", "fetched", "failed", "dropped"]  # urls.status
DropStage = Literal["feed", "fetch", "clean", "crawl"]  # drops.stage: where a URL gave no article
PageResult = Literal["stored", "unchanged", "not_modified", "dropped"]  # ingest of one response
UpsertResult = Literal["new", "updated", "unchanged", "dropped"]  # an article, by canonical URL
SaveResult = Literal["new", "updated", "unchanged"]  # a story and its figures
HealthState = Literal["ok", "quiet", "warning", "failed", "unknown"]  # a source's last run


@dataclass(frozen=True, slots=True)
class Source:
    """One outlet entry of the source registry."""

    name: str
    kind: SourceKind
    url: str
    language: str | None = None
    links: str | None = None  # html: CSS (or "xpath:" prefixed XPath) selector of article links
    next_page: str | None = None  # html: selector of the pagination link
    max_pages: int = 5  # html: page limit per run
    delay: float | None = None  # politeness override: seconds between requests to this host
    enabled: bool = True


def article_id_for(canonical_url: str) -> str:
    """A stable article id derived from the canonical URL, so reruns address the same row."""
    return hashlib.sha256(canonical_url.encode("utf-8")).hexdigest()[:20]


def content_hash_for(text: str) -> str:
    """Hash of the normalised body text; equal hashes mean the same article text."""
    normalised = " ".join(text.split()).casefold()
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Article:
    """A cleaned article as it is stored."""

    url: str  # canonical URL
    source: str
    title: str | None
    authors: tuple[str, ...]
    published_at: datetime | None
    language: str | None
    text: str
    content_hash: str
    fetched_at: datetime
    article_id: str = ""
    live_blog: bool = False  # a live blog page: its text holds every entry, and grows

    def __post_init__(self) -> None:
        if not self.article_id:
            object.__setattr__(self, "article_id", article_id_for(self.url))


@dataclass(frozen=True, slots=True)
class Figure:
    """One number one report gives, kept even when outlets disagree."""

    kind: str  # one of FIGURE_KINDS
    value: str  # a count ("12") or, for kind "place", the place name
    source: str
    url: str
    reported_at: datetime | None
    # who the report says gives the number ("air force", "Russian defence ministry"); None when
    # the report does not say: outlets quote sources that disagree, and a reader must see whose
    source_claim: str | None = None
    # the report that gives it: set when dedup hands a story's figures to the store (the key of
    # a figure is article, kind, value); reads through the v1 views leave it empty
    article_id: str = ""


@dataclass(frozen=True, slots=True)
class StoryArticle:
    """An article's membership in a story."""

    article_id: str
    url: str
    source: str
    title: str | None
    published_at: datetime | None
    copy_of: str | None = None  # article_id of the report this one is a copy of
    language: str | None = None  # the report's language: a story may be told in several
    live_blog: bool = False  # a running live blog, not one finished report


@dataclass(frozen=True, slots=True)
class Story:
    """The canonical story of one real-world event."""

    story_id: str
    title: str | None
    summary: str | None
    first_seen: datetime
    last_updated: datetime
    articles: tuple[StoryArticle, ...] = field(default_factory=tuple)
    figures: tuple[Figure, ...] = field(default_factory=tuple)
    # Why the reports are together (pipeline.cluster.explain.story_evidence), as dedup stored it;
    # None where it has not. Left out of the hash: a dict has none.
    evidence: dict[str, Any] | None = field(default=None, hash=False)
    # the report whose headline and summary the story shows, when dedup writes it; reads leave
    # it None
    best_article_id: str | None = None

    @property
    def live_blog(self) -> bool:
        """Derived from the members, so it can never disagree with them: a story one outlet
        covers live is still being told."""
        return any(a.live_blog for a in self.articles)


@dataclass(frozen=True, slots=True)
class StoredArticle:
    """An article as the store reads it back for dedup, explain and the CLI.

    Reads through the v1 articles view (which the reader role may use) fill only the columns it
    has; the others keep their defaults."""

    article_id: str
    url: str
    source: str
    title: str | None
    published_at: datetime | None
    fetched_at: datetime | None
    language: str | None
    text: str
    story_id: str | None = None
    authors: tuple[str, ...] = ()
    content_hash: str = ""
    updated_at: datetime | None = None
    duplicate_of: str | None = None
    copy_of: str | None = None
    dedup_sig: str | None = None
    change_seq: int | None = None
    live_blog: bool = False
