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
from scrapy.utils.httpobj import urlparse_cached

from pipeline.errors import NewsaggError, RefusedError
from pipeline.http import check_url, parse_retry_after

host_blocked = object()  # signal(netloc: str, reason: str): no more requests there this run


class Refused(IgnoreRequest):
    """A request newsagg will not make at all (private address, bad scheme)."""


class HostBlocked(IgnoreRequest):
    """A host left alone for the rest of this run; its URLs stay pending for the next."""


def _netloc(request: Request) -> str:
    return urlparse_cached(request).netloc.lower()


def _is_robots_request(request: Request) -> bool:
    return bool(request.meta.get("dont_obey_robotstxt")) and \
        urlparse_cached(request).path == "/robots.txt"


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
            host_blocked, netloc=netloc,
            reason=f"robots.txt of {netloc} {why}: not crawling that host this run")

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

    async def process_response(self, request: Request, response: Response) -> Request | Response:
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
                host_blocked, netloc=netloc,
                reason=f"{netloc} asked for a {wait:.0f} s pause (Retry-After), more than the "
                       f"{self.cap:.0f} s cap: deferred to the next run")
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
