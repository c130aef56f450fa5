"""The item pipeline: the crawl's only way into the store."""

from __future__ import annotations

from typing import Any, Self

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem
from scrapy.utils.defer import deferred_from_coro

from pipeline.errors import RunLockLost
from pipeline.ingest import ingest_page, record_fetch_failure
from pipeline.models import PageResult, UrlStatus
from spiders.items import FetchedPage, FetchFailed
from spiders.news import SourceSpider


class StorePipeline:
    """Each article through ``ingest_page`` (the entry point every fetcher shares), one
    transaction per item so a crash loses at most the page in hand."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.closing = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        spider = self.crawler.spider
        assert isinstance(spider, SourceSpider), "items come only from the source spiders"
        ctx = spider.ctx  # the source spider owns the run's context
        stats = self.crawler.stats
        try:
            self._store(ctx, item, stats)
        except RunLockLost as exc:  # another run writes now: this crawl stops, keeping nothing more
            spider.error = str(exc)
            if not self.closing and self.crawler.engine is not None:
                self.closing = True
                deferred_from_coro(self.crawler.engine.close_spider_async(reason="run_lock_lost"))
            raise DropItem(str(exc)) from None
        return item

    def _store(self, ctx: Any, item: Any, stats: Any) -> None:
        with ctx.store.begin() as conn:
            if isinstance(item, FetchedPage):
                result: PageResult = ingest_page(
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
                status: UrlStatus = record_fetch_failure(
                    ctx, conn, item.url, item.source, item.reason, item.retryable
                )
                stats.inc_value(f"newsagg/pages/{status}")
