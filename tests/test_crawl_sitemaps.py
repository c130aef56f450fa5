"""The crawl's rules without a crawl: sitemap parsing (real fixtures, hostile documents) and
the choice of what to fetch."""

from __future__ import annotations

import gzip
import resource
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import shared_path

from pipeline.crawl import (
    SitemapError,
    article_url,
    gunzip_bounded,
    parse_sitemap,
    sitemap_discoveries,
    worth_fetching,
)
from pipeline.sampleweb.sites import billion_laughs, sitemap_index, url_entry, urlset
from pipeline.store.core import Discovered


def _peak_rss_mb() -> float:
    """The process's peak resident size: counts libxml2's C allocations, which tracemalloc
    does not see. A peak it already had hides smaller growth, never a bomb's gigabytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _fixtures() -> list[Path]:
    return sorted(p for p in shared_path("data", "sitemaps").glob("*/*") if p.is_file())


def test_every_shared_fixture_parses_or_is_refused_with_a_reason() -> None:
    parsed: dict[str, object] = {}
    for path in _fixtures():
        body = path.read_bytes()
        if "sitemap" in path.name:
            parsed[path.name] = parse_sitemap(body, base_url="http://www.example.com/")
        else:  # the feeds and the JSON feed kept beside them are not sitemaps, and say so
            with pytest.raises(SitemapError, match=r"not a sitemap|malformed XML"):
                parse_sitemap(body)
    assert len(parsed) >= 12

    news = parsed["stormcrawler.sitemap.extensions.news.xml"]
    assert news.kind == "urlset"  # type: ignore[attr-defined]
    entry = news.entries[0]  # type: ignore[attr-defined]
    assert entry.title and entry.published_at is not None

    index = parsed["sitemap2.xml"]  # <loc> in CDATA, lastmod as a date and as a datetime
    assert index.kind == "sitemapindex"  # type: ignore[attr-defined]
    assert [e.loc for e in index.entries] == [  # type: ignore[attr-defined]
        "http://www.example.com/sitemap1.xml.gz",
        "http://www.example.com/sitemap2.xml.gz",
    ]
    assert index.entries[0].lastmod == datetime(2004, 10, 1, 18, 23, 17, tzinfo=UTC)  # type: ignore[attr-defined]

    for plain, packed in (
        ("sitemap.xml", "sitemap.xml.gz"),
        ("stormcrawler.sitemap.xml", "stormcrawler.sitemap.xml.gz"),
    ):
        assert parsed[plain].entries  # type: ignore[attr-defined]
        assert parsed[packed] == parsed[plain]
    assert parsed["stormcrawler.sitemap.index.xml"].kind == "sitemapindex"  # type: ignore[attr-defined]


def test_google_news_fields_and_relative_locs() -> None:
    body = urlset(
        [
            url_entry(
                "/news/a",
                lastmod="2026-11-20T10:05:00+01:00",
                news_title="  Alpha\n story ",
                published="2026-11-20T09:00:00Z",
            ),
            url_entry("ftp://example.com/file"),
            "<url><lastmod>2026-11-20</lastmod></url>",  # no loc: skipped
        ]
    ).encode()
    sitemap = parse_sitemap(body, base_url="https://example.com/sitemap.xml")
    assert len(sitemap.entries) == 1
    entry = sitemap.entries[0]
    assert entry.loc == "https://example.com/news/a"
    assert entry.title == "Alpha story"
    assert entry.published_at == datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    assert entry.lastmod == datetime(2026, 11, 20, 9, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    "body, reason",
    [
        (billion_laughs(9), "declares XML entities"),
        (billion_laughs(3), "declares XML entities"),  # small enough for libxml2's own guard
        (
            '<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            "<urlset><url><loc>&x;</loc></url></urlset>",
            "declares XML entities",
        ),
        (
            '<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY a "' + "x" * 100_000 + '">]><urlset>'
            "<url><loc>" + "&a;" * 50_000 + "</loc></url></urlset>",
            "declares XML entities",
        ),
    ],
)
def test_entity_tricks_are_refused_quickly_in_bounded_memory(body: str, reason: str) -> None:
    before = _peak_rss_mb()
    with pytest.raises(SitemapError, match=reason):
        parse_sitemap(body.encode())
    assert _peak_rss_mb() - before < 50  # refused before expanding: memory is the behaviour


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"", "empty document"),
        (urlset([url_entry("http://example.com/a")]).encode()[:-30], r"malformed XML: .*line \d+"),
        (b"<html><body><p>Not found</p></body></html>", "not a sitemap: the root element is <html>"),
        (b"<!DOCTYPE html><html><head><meta charset=utf-8></head></html>", "not a sitemap"),
        (gzip.compress(b"x")[:10] + b"\xff" * 20, "corrupt gzip data"),
        (gzip.compress(urlset([]).encode())[:-12], "truncated"),
    ],
)
def test_broken_sitemaps_say_why(body: bytes, reason: str) -> None:
    with pytest.raises(SitemapError, match=reason):
        parse_sitemap(body)


def test_gzip_bomb_stops_at_the_cap() -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)
    before = _peak_rss_mb()
    with pytest.raises(SitemapError, match="inflates beyond 1048576 bytes"):
        parse_sitemap(bomb, max_bytes=1024 * 1024)
    assert _peak_rss_mb() - before < 50
    assert gunzip_bounded(gzip.compress(b"abc"), 3) == b"abc"


def test_a_full_size_sitemap_parses_whole() -> None:
    body = urlset(
        url_entry(f"https://example.com/a/{i}", lastmod="2026-11-20") for i in range(50_000)
    ).encode()  # the protocol's maximum entry count; its parse time is a benchmark's business
    sitemap = parse_sitemap(body)
    assert len(sitemap.entries) == 50_000
    assert sitemap.entries[-1].loc == "https://example.com/a/49999"


def test_since_filters_by_publication_then_lastmod() -> None:
    index = parse_sitemap(
        sitemap_index(
            [("http://e.com/new.xml", "2026-11-20"), ("http://e.com/old.xml", "2026-01-01")]
        ).encode()
    )
    assert index.kind == "sitemapindex"
    entries = parse_sitemap(
        urlset(
            [
                url_entry("http://e.com/fresh", published="2026-11-20T08:00:00Z"),
                url_entry(
                    "http://e.com/stale", published="2026-10-01T08:00:00Z", lastmod="2026-11-21"
                ),  # revised lately, published before: not taken
                url_entry("http://e.com/touched", lastmod="2026-11-21"),
                url_entry("http://e.com/undated"),
                url_entry("http://e.com/Undated?utm_source=x#top"),
            ]
        ).encode()
    ).entries
    since = datetime(2026, 11, 15, tzinfo=UTC)
    found = sitemap_discoveries(entries, "src", since)
    assert [d.url for d in found] == [
        "http://e.com/fresh",
        "http://e.com/touched",
        "http://e.com/undated",
        "http://e.com/Undated",
    ]
    assert len(sitemap_discoveries(entries, "src", None)) == 5


def test_worth_fetching_new_or_moved_only() -> None:
    t1, t2 = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)
    found = [
        Discovered("http://e.com/new", "s", lastmod=t1),
        Discovered("http://e.com/same", "s", lastmod=t1),
        Discovered("http://e.com/moved", "s", lastmod=t2),
        Discovered("http://e.com/undated", "s"),
        Discovered("http://e.com/first-dated", "s", lastmod=t1),
        Discovered("http://e.com/new", "s", lastmod=t1),
    ]
    known = {
        "http://e.com/same": t1,
        "http://e.com/moved": t1,
        "http://e.com/undated": t1,
        "http://e.com/first-dated": None,
    }
    assert [d.url for d in worth_fetching(found, known)] == [
        "http://e.com/new",
        "http://e.com/moved",
        "http://e.com/first-dated",
    ]


def test_article_url() -> None:
    assert article_url("../b?utm_source=x&id=2#c", "https://E.com/a/x") == "https://e.com/b?id=2"
    assert article_url("mailto:x@e.com", "https://e.com/") is None
    assert article_url("  ", "https://e.com/") is None
