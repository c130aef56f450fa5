"""Extensions: robots.txt Crawl-delay, which Scrapy parses but never applies."""

from __future__ import annotations

from typing import Any, Self

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Response


class CrawlDelay:
    """A host's Crawl-delay (capped at ``NEWSAGG_ROBOTS_CRAWL_DELAY_CAP``) becomes the floor of
    its download slot's delay. AutoThrottle lowers slot delays after each response; this
    extension is enabled after it (EXTENSIONS order), so its handler runs later and restores
    the floor. ``DOWNLOAD_SLOTS`` carries the floor to a slot recreated after idling."""

    def __init__(self, crawler: Crawler) -> None:
        if not crawler.settings.getbool("ROBOTSTXT_OBEY"):
            raise NotConfigured
        self.crawler = crawler
        self.cap = crawler.settings.getfloat("NEWSAGG_ROBOTS_CRAWL_DELAY_CAP")
        self.agent = crawler.settings.get("ROBOTSTXT_USER_AGENT") or crawler.settings.get("USER_AGENT")
        self.floors: dict[str, float] = {}
        crawler.signals.connect(self.robots_parsed, signal=signals.robots_parsed)
        crawler.signals.connect(self.response_downloaded, signal=signals.response_downloaded)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def robots_parsed(self, robotparser: Any, request: Request) -> None:
        asked = robotparser.crawl_delay(self.agent)
        if not asked or asked <= 0:
            return
        floor = min(float(asked), self.cap)
        downloader = self.crawler.engine.downloader
        key = downloader.get_slot_key(request)
        self.floors[key] = floor
        downloader.per_slot_settings.setdefault(key, {})["delay"] = max(
            floor, self.crawler.settings.getfloat("DOWNLOAD_DELAY")
        )
        self.crawler.stats.set_value(f"newsagg/crawl_delay/{key}", floor)
        self._raise(key)

    def response_downloaded(self, response: Response, request: Request) -> None:
        key = request.meta.get("download_slot")
        if key in self.floors:
            self._raise(key)

    def _raise(self, key: str) -> None:
        slot = self.crawler.engine.downloader.slots.get(key)
        if slot is not None and slot.delay < self.floors[key]:
            slot.delay = self.floors[key]
