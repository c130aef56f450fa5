"""Downloader middlewares: the politeness and safety rules Scrapy does not have.

Each has one job. They talk through the ``host_blocked`` signal: whoever decides a host must be
left alone this run sends it, :class:`HostGateMiddleware` enforces it, the spider records it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Self
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Response
from scrapy.responsetypes import responsetypes
from scrapy.utils.httpobj import urlparse_cached

from pipeline.errors import NewsaggError, RefusedError
from pipeline.net.client import parse_retry_after
from pipeline.net.guard import check_url
from pipeline.store.core import Store

host_blocked = object()  # signal(netloc: str, reason: str): no more requests there this run


class Refused(IgnoreRequest):
    """A request newsagg will not make at all (private address, bad scheme)."""


class HostBlocked(IgnoreRequest):
    """A host left alone for the rest of this run; its URLs stay pending for the next."""


def _netloc(request: Request) -> str:
    return urlparse_cached(request).netloc.lower()


def _is_robots_request(request: Request) -> bool:
    return bool(request.meta.get("dont_obey_robotstxt")) and urlparse_cached(request).path == "/robots.txt"


class PrivateAddressMiddleware:
    """The HTTP module's SSRF guard (``check_url``) on every request, redirects included
    (a redirect is a new request through this chain)."""

    def __init__(self, crawler: Crawler) -> None:
        if crawler.settings.getbool("NEWSAGG_ALLOW_PRIVATE_NETWORK"):
            raise NotConfigured
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        try:
            # check_url resolves the host name: blocking, so not on the reactor thread
            await asyncio.to_thread(check_url, request.url, allow_private=False)
        except RefusedError as exc:
            self.stats.inc_value("newsagg/refused")
            raise Refused(str(exc)) from None
        except NewsaggError:
            return None  # cannot resolve: the download fails the same way, with retries
        return None


class RobotsFailureMiddleware:
    """A robots.txt answering 5xx (or 429) or unreachable means "do not crawl" (RFC 9309
    2.3.1.4); Scrapy would treat it as allow-all. Blocks the host for this run. A 4xx
    robots.txt still means "no rules", as the RFC says."""

    def __init__(self, crawler: Crawler) -> None:
        if not crawler.settings.getbool("ROBOTSTXT_OBEY"):
            raise NotConfigured
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def _block(self, request: Request, why: str) -> None:
        # a redirected robots.txt request carries its first URL: block the host asked about
        first = request.meta.get("redirect_urls", [request.url])[0]
        netloc = urlsplit(first).netloc.lower()
        self.crawler.stats.inc_value("newsagg/robots_blocked_hosts")
        self.crawler.signals.send_catch_log(
            host_blocked,
            netloc=netloc,
            reason=f"robots.txt of {netloc} {why}: not crawling that host this run",
        )

    def process_response(self, request: Request, response: Response) -> Response:
        if _is_robots_request(request) and (response.status >= 500 or response.status == 429):
            self._block(request, f"answered {response.status}")
        return response

    def process_exception(self, request: Request, exception: Exception) -> None:
        if _is_robots_request(request):  # a redirect to a private address included
            self._block(request, f"is unreachable ({type(exception).__name__}: {exception})")


class HostGateMiddleware:
    """Refuses requests to hosts given up for this run (see ``host_blocked``).

    Requests pass the middlewares before they wait in their host's download slot, so when a
    host is given up mid-crawl the requests already waiting there are failed too; otherwise up
    to CONCURRENT_REQUESTS of them would still go to a host that asked us to stay away.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.blocked: dict[str, str] = {}
        crawler.signals.connect(self.block, signal=host_blocked)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def block(self, netloc: str, reason: str) -> None:
        self.blocked.setdefault(netloc, reason)
        for slot in self.crawler.engine.downloader.slots.values():
            waiting = list(slot.queue)
            slot.queue.clear()
            for request, deferred in waiting:
                if _netloc(request) == netloc:
                    self.crawler.stats.inc_value("newsagg/host_blocked_requests")
                    deferred.errback(HostBlocked(reason))
                else:
                    slot.queue.append((request, deferred))

    def process_request(self, request: Request) -> None:
        reason = self.blocked.get(_netloc(request))
        if reason is not None:
            self.crawler.stats.inc_value("newsagg/host_blocked_requests")
            raise HostBlocked(reason)


class RetryAfterMiddleware(RetryMiddleware):
    """Scrapy's retries, honouring Retry-After on 429/503: the host's download slot is held
    for the wait (no request of this crawl goes there meanwhile) and the retry waits too. A
    wait beyond ``NEWSAGG_RETRY_AFTER_CAP`` is not waited for: the host is deferred."""

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.cap = settings.getfloat("NEWSAGG_RETRY_AFTER_CAP")

    async def process_response(self, request: Request, response: Response) -> Request | Response:  # type: ignore[override]  # Scrapy 2.19 awaits coroutine hooks
        if response.status not in (429, 503) or request.meta.get("dont_retry"):
            return super().process_response(request, response)
        header = response.headers.get(b"Retry-After")
        wait = parse_retry_after(header.decode("latin-1") if header else None)
        if wait is None:
            return super().process_response(request, response)
        stats = self.crawler.stats
        if wait > self.cap:
            stats.inc_value("newsagg/retry_after/deferred")
            netloc = _netloc(request)
            self.crawler.signals.send_catch_log(
                host_blocked,
                netloc=netloc,
                reason=f"{netloc} asked for a {wait:.0f} s pause (Retry-After), more than the "
                f"{self.cap:.0f} s cap: deferred to the next run",
            )
            return response
        retry = super().process_response(request, response)
        if isinstance(retry, Request):
            stats.inc_value("newsagg/retry_after/waited")
            self._hold_slot(request, wait)
            await asyncio.sleep(wait)
        return retry

    def _hold_slot(self, request: Request, wait: float) -> None:
        """Make the slot's next dispatch no earlier than now + wait (its delay counts from
        ``lastseen``); a slot without a delay holds nothing, the retry's own wait still does."""
        slot = self.crawler.engine.downloader.slots.get(request.meta.get("download_slot", ""))
        if slot is not None and slot.delay:
            slot.lastseen = max(slot.lastseen, time.monotonic() + wait - slot.delay)


DISCOVERY = "newsagg_discovery"  # request.meta flag the spiders set on sitemaps and listing pages
_ASKED = "newsagg_conditional"  # meta: the URL validators were sent for (a redirect changes it)
_UNCONDITIONAL = "newsagg_unconditional"  # meta: ask without validators (after a stray 304)
_VALIDATORS = (b"If-None-Match", b"If-Modified-Since")


def is_discovery_request(request: Request) -> bool:
    """robots.txt (Scrapy's RobotsTxtMiddleware builds that request itself, so it is known by
    its path), sitemaps and section pages. Articles are not: the frontier decides those."""
    return bool(request.meta.get(DISCOVERY)) or _is_robots_request(request)


class ConditionalDiscoveryMiddleware:
    """Discovery documents are asked for conditionally, so a run with nothing new sends only
    conditional requests.

    A request for robots.txt, a sitemap or a section page whose last 200 the store keeps
    (``feed_state``: validators and packed body) gets ``If-None-Match`` / ``If-Modified-Since``.
    A 304 is answered from the store: a 200 built from the kept body (flag ``cached``), so
    Scrapy's robots.txt parser and the spiders read it as usual, and a sitemap index still
    leads to its child sitemaps, each asked for conditionally in turn. A 200 keeps its
    validators and body for the next run; the store writes only what changed. Bodies are kept
    decoded, after HttpCompression applied the decompressed-size cap; a kept body larger than
    the (possibly lowered) ``DOWNLOAD_MAXSIZE`` is not used. The store is the spider's own
    (``spider.store``, the run's ``Context``); a spider without one is left alone.
    """

    def __init__(self, crawler: Crawler) -> None:
        if not crawler.settings.getbool("NEWSAGG_CONDITIONAL_DISCOVERY"):
            raise NotConfigured
        self.crawler = crawler
        self.stats = crawler.stats
        self.max_bytes = crawler.settings.getint("DOWNLOAD_MAXSIZE")  # 0: no cap

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def _store(self) -> Store | None:
        store = getattr(self.crawler.spider, "store", None)
        return store if isinstance(store, Store) else None

    def _source(self) -> str:
        source = getattr(self.crawler.spider, "source", None)
        return str(getattr(source, "name", None) or getattr(self.crawler.spider, "name", "crawl"))

    def _cap(self, request: Request) -> int | None:
        return int(request.meta.get("download_maxsize", self.max_bytes)) or None

    def process_request(self, request: Request) -> None:
        if not is_discovery_request(request):
            return None
        # A redirect copies the request, headers and all: the first URL's validators must not
        # be sent for the second.
        for name in _VALIDATORS:
            request.headers.pop(name, None)
        request.meta.pop(_ASKED, None)
        store = self._store()
        if store is None or request.meta.get(_UNCONDITIONAL):
            return None
        etag, last_modified = store.discovery_validators(request.url)
        if etag is None and last_modified is None:
            return None  # no kept body to stand in for a 304: ask plainly
        if etag:
            request.headers[b"If-None-Match"] = etag
        if last_modified:
            request.headers[b"If-Modified-Since"] = last_modified
        request.meta[_ASKED] = request.url
        self.stats.inc_value("newsagg/conditional/sent")
        return None

    def process_response(self, request: Request, response: Response) -> Request | Response:
        if not is_discovery_request(request):
            return response
        store = self._store()
        if store is None:
            return response
        if response.status == 304:
            return self._not_modified(store, request, response)
        if response.status == 200 and store.save_discovery_state(
            request.url,
            self._source(),
            _header_text(response, b"ETag"),
            _header_text(response, b"Last-Modified"),
            response.body,
            _header_text(response, b"Content-Type"),
        ):
            self.stats.inc_value("newsagg/conditional/stored")
        return response

    def _not_modified(self, store: Store, request: Request, response: Response) -> Request | Response:
        etag, last_modified, body, content_type = (None, None, None, None)
        if request.meta.get(_ASKED) == request.url:
            etag, last_modified, body, content_type = store.discovery_state(request.url, self._cap(request))
        if body is None:
            # a 304 to a plain request, or the kept body is gone or over the size cap: ask once
            # more, plainly
            if request.meta.get(_UNCONDITIONAL):
                return response  # the spider's errback reports the 304
            self.stats.inc_value("newsagg/conditional/asked_again")
            return request.replace(meta={**request.meta, _UNCONDITIONAL: True}, dont_filter=True)
        self.stats.inc_value("newsagg/conditional/not_modified")
        # A 304 may carry updated validators (RFC 9110 15.4.5): keep them with the body.
        new_etag = _header_text(response, b"ETag") or etag
        new_last_modified = _header_text(response, b"Last-Modified") or last_modified
        if (new_etag, new_last_modified) != (etag, last_modified):
            store.save_discovery_state(
                request.url, self._source(), new_etag, new_last_modified, body, content_type
            )
        headers = response.headers.copy()
        for name in (b"Content-Length", b"Content-Encoding", b"Transfer-Encoding", b"Content-Type"):
            headers.pop(name, None)
        if content_type:
            headers[b"Content-Type"] = content_type
        # a new response, not response.replace(): the 304's class may carry an encoding the
        # stored body's class (a gzipped sitemap is a plain Response) does not take
        cls = responsetypes.from_args(headers=headers, url=response.url, body=body)
        return cls(
            url=response.url,
            status=200,
            headers=headers,
            body=body,
            flags=[*response.flags, "cached"],
            request=response.request or request,
            certificate=response.certificate,
            ip_address=response.ip_address,
            protocol=response.protocol,
        )


def _header_text(response: Response, name: bytes) -> str | None:
    value = response.headers.get(name)
    text = value.decode("latin-1").strip() if value else ""
    return text or None
