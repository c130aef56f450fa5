"""The spiders: one per source kind, one source per crawl.

They find article URLs and fetch them, nothing more. Sitemap parsing and the choice of what to
fetch are :mod:`pipeline.crawl`, the frontier is :mod:`pipeline.store.core`, and every fetched page
goes to :func:`pipeline.ingest.ingest_page` through :class:`spiders.pipelines.StorePipeline`.
"""

from __future__ import annotations

import email.message
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from datetime import datetime
from typing import Any, Self
from urllib.parse import urljoin, urlsplit

import scrapy
from cssselect import SelectorError
from parsel import Selector, SelectorList
from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DownloadCancelledError, IgnoreRequest
from scrapy.http import Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from pipeline.context import Context
from pipeline.crawl import (
    SitemapError,
    article_url,
    is_recent,
    parse_sitemap,
    sitemap_discoveries,
    worth_fetching,
)
from pipeline.models import Source
from pipeline.store.core import Discovered
from spiders.items import FetchedPage, FetchFailed
from spiders.middlewares import DISCOVERY, HostBlocked, host_blocked

DISCOVERY_PRIORITY = 10  # sitemaps and listing pages before articles: the page limit cuts fetches


def describe(exc: BaseException) -> str:
    if isinstance(exc, HttpError):
        return f"HTTP {exc.response.status}"
    if isinstance(exc, IgnoreRequest):
        return str(exc) or "request ignored"
    return f"{type(exc).__name__}: {exc}".rstrip(": ")


def retryable(exc: BaseException) -> bool:
    """Server trouble and network errors may pass; a 404, a refusal or a body over the size
    cap will not."""
    if isinstance(exc, HttpError):
        return exc.response.status >= 500 or exc.response.status in (408, 429)
    return not isinstance(exc, IgnoreRequest | DownloadCancelledError)


def _header(response: Response, name: str) -> str | None:
    value = response.headers.get(name)
    text = value.decode("latin-1").strip() if value else ""
    return text or None


def _content_type(header: str | None) -> tuple[str | None, str | None]:
    if not header:
        return None, None
    message = email.message.Message()
    message["Content-Type"] = header
    return message.get_content_type(), message.get_content_charset()


def _exception(failure: Failure) -> BaseException:
    exc = failure.value
    return exc if exc is not None else RuntimeError("unknown failure")


class SourceSpider(scrapy.Spider):
    """One source's crawl: its store, what it discovered, and why it failed if it did."""

    def __init__(
        self,
        source: Source | None = None,
        ctx: Context | None = None,
        since: datetime | None = None,
        **kwargs: Any,
    ) -> None:
        if source is None or ctx is None:
            raise ValueError(
                f"the {self.name} spider crawls one registry source into a store: "
                "run it through `newsagg crawl` (python -m spiders.run)"
            )
        super().__init__(**kwargs)
        self.source = source
        self.ctx = ctx
        self.store = ctx.store
        self.since = since
        self.error: str | None = None
        self.discovered = 0
        self.max_url_length = 2083  # set from the crawler settings in from_crawler
        self.max_bytes = 0

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        if spider.source.delay is not None:
            # the source's own politeness; crawler settings are frozen only after this
            crawler.settings.set("DOWNLOAD_DELAY", spider.source.delay, priority="spider")
            crawler.settings.set("AUTOTHROTTLE_START_DELAY", spider.source.delay, priority="spider")
        spider.max_url_length = crawler.settings.getint("URLLENGTH_LIMIT")
        spider.max_bytes = crawler.settings.getint("DOWNLOAD_MAXSIZE")
        crawler.signals.connect(spider.host_blocked, signal=host_blocked)
        crawler.signals.connect(spider.failed_internally, signal=signals.item_error)
        crawler.signals.connect(spider.failed_internally, signal=signals.spider_error)
        return spider

    # -- outcome -------------------------------------------------------------------------------

    def fail(self, reason: str) -> None:
        """The first reason is kept: later ones usually follow from it."""
        self.logger.warning("source %s: %s", self.source.name, reason)
        if self.error is None:
            self.error = reason

    def host_blocked(self, netloc: str, reason: str) -> None:
        self.fail(reason)

    def failed_internally(self, failure: Failure, **_: Any) -> None:
        kind = failure.type.__name__ if failure.type is not None else "error"
        self.fail(f"{kind}: {failure.value}")

    def closed(self, reason: str) -> None:
        if reason not in ("finished", "closespider_pagecount"):
            self.fail(f"crawl stopped early: {reason}")
        with self.store.begin() as conn:  # the source's standing, as the feed stage keeps it
            if self.error:
                self.store.record_drop(conn, self.source.url, self.source.name, "crawl", self.error)
            else:
                self.store.clear_drop(conn, self.source.url)

    # -- requests ------------------------------------------------------------------------------

    def document_request(self, url: str, callback: Callable[..., Any], **kwargs: Any) -> Request:
        """A sitemap or listing page: the source fails if it cannot be had. Marked as a
        discovery document, so it is asked for conditionally (ConditionalDiscoveryMiddleware)."""
        return Request(
            url,
            callback=callback,
            errback=self.document_failed,
            priority=DISCOVERY_PRIORITY,
            cb_kwargs=kwargs,
            meta={DISCOVERY: True},
        )

    def document_failed(self, failure: Failure) -> None:
        request = failure.request  # type: ignore[attr-defined]  # Scrapy sets it on errback failures
        reason = describe(_exception(failure))
        self.fail(reason if request.url in reason else f"{request.url}: {reason}")

    def article_request(self, url: str) -> Request:
        return Request(
            url, callback=self.parse_article, errback=self.article_failed, meta={"frontier_url": url}
        )

    def owed_requests(self) -> Iterator[Request]:
        """URLs this source found in earlier runs and still owes a fetch (a run cut short by
        the page limit, a server error last time)."""
        for item in self.store.pending([self.source.name], max_attempts=self.ctx.settings.fetch_attempts):
            yield self.article_request(item.url)

    def follow(self, found: Iterable[Discovered]) -> Iterator[Request]:
        """Put what was found in the frontier; request what is new or changed."""
        found = [d for d in found if len(d.url) <= self.max_url_length]
        if not found:
            return
        wanted = worth_fetching(found, self.store.known_urls(d.url for d in found))
        new, requeued = self.store.discover(found)
        self.discovered += new + requeued
        for item in wanted:
            yield self.article_request(item.url)

    def parse_article(self, response: Response) -> Iterator[FetchedPage]:
        content_type, charset = _content_type(_header(response, "Content-Type"))
        yield FetchedPage(
            url=response.meta["frontier_url"],
            source=self.source.name,
            final_url=response.url,
            status=response.status,
            body=response.body,
            content_type=content_type,
            charset=charset,
            etag=_header(response, "ETag"),
            last_modified=_header(response, "Last-Modified"),
        )

    def article_failed(self, failure: Failure) -> Iterator[FetchFailed]:
        exc = _exception(failure)
        if isinstance(exc, HostBlocked):
            return  # not the article's fault: it stays pending for the next run
        request = failure.request  # type: ignore[attr-defined]  # Scrapy sets it on errback failures
        yield FetchFailed(
            url=request.meta.get("frontier_url", request.url),
            source=self.source.name,
            reason=describe(exc),
            retryable=retryable(exc),
        )


class SitemapSpider(SourceSpider):
    """A sitemap or sitemap index (gzipped or not, Google News or plain)."""

    name = "sitemap"
    max_index_depth = 2  # sitemaps.org allows one level of index; one more for real sites

    async def start(self) -> AsyncIterator[Request]:
        yield self.document_request(self.source.url, self.parse_sitemap, depth=0)
        for request in self.owed_requests():
            yield request

    def parse_sitemap(self, response: Response, depth: int) -> Iterator[Request]:
        try:
            sitemap = parse_sitemap(response.body, base_url=response.url, max_bytes=self.max_bytes)
        except SitemapError as exc:
            self.fail(f"{response.url}: {exc}")
            return
        self.crawler.stats.inc_value(f"newsagg/sitemaps/{sitemap.kind}")
        if sitemap.kind == "urlset":
            yield from self.follow(sitemap_discoveries(sitemap.entries, self.source.name, self.since))
            return
        if depth >= self.max_index_depth:
            self.fail(f"{response.url}: sitemap indexes nested more than {self.max_index_depth} deep")
            return
        for entry in sitemap.entries:
            # an index entry's lastmod is when that sitemap last changed
            if is_recent(entry.lastmod, self.since):
                yield self.document_request(entry.loc, self.parse_sitemap, depth=depth + 1)


def select(response: TextResponse, selector: str) -> SelectorList[Selector]:
    """A registry selector: CSS, or XPath after an "xpath:" prefix."""
    if selector.startswith("xpath:"):
        return response.xpath(selector.removeprefix("xpath:"))
    return response.css(selector)


def link_of(node: Selector) -> tuple[str, str | None] | None:
    """(href, link text) of a selected link; a selected attribute or text is the href itself."""
    if isinstance(node.root, str):
        return node.root.strip(), None
    href = node.attrib.get("href") or node.css("a::attr(href)").get()
    if not href:
        return None
    text = " ".join((node.xpath("string()").get() or "").split())
    return href, text or None


class SectionSpider(SourceSpider):
    """A section page: article links by selector, pagination up to ``max_pages`` pages."""

    name = "section"

    async def start(self) -> AsyncIterator[Request]:
        yield self.document_request(self.source.url, self.parse_listing, page=1)
        for request in self.owed_requests():
            yield request

    def parse_listing(self, response: Response, page: int) -> Iterator[Request]:
        if not isinstance(response, TextResponse):
            self.fail(
                f"{response.url}: not an HTML page ({_header(response, 'Content-Type') or 'no content type'})"
            )
            return
        source = self.source
        try:
            links = [link for node in select(response, source.links or "") if (link := link_of(node))]
            pager = select(response, source.next_page) if source.next_page else []
        except (ValueError, SelectorError) as exc:
            self.fail(f"bad selector in the registry: {exc}")
            return
        found = [
            Discovered(url=url, source=source.name, title=title)
            for href, title in links
            if (url := article_url(href, response.url))
        ]
        if page == 1 and not found:
            self.fail(
                f"{response.url}: selector {source.links!r} matched no article link "
                "(has the page layout changed?)"
            )
        yield from self.follow(found)
        following = link_of(pager[0]) if pager else None
        if following and page < source.max_pages:
            url = urljoin(response.url, following[0])
            if urlsplit(url).scheme in ("http", "https"):
                yield self.document_request(url, self.parse_listing, page=page + 1)
