"""Loopback web sites for the crawl tests and the crawl benchmark, in the spirit of Scrapy's
mock server: routes are plain data a test can change between crawls, and every request is
logged with its arrival time so a test can prove what was (never) asked for, and how spaced.
Here, in the package, because benchmarks/crawl_speed.py serves the same sites as the tests.

    with Site() as site:
        site.add("/robots.txt", "User-agent: *\\nDisallow: /private/\\n", "text/plain")
        site.add("/sitemap.xml", urlset([entry(site.url("/a"))]), "application/xml")
        ...
        site.paths()  # ["/robots.txt", "/sitemap.xml", ...]
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from xml.sax.saxutils import escape

from pipeline.sampleweb.loopback import Exchange, LoopbackServer, RequestRecord


@dataclass
class Page:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    hang_up: bool = False  # close the connection without answering


Route = Page | Callable[[int], Page]  # a callable gets the how-many-th request this is (1, 2, ...)


class Site:
    """A loopback web site on ``host`` (any 127.x.y.z address is loopback on Linux)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.routes: dict[str, Route] = {}
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = LoopbackServer(self._answer, host=host, name=host)

    # -- content -------------------------------------------------------------------------------

    def add(
        self,
        path: str,
        body: str | bytes | Route,
        content_type: str | None = None,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        if isinstance(body, Page) or callable(body):
            self.routes[path] = body
            return
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.routes[path] = Page(
            status, data, content_type or "text/html; charset=utf-8", dict(headers or {})
        )

    def add_article(self, path: str, title: str, text: str = "") -> str:
        self.add(path, article_html(title, text or f"{title}. " * 40))
        return self.url(path)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    @property
    def base_url(self) -> str:
        assert self._server.running, "start the site first"
        return self._server.base_url

    # -- what happened -------------------------------------------------------------------------

    @property
    def hits(self) -> list[RequestRecord]:
        """Every request so far, oldest first."""
        return self._server.requests

    def paths(self) -> list[str]:
        return [hit.path for hit in self.hits]

    def times(self, predicate: Callable[[str], bool] = lambda _: True) -> list[float]:
        return [hit.time for hit in self.hits if predicate(hit.path)]

    def clear(self) -> None:
        self._server.clear_requests()

    # -- server --------------------------------------------------------------------------------

    def _answer(self, ex: Exchange) -> None:
        with self._lock:
            count = self._counts[ex.path] = self._counts.get(ex.path, 0) + 1
        route = self.routes.get(ex.path)
        if route is None:
            page = Page(404, b"Not Found\n", "text/plain")
        else:
            page = route(count) if callable(route) else route
        if page.hang_up:
            ex.record.status = page.status
            ex.close_connection = True
            return
        ex.respond(page.status, page.body, content_type=page.content_type, headers=page.headers)

    def start(self) -> Site:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Site:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# -- documents -------------------------------------------------------------------------------

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"


def article_html(title: str, text: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head><body><article><h1>{escape(title)}</h1>"
        f"<p>{escape(text)}</p></article></body></html>"
    )


def url_entry(
    loc: str, lastmod: str | None = None, news_title: str | None = None, published: str | None = None
) -> str:
    parts = [f"<url><loc>{escape(loc)}</loc>"]
    if lastmod:
        parts.append(f"<lastmod>{lastmod}</lastmod>")
    if news_title or published:
        parts.append(
            "<news:news><news:publication><news:name>Test Daily</news:name>"
            "<news:language>en</news:language></news:publication>"
        )
        if published:
            parts.append(f"<news:publication_date>{published}</news:publication_date>")
        if news_title:
            parts.append(f"<news:title>{escape(news_title)}</news:title>")
        parts.append("</news:news>")
    parts.append("</url>")
    return "".join(parts)


def urlset(entries: Iterable[str]) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="{SITEMAP_NS}" '
        f'xmlns:news="{NEWS_NS}">\n' + "\n".join(entries) + "\n</urlset>\n"
    )


def sitemap_index(children: Iterable[tuple[str, str | None]]) -> str:
    items = "".join(
        f"<sitemap><loc>{escape(loc)}</loc>"
        + (f"<lastmod>{lastmod}</lastmod>" if lastmod else "")
        + "</sitemap>"
        for loc, lastmod in children
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex xmlns="{SITEMAP_NS}">{items}</sitemapindex>\n'
    )


def gz(text: str) -> bytes:
    return gzip.compress(text.encode("utf-8"), mtime=0)


def billion_laughs(levels: int = 9) -> str:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, levels + 1)
    ]
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE urlset [\n{chr(10).join(entities)}\n]>\n'
        f'<urlset xmlns="{SITEMAP_NS}"><url><loc>http://example.com/&lol{levels};</loc>'
        "</url></urlset>\n"
    )


def listing_html(links: Iterable[tuple[str, str]], next_href: str | None = None) -> str:
    items = "".join(
        f'<li><h2><a class="story-link" href="{escape(href)}">{escape(text)}</a>'
        f'</h2></li><li><a class="ad" href="/ads/{i}">Sponsored</a></li>'
        for i, (href, text) in enumerate(links)
    )
    pager = f'<a class="next" href="{escape(next_href)}">Older</a>' if next_href else ""
    return (
        f"<!DOCTYPE html><html><head><title>Section</title></head><body><ul>{items}</ul>"
        f"<nav>{pager}</nav></body></html>"
    )
