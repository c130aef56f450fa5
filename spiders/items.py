"""What the spiders hand to the item pipeline: an article response, or why there is none."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FetchedPage:
    """An article response, in the terms of ``pipeline.ingest.ingest_page``."""

    url: str  # the frontier's canonical URL (the request may have been redirected)
    source: str
    final_url: str
    status: int
    body: bytes
    content_type: str | None
    charset: str | None
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True, slots=True)
class FetchFailed:
    """An article that could not be fetched; ``retryable`` keeps it for the next run."""

    url: str
    source: str
    reason: str
    retryable: bool
