"""The item pipeline: the crawl's only way into the store."""

from __future__ import annotations

from typing import Any, Self

from scrapy.crawler import Crawler

from pipeline.ingest import ingest_page, record_fetch_failure
from spiders.items import FetchedPage, FetchFailed
from spiders.news import SourceSpider


class StorePipeline:
    """Each article through ``ingest_page`` (the entry point every fetcher shares), one
    transaction per item so a crash loses at most the page in hand."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        spider = self.crawler.spider
        assert isinstance(spider, SourceSpider), "items come only from the source spiders"
        ctx = spider.ctx  # the source spider owns the run's context
        stats = self.crawler.stats
        with ctx.store.begin() as conn:
            if isinstance(item, FetchedPage):
                result = ingest_page(
                    ctx,
                    conn,
                    url=item.url,
                    source=item.source,
                    final_url=item.final_url,
                    status=item.status,
                    body=item.body,
                    content_type=item.content_type,
                    charset=item.charset,
                    etag=item.etag,
                    last_modified=item.last_modified,
                )
                stats.inc_value(f"newsagg/pages/{result}")
            elif isinstance(item, FetchFailed):
                status = record_fetch_failure(ctx, conn, item.url, item.source, item.reason, item.retryable)
                stats.inc_value(f"newsagg/pages/{status}")
        return item
