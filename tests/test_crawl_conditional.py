"""Conditional requests for the crawl's discovery documents (robots.txt, sitemaps, section
pages): a second crawl with nothing new sends only conditional requests, its 304s are answered
from the store, and it changes no row. Runs the real crawl subprocess against a loopback server
that honours If-None-Match / If-Modified-Since and logs what it was sent."""

from __future__ import annotations

import gzip
import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from helpers import dump_store
from sqlalchemy import select

from pipeline.config import load_settings
from pipeline.crawl import CrawlResult, run_crawl
from pipeline.models import Source
from pipeline.sampleweb.sites import article_html, gz, listing_html, sitemap_index, url_entry, urlset
from pipeline.store.core import Store
from pipeline.store.schema import feed_state, urls

ROBOTS = "User-agent: *\nDisallow: /private/\n"
LAST_MODIFIED = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@dataclass
class Doc:
    body: bytes
    content_type: str
    etag: str | None
    last_modified: datetime | None
    encode_gzip: bool = False  # Content-Encoding: gzip when the client accepts it


@dataclass(frozen=True)
class Hit:
    path: str
    headers: dict[str, str]  # lower-case names
    status: int

    @property
    def conditional(self) -> bool:
        return "if-none-match" in self.headers or "if-modified-since" in self.headers


class ConditionalSite:
    """Documents with validators; a matching If-None-Match (or, without one, an
    If-Modified-Since not older than the document) gets a bodiless 304."""

    def __init__(self) -> None:
        self.docs: dict[str, Doc] = {}
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def add(
        self,
        path: str,
        body: str | bytes,
        content_type: str = "text/html; charset=utf-8",
        *,
        etag: bool = True,
        last_modified: datetime | None = LAST_MODIFIED,
        encode_gzip: bool = False,
    ) -> None:
        data = body.encode() if isinstance(body, str) else body
        tag = '"' + hashlib.sha1(data).hexdigest()[:16] + '"' if etag else None
        self.docs[path] = Doc(data, content_type, tag, last_modified, encode_gzip)

    def url(self, path: str) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def clear(self) -> None:
        with self._lock:
            self.hits.clear()

    def requested(self) -> list[Hit]:
        with self._lock:
            return list(self.hits)

    def paths(self) -> list[str]:
        return [hit.path for hit in self.requested()]

    def _not_modified(self, doc: Doc, headers: dict[str, str]) -> bool:
        if "if-none-match" in headers:
            tags = [t.strip() for t in headers["if-none-match"].split(",")]
            return doc.etag is not None and (doc.etag in tags or "*" in tags)
        if "if-modified-since" in headers and doc.last_modified is not None:
            try:
                return doc.last_modified <= parsedate_to_datetime(headers["if-modified-since"])
            except (TypeError, ValueError):
                return False
        return False

    def __enter__(self) -> ConditionalSite:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                doc = site.docs.get(self.path)
                status = 404 if doc is None else 304 if site._not_modified(doc, headers) else 200
                with site._lock:
                    site.hits.append(Hit(self.path, headers, status))
                self.send_response(status)
                if doc is None:
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", "9")
                    self.end_headers()
                    self.wfile.write(b"not found")
                    return
                if doc.etag:
                    self.send_header("ETag", doc.etag)
                if doc.last_modified:
                    self.send_header("Last-Modified", format_datetime(doc.last_modified, usegmt=True))
                if status == 304:
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = doc.body
                if doc.encode_gzip and "gzip" in headers.get("accept-encoding", ""):
                    body = gzip.compress(body, mtime=0)
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Type", doc.content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def site() -> Iterator[ConditionalSite]:
    with ConditionalSite() as s:
        yield s


def crawl(store_url: str, sources: list[Source], **settings: Any) -> CrawlResult:
    values: dict[str, Any] = {"store_url": store_url, "allow_private_network": True, "host_delay": 0.0}
    values.update(settings)
    return run_crawl(load_settings(values), sources, None)


def articles(site: ConditionalSite) -> list[str]:
    return sorted(p for p in site.paths() if p.startswith(("/news/", "/private/")))


def frontier(store_url: str) -> dict[str, Any]:
    store = Store(store_url)
    try:
        with store.begin() as conn:
            return {row.url: row for row in conn.execute(select(urls))}
    finally:
        store.close()


def build_daily(site: ConditionalSite, more: list[str]) -> None:
    site.add("/robots.txt", ROBOTS, "text/plain")
    site.add(
        "/sitemap_index.xml",
        sitemap_index([(site.url("/news-sitemap.xml"), None), (site.url("/more-sitemap.xml.gz"), None)]),
        "application/xml",
    )
    site.add(
        "/news-sitemap.xml",
        urlset(
            [
                url_entry(site.url("/news/alpha"), news_title="Alpha", published="2026-11-20T09:00:00Z"),
                url_entry(site.url("/private/embargoed"), news_title="Embargoed"),
            ]
        ),
        "application/xml",
        encode_gzip=True,
    )  # kept decoded, after HttpCompression
    site.add(
        "/more-sitemap.xml.gz",
        gz(urlset(url_entry(site.url(p)) for p in more)),
        "application/gzip",
        etag=False,
    )  # Last-Modified only: If-Modified-Since
    for path in ("/news/alpha", "/private/embargoed", "/news/beta", "/news/gamma", "/private/second"):
        site.add(path, article_html(path, f"The report at {path}. " * 30))


def test_second_crawl_asks_only_conditionally_and_changes_nothing(
    site: ConditionalSite, store_url: str
) -> None:
    build_daily(site, more=["/news/beta"])
    source = Source("daily", "sitemap", site.url("/sitemap_index.xml"))
    discovery = ["/robots.txt", "/sitemap_index.xml", "/news-sitemap.xml", "/more-sitemap.xml.gz"]

    first = crawl(store_url, [source])
    assert (first.ok, first.failed, first.discovered) == (["daily"], {}, 3)
    assert articles(site) == ["/news/alpha", "/news/beta"]  # robots.txt disallows /private/
    assert all(not hit.conditional and hit.status == 200 for hit in site.requested())
    assert first.stats["newsagg/conditional/stored"] == 4

    before = dump_store(store_url)
    site.clear()
    second = crawl(store_url, [source])
    assert (second.ok, second.failed, second.discovered) == (["daily"], {}, 0)
    hits = site.requested()
    assert sorted(hit.path for hit in hits) == sorted(discovery)  # no article, no 200
    for hit in hits:
        assert hit.status == 304, hit
        if hit.path == "/more-sitemap.xml.gz":
            assert "if-none-match" not in hit.headers
            assert hit.headers["if-modified-since"] == "Fri, 20 Nov 2026 10:00:00 GMT"
        else:
            assert hit.headers["if-none-match"] == site.docs[hit.path].etag
    assert second.stats["newsagg/conditional/not_modified"] == 4
    assert "newsagg/conditional/stored" not in second.stats
    assert dump_store(store_url) == before  # not one row changed

    # The second sitemap changed (new Last-Modified); robots.txt and the index did not.
    build_daily(site, more=["/news/beta", "/news/gamma", "/private/second"])
    site.docs["/more-sitemap.xml.gz"].last_modified = datetime(2026, 11, 21, tzinfo=UTC)
    site.clear()
    third = crawl(store_url, [source])
    assert (third.ok, third.failed, third.discovered) == (["daily"], {}, 2)
    status = {hit.path: hit.status for hit in site.requested()}
    assert status == {
        "/robots.txt": 304,
        "/sitemap_index.xml": 304,
        "/news-sitemap.xml": 304,
        "/more-sitemap.xml.gz": 200,
        "/news/gamma": 200,
    }
    # robots.txt answered 304: its rules came from the store, and still hold
    assert third.stats["robotstxt/forbidden"] == 1
    second_private = frontier(store_url)[site.url("/private/second")]
    assert second_private.status == "dropped" and "robots.txt" in second_private.error

    after_third = dump_store(store_url)
    site.clear()
    fourth = crawl(store_url, [source])
    assert fourth.discovered == 0 and articles(site) == []
    assert all(hit.conditional and hit.status == 304 for hit in site.requested())
    assert dump_store(store_url) == after_third


def test_section_pages_are_asked_for_conditionally(site: ConditionalSite, sqlite_url: str) -> None:
    site.add("/robots.txt", ROBOTS, "text/plain", etag=False)
    site.add("/world/", listing_html([("/news/a", "A"), ("/news/b", "B")], "/world/2"))
    site.add("/world/2", listing_html([("/news/c", "C")]))
    for path in ("/news/a", "/news/b", "/news/c"):
        site.add(path, article_html(path, f"The report at {path}. " * 30))
    source = Source(
        "gazette", "html", site.url("/world/"), links="a.story-link", next_page="a.next", max_pages=2
    )

    first = crawl(sqlite_url, [source])
    assert (first.ok, first.discovered) == (["gazette"], 3)
    before = dump_store(sqlite_url)
    site.clear()
    second = crawl(sqlite_url, [source])
    # the stand-in responses are HTML responses: the selectors found the links again
    assert (second.ok, second.failed, second.discovered) == (["gazette"], {}, 0)
    assert sorted(site.paths()) == ["/robots.txt", "/world/", "/world/2"]
    assert all(hit.conditional and hit.status == 304 for hit in site.requested())
    assert dump_store(sqlite_url) == before


def test_a_document_without_validators_is_neither_kept_nor_asked_for_conditionally(
    site: ConditionalSite, sqlite_url: str
) -> None:
    site.add("/robots.txt", ROBOTS, "text/plain", etag=False, last_modified=None)
    site.add(
        "/sitemap.xml",
        urlset([url_entry(site.url("/news/a"))]),
        "application/xml",
        etag=False,
        last_modified=None,
    )
    site.add("/news/a", article_html("A", "The report. " * 30))
    source = Source("plain", "sitemap", site.url("/sitemap.xml"))
    crawl(sqlite_url, [source])
    site.clear()
    again = crawl(sqlite_url, [source])
    assert again.ok == ["plain"]
    assert sorted(site.paths()) == ["/robots.txt", "/sitemap.xml"]
    assert not any(hit.conditional for hit in site.requested())
    assert dump_store(sqlite_url)["feed_state"] == []


def test_a_kept_body_gone_from_the_store_means_a_plain_request(
    site: ConditionalSite, sqlite_url: str
) -> None:
    site.add("/robots.txt", ROBOTS, "text/plain")
    site.add("/sitemap.xml", urlset([url_entry(site.url("/news/a"))]), "application/xml")
    site.add("/news/a", article_html("A", "The report. " * 30))
    source = Source("s", "sitemap", site.url("/sitemap.xml"))
    crawl(sqlite_url, [source])
    store = Store(sqlite_url)
    try:
        with store.begin() as conn:
            conn.execute(
                feed_state.update().where(feed_state.c.url == site.url("/sitemap.xml")).values(body_gz=None)
            )
    finally:
        store.close()
    site.clear()
    again = crawl(sqlite_url, [source])
    assert (again.ok, again.failed) == (["s"], {})
    status = {hit.path: (hit.conditional, hit.status) for hit in site.requested()}
    assert status == {"/robots.txt": (True, 304), "/sitemap.xml": (False, 200)}


def test_store_discovery_state(store: Store) -> None:
    url, body = "https://n.example/sitemap.xml", b"<urlset/>" * 1000
    assert store.discovery_state(url) == (None, None, None, None)
    assert not store.save_discovery_state(url, "s", None, None, body, "application/xml")
    assert store.discovery_state(url) == (None, None, None, None)  # no validators: not kept
    assert store.save_discovery_state(url, "s", '"1"', None, body, "application/xml")
    assert not store.save_discovery_state(url, "s", '"1"', None, body, "application/xml")
    assert not store.save_discovery_state(url, "other", '"1"', None, body, "application/xml")
    assert store.discovery_state(url) == ('"1"', None, body, "application/xml")
    assert store.discovery_state(url, max_bytes=len(body))[2] == body
    assert store.discovery_state(url, max_bytes=len(body) - 1)[2] is None  # over the cap
    assert store.save_discovery_state(
        url, "s", '"2"', "Fri, 20 Nov 2026 10:00:00 GMT", body + b"x", "text/xml"
    )
    assert store.discovery_state(url) == ('"2"', "Fri, 20 Nov 2026 10:00:00 GMT", body + b"x", "text/xml")
    assert store.save_discovery_state(url, "s", "x" * 600, None, body, None)  # oversized ETag
    assert store.discovery_state(url) == (None, None, None, None)
    with store.engine.connect() as conn:
        row = conn.execute(select(feed_state)).one()
    assert row.body_gz is None and row.fetched_at is not None
