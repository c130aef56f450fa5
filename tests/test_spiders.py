"""The Scrapy crawl end to end: ``run_crawl`` starts the real subprocess against sites served
on 127.0.0.1 (``pipeline/sampleweb/sites.py``), and the tests read the servers' request logs and the store."""

from __future__ import annotations

import importlib
import itertools
import json
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import shared_path
from sqlalchemy import select

from pipeline import crawl as crawl_module
from pipeline.cli import main as newsagg
from pipeline.config import load_settings
from pipeline.crawl import CrawlResult, run_crawl
from pipeline.errors import NewsaggError
from pipeline.models import Source
from pipeline.sampleweb.sites import (
    Page,
    Site,
    billion_laughs,
    gz,
    listing_html,
    sitemap_index,
    url_entry,
    urlset,
)
from pipeline.store.core import Store
from pipeline.store.schema import drops, pages, urls

XML, GZIP, TEXT = "application/xml", "application/gzip", "text/plain"
ROBOTS = "User-agent: *\nDisallow: /private/\n"


def crawl(
    tmp_path: Path,
    sources: list[Source],
    since: datetime | None = None,
    scrapy_settings: dict[str, Any] | None = None,
    **settings: Any,
) -> CrawlResult:
    values: dict[str, Any] = {
        "store_url": f"sqlite:///{tmp_path / 'store.db'}",
        "allow_private_network": True,
        "host_delay": 0.05,
    }
    values.update(settings)
    return run_crawl(load_settings(values), sources, since, scrapy_settings=scrapy_settings)


def rows(tmp_path: Path, table: Any) -> dict[str, Any]:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        with store.begin() as conn:
            return {row.url: row for row in conn.execute(select(table))}
    finally:
        store.close()


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(sorted(times))]


def spaced(times: list[float], delay: float) -> bool:
    """Requests spaced by ``delay``, judged so that load alone does not fail it: on average
    at least three quarters of it apart and never two at once (no gap under a quarter of it).
    A busy server stamps a request late and so shortens the next gap, and the first request also
    opens the connection; a crawler that ignored the delay would be far below both marks."""
    ordered = sorted(times)
    mean = (ordered[-1] - ordered[0]) / (len(ordered) - 1)
    return mean >= delay * 0.75 and min(gaps(ordered)) >= delay / 4


def articles_requested(site: Site) -> list[str]:
    return [p for p in site.paths() if p.startswith(("/news/", "/archive/", "/private/"))]


@pytest.fixture
def site() -> Iterator[Site]:
    with Site() as s:
        yield s


@pytest.fixture
def other_site() -> Iterator[Site]:
    with Site("127.0.0.2") as s:  # another loopback host: its own politeness slot
        yield s


# -- sitemaps --------------------------------------------------------------------------------------


def build_daily(site: Site, archive_lastmod: str = "2026-10-01") -> None:
    site.add("/robots.txt", ROBOTS, TEXT)
    site.add(
        "/sitemap_index.xml.gz",
        gz(
            sitemap_index(
                [
                    (site.url("/news-sitemap.xml.gz"), "2026-11-20T10:00:00Z"),
                    (site.url("/archive-sitemap.xml"), "2026-10-31"),
                ]
            )
        ),
        GZIP,
    )
    site.add(
        "/news-sitemap.xml.gz",
        gz(
            urlset(
                [
                    url_entry(
                        site.url("/news/alpha"), news_title="Alpha falls", published="2026-11-20T09:00:00Z"
                    ),
                    url_entry(
                        site.url("/news/beta?utm_source=feed"),
                        news_title="Beta rises",
                        published="2026-11-20T08:00:00+02:00",
                    ),
                    url_entry(
                        site.url("/private/embargoed"),
                        news_title="Embargoed",
                        published="2026-11-20T07:00:00Z",
                    ),
                ]
            )
        ),
        GZIP,
    )
    site.add(
        "/archive-sitemap.xml", urlset([url_entry(site.url("/archive/old"), lastmod=archive_lastmod)]), XML
    )
    for path, title in (
        ("/news/alpha", "Alpha falls"),
        ("/news/beta?utm_source=feed", "x"),
        ("/news/beta", "Beta rises"),
        ("/private/embargoed", "Secret"),
        ("/archive/old", "Old story"),
    ):
        site.add_article(path, title)


def test_sitemap_index_gzip_news_robots_spacing_and_incremental(tmp_path: Path, site: Site) -> None:
    build_daily(site)
    source = Source("daily", "sitemap", site.url("/sitemap_index.xml.gz"))
    result = crawl(tmp_path, [source], host_delay=0.1)

    assert (result.ok, result.failed, result.discovered) == (["daily"], {}, 4)
    paths = site.paths()
    assert paths[0] == "/robots.txt"
    assert {"/sitemap_index.xml.gz", "/news-sitemap.xml.gz", "/archive-sitemap.xml"} <= set(paths)
    assert "/private/embargoed" not in paths  # listed, but robots.txt disallows it
    assert sorted(articles_requested(site)) == ["/archive/old", "/news/alpha", "/news/beta"]
    # one host, host_delay 0.1 between requests (less up to 20 ms: a first request also
    # opens the connection, so it reaches the server later than it left)
    assert spaced(site.times(), 0.1)

    frontier = rows(tmp_path, urls)
    alpha, beta = frontier[site.url("/news/alpha")], frontier[site.url("/news/beta")]
    assert alpha.hint_title == "Alpha falls" and alpha.status == "fetched"
    assert alpha.hint_published_at.replace(tzinfo=UTC) == datetime(2026, 11, 20, 9, tzinfo=UTC)
    assert beta.hint_published_at.replace(tzinfo=UTC) == datetime(2026, 11, 20, 6, tzinfo=UTC)
    embargoed = frontier[site.url("/private/embargoed")]
    assert embargoed.status == "dropped" and "robots.txt" in embargoed.error
    stored = rows(tmp_path, pages)
    assert set(stored) == {site.url(p) for p in ("/news/alpha", "/news/beta", "/archive/old")}
    assert result.stats["item_scraped_count"] == 4
    assert result.stats["robotstxt/forbidden"] == 1

    site.clear()  # second run, nothing changed: sitemaps again, no article page
    again = crawl(tmp_path, [source], host_delay=0.1)
    assert (again.ok, again.discovered) == (["daily"], 0)
    assert "/news-sitemap.xml.gz" in site.paths() and articles_requested(site) == []

    site.clear()  # the archive entry's lastmod moved: that page alone is fetched again
    build_daily(site, archive_lastmod="2026-11-22")
    site.add_article("/archive/old", "Old story, revised")
    moved = crawl(tmp_path, [source], host_delay=0.1)
    assert (moved.ok, moved.discovered) == (["daily"], 1)
    assert articles_requested(site) == ["/archive/old"]
    assert (
        rows(tmp_path, pages)[site.url("/archive/old")].body_sha256
        != stored[site.url("/archive/old")].body_sha256
    )


def test_since_skips_old_sitemaps_and_old_articles(tmp_path: Path, site: Site) -> None:
    site.add("/robots.txt", ROBOTS, TEXT)
    site.add(
        "/index.xml",
        sitemap_index([(site.url("/recent.xml"), "2026-11-20"), (site.url("/2025.xml"), "2025-12-31")]),
        XML,
    )
    site.add(
        "/recent.xml",
        urlset(
            [
                url_entry(site.url("/news/new"), published="2026-11-20T10:00:00Z"),
                url_entry(site.url("/news/old"), published="2026-10-01T10:00:00Z"),
                url_entry(site.url("/news/undated")),
            ]
        ),
        XML,
    )
    site.add("/2025.xml", urlset([url_entry(site.url("/news/ancient"))]), XML)
    for path in ("/news/new", "/news/old", "/news/undated", "/news/ancient"):
        site.add_article(path, path)

    result = crawl(
        tmp_path, [Source("s", "sitemap", site.url("/index.xml"))], since=datetime(2026, 11, 1, tzinfo=UTC)
    )

    assert result.ok == ["s"]
    assert "/2025.xml" not in site.paths()
    assert sorted(articles_requested(site)) == ["/news/new", "/news/undated"]
    assert set(rows(tmp_path, urls)) == {site.url("/news/new"), site.url("/news/undated")}


def test_broken_and_hostile_sitemaps_fail_their_source_clearly(tmp_path: Path, site: Site) -> None:
    site.add("/robots.txt", ROBOTS, TEXT)
    site.add("/good.xml", urlset([url_entry(site.url("/news/fine"))]), XML)
    site.add_article("/news/fine", "Fine")
    site.add("/malformed.xml", urlset([url_entry(site.url("/news/a"))])[:-25], XML)
    site.add("/bomb.xml", billion_laughs(), XML)
    site.add("/soft404.xml", "<html><body>Page not found</body></html>", "text/html")
    site.add("/gzbomb.xml.gz", gz("<urlset>" + " " * (3 * 1024 * 1024)), GZIP)
    names = {
        "malformed": "/malformed.xml",
        "bomb": "/bomb.xml",
        "soft404": "/soft404.xml",
        "gzbomb": "/gzbomb.xml.gz",
        "gone": "/gone.xml",
        "good": "/good.xml",
    }
    sources = [Source(name, "sitemap", site.url(path)) for name, path in names.items()]

    result = crawl(tmp_path, sources, max_bytes=1024 * 1024)

    assert result.ok == ["good"]
    why = result.failed
    assert "malformed XML" in why["malformed"]
    assert "declares XML entities" in why["bomb"]
    assert "not a sitemap: the root element is <html>" in why["soft404"]
    assert "inflates beyond 1048576 bytes" in why["gzbomb"]
    assert why["gone"].endswith("/gone.xml: HTTP 404")
    assert all(site.url(names[n]) in why[n] for n in why if n != "gzbomb")
    recorded = {row.source: row for row in rows(tmp_path, drops).values()}
    assert set(recorded) == set(why)
    assert all(row.stage == "crawl" and row.reason == why[name] for name, row in recorded.items())
    assert articles_requested(site) == ["/news/fine"]

    site.routes["/bomb.xml"] = site.routes["/good.xml"]  # fixed: the source's drop is cleared
    fixed = crawl(tmp_path, [sources[1]])
    assert fixed.ok == ["bomb"]
    assert "bomb" not in {row.source for row in rows(tmp_path, drops).values()}


# -- politeness ------------------------------------------------------------------------------------


def test_robots_txt_5xx_or_unreachable_means_no_crawl(tmp_path: Path, site: Site, other_site: Site) -> None:
    for s in (site, other_site):
        s.add("/sitemap.xml", urlset([url_entry(s.url("/news/a"))]), XML)
        s.add_article("/news/a", "A")
    site.add("/robots.txt", "busy", TEXT, status=503)
    other_site.add("/robots.txt", Page(hang_up=True))

    result = crawl(
        tmp_path,
        [
            Source("busy", "sitemap", site.url("/sitemap.xml")),
            Source("down", "sitemap", other_site.url("/sitemap.xml")),
        ],
    )

    assert result.ok == []
    assert "answered 503: not crawling that host this run" in result.failed["busy"]
    assert "is unreachable" in result.failed["down"]
    assert set(site.paths()) == {"/robots.txt"}  # retried, then nothing else at all
    assert set(other_site.paths()) == {"/robots.txt"}
    assert result.stats["newsagg/robots_blocked_hosts"] == 2


def test_crawl_delay_is_honoured_up_to_the_cap(tmp_path: Path, site: Site, other_site: Site) -> None:
    for s, delay in ((site, "0.4"), (other_site, "30")):
        s.add("/robots.txt", f"User-agent: *\nCrawl-delay: {delay}\n", TEXT)
        s.add("/sitemap.xml", urlset([url_entry(s.url(f"/news/{i}")) for i in range(3)]), XML)
        for i in range(3):
            s.add_article(f"/news/{i}", f"Story {i}")

    result = crawl(
        tmp_path,
        [
            Source("slow", "sitemap", site.url("/sitemap.xml")),
            Source("capped", "sitemap", other_site.url("/sitemap.xml")),
        ],
        host_delay=0.05,
        robots_crawl_delay_cap=0.6,
    )

    assert sorted(result.ok) == ["capped", "slow"]
    assert len(site.paths()) == len(other_site.paths()) == 5
    assert spaced(site.times(), 0.4)
    assert spaced(other_site.times(), 0.6)
    assert max(gaps(other_site.times())) < 30  # 30 s asked, 0.6 s given


def test_retry_after_is_waited_for_or_defers_the_host(tmp_path: Path, site: Site, other_site: Site) -> None:
    site.add("/robots.txt", ROBOTS, TEXT)
    site.add("/sitemap.xml", urlset([url_entry(site.url(f"/news/{n}")) for n in "ab"]), XML)
    busy_once = Page(503, b"busy", TEXT, {"Retry-After": "1"})
    site.add("/news/a", lambda n: busy_once if n == 1 else Page(200, b"<html>a</html>"))
    site.add_article("/news/b", "B")
    other_site.add("/robots.txt", ROBOTS, TEXT)
    other_site.add("/sitemap.xml", urlset([url_entry(other_site.url(f"/news/{n}")) for n in "xyz"]), XML)
    other_site.add("/news/x", Page(429, b"slow down", TEXT, {"Retry-After": "3600"}))
    other_site.add("/news/y", Page(429, b"slow down", TEXT, {"Retry-After": "3600"}))
    other_site.add("/news/z", Page(429, b"slow down", TEXT, {"Retry-After": "3600"}))

    result = crawl(
        tmp_path,
        [
            Source("patient", "sitemap", site.url("/sitemap.xml")),
            Source("deferred", "sitemap", other_site.url("/sitemap.xml")),
        ],
        retry_after_cap=5,
    )

    assert result.ok == ["patient"]
    refused = [h for h in site.hits if h.status == 503]
    assert len(refused) == 1
    after = [h for h in site.hits if h.time > refused[0].time]
    assert after and all(h.time - refused[0].time >= 0.95 for h in after)  # the host waited
    assert rows(tmp_path, urls)[site.url("/news/a")].status == "fetched"
    assert "3600 s pause (Retry-After), more than the 5 s cap" in result.failed["deferred"]
    asked = [p for p in other_site.paths() if p.startswith("/news/")]
    assert len(asked) == 1  # the first 429; the rest of the host waits for the next run
    frontier = rows(tmp_path, urls)
    states = sorted(frontier[other_site.url(f"/news/{n}")].status for n in "xyz")
    assert states == ["failed", "pending", "pending"]


def test_page_limit_holds_and_the_next_run_fetches_what_is_owed(tmp_path: Path, site: Site) -> None:
    site.add("/robots.txt", ROBOTS, TEXT)
    site.add("/sitemap.xml", urlset([url_entry(site.url(f"/news/{i}")) for i in range(40)]), XML)
    for i in range(40):
        site.add_article(f"/news/{i}", f"Story {i}")
    source = Source("big", "sitemap", site.url("/sitemap.xml"))

    first = crawl(tmp_path, [source], crawl_page_limit=6)

    assert first.ok == ["big"]
    assert first.stats["finish_reason"] == "closespider_pagecount"
    # scheduling stops at the limit; requests already queued for the host still complete
    assert first.stats["response_received_count"] <= 6 + 16  # + CONCURRENT_REQUESTS
    fetched = set(articles_requested(site))
    statuses = [row.status for row in rows(tmp_path, urls).values()]
    assert statuses.count("fetched") == len(fetched) < 40
    assert statuses.count("pending") == 40 - len(fetched)

    site.clear()
    second = crawl(tmp_path, [source], crawl_page_limit=100)
    assert second.ok == ["big"]
    assert set(articles_requested(site)) == {f"/news/{i}" for i in range(40)} - fetched
    assert {row.status for row in rows(tmp_path, urls).values()} == {"fetched"}


# -- safety ----------------------------------------------------------------------------------------


def test_private_addresses_are_refused_unless_allowed(
    tmp_path: Path, site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    site.add("/robots.txt", ROBOTS, TEXT)
    site.add("/sitemap.xml", urlset([url_entry(site.url("/news/a"))]), XML)
    source = Source("local", "sitemap", site.url("/sitemap.xml"))

    refused = crawl(tmp_path, [source], allow_private_network=False)

    assert refused.ok == []
    why = refused.failed["local"]
    assert "127.0.0.1 is a loopback address; to fetch it anyway, pass --allow-private-network" in why
    assert site.paths() == []

    # the resolver refuses too: a name that resolves to loopback, with the URL check removed
    by_name = Source("byname", "sitemap", site.url("/sitemap.xml").replace("127.0.0.1", "localhost"))
    resolved = crawl(
        tmp_path,
        [by_name],
        allow_private_network=False,
        scrapy_settings={"DOWNLOADER_MIDDLEWARES": {"spiders.middlewares.PrivateAddressMiddleware": None}},
    )
    assert "robots.txt of localhost:" in resolved.failed["byname"]
    assert "refused localhost: it resolves to 127.0.0.1, which is a loopback address" in caplog.text
    assert site.paths() == []


def test_the_address_check_runs_on_every_request_a_redirect_makes() -> None:
    import asyncio
    from types import SimpleNamespace

    from scrapy import Request
    from scrapy.settings import Settings as ScrapySettings

    from spiders.middlewares import PrivateAddressMiddleware, Refused

    crawler: Any = SimpleNamespace(
        settings=ScrapySettings({"NEWSAGG_ALLOW_PRIVATE_NETWORK": 0}),
        stats=SimpleNamespace(inc_value=lambda key: None),
    )
    guard = PrivateAddressMiddleware.from_crawler(crawler)
    public = Request("http://93.184.215.14/story")
    assert asyncio.run(guard.process_request(public)) is None
    # RedirectMiddleware turns a 30x into request.replace(url=Location): a new request that
    # goes through every downloader middleware again
    for target in (
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:10.0.0.1]/",
        "http://0x7f.1/admin",
    ):
        hop = public.replace(url=target, meta={"redirect_urls": [public.url]})
        with pytest.raises(Refused, match="refused"):
            asyncio.run(guard.process_request(hop))


def test_pinned_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    import spiders.settings
    from spiders.run import scrapy_settings

    with monkeypatch.context() as env:  # the settings module reads NEWSAGG_* when imported
        env.setenv("NEWSAGG_HOST_DELAY", "2.5")
        env.setenv("NEWSAGG_MAX_BYTES", "1000")
        env.setenv("NEWSAGG_CRAWL_PAGE_LIMIT", "7")
        importlib.reload(spiders.settings)
        s = scrapy_settings({"DOWNLOADER_MIDDLEWARES": {"x.Y": 1}})
    importlib.reload(spiders.settings)

    assert s.getbool("ROBOTSTXT_OBEY") and s["ROBOTSTXT_PARSER"].endswith("ProtegoRobotParser")
    assert s.getint("CONCURRENT_REQUESTS_PER_DOMAIN") == 1
    assert s.getfloat("DOWNLOAD_DELAY") == 2.5 == s.getfloat("AUTOTHROTTLE_START_DELAY")
    assert s.getfloat("DOWNLOAD_DELAY_JITTER") == 0 and s.getbool("AUTOTHROTTLE_ENABLED")
    assert (s.getint("DOWNLOAD_MAXSIZE"), s.getint("DOWNLOAD_WARNSIZE")) == (1000, 500)
    assert s.getint("CLOSESPIDER_PAGECOUNT") == 7 and s.getint("REDIRECT_MAX_TIMES") == 5
    assert not s.getbool("TELNETCONSOLE_ENABLED") and not s.getbool("REMOTE_CONTROL_ENABLED")
    assert not s.getbool("COOKIES_ENABLED") and s.getbool("DOWNLOAD_VERIFY_CERTIFICATES")
    handlers = s.getwithbase("DOWNLOAD_HANDLERS")
    assert {k for k, v in handlers.items() if v} == {"http", "https"}
    assert s["USER_AGENT"].startswith("newsagg/")
    assert s["TWISTED_REACTOR"].endswith("AsyncioSelectorReactor")
    middlewares = s.getdict("DOWNLOADER_MIDDLEWARES")  # an override adds, keeps the pins
    assert middlewares["x.Y"] == 1 and middlewares["spiders.middlewares.HostGateMiddleware"]


# -- section pages -------------------------------------------------------------------------------


def test_section_pages_selectors_pagination_and_page_limit(tmp_path: Path, site: Site) -> None:
    site.add("/robots.txt", ROBOTS, TEXT)
    for page in range(1, 5):
        path = "/world/" if page == 1 else f"/world/page/{page}/"
        links = [(f"/news/w{page}{i}", f"World story {page}.{i}") for i in (1, 2)]
        site.add(path, listing_html(links, f"/world/page/{page + 1}/"))
        for href, title in links:
            site.add_article(href, title)
    site.add("/europe/", listing_html([(site.url("/news/e1"), "Europe one"), ("/private/e2", "Europe two")]))
    site.add_article("/news/e1", "Europe one")
    sources = [
        Source(
            "world",
            "html",
            site.url("/world/"),
            links="a.story-link",
            next_page="a.next",
            max_pages=2,
            delay=0.2,
        ),
        Source("europe", "html", site.url("/europe/"), links="xpath://a[@class='story-link']/@href"),
        Source("redesigned", "html", site.url("/europe/"), links="article a.headline"),
    ]

    result = crawl(tmp_path, sources)

    assert result.ok == ["world", "europe"]
    assert "matched no article link" in result.failed["redesigned"]
    paths = site.paths()
    assert "/world/page/2/" in paths and "/world/page/3/" not in paths  # max_pages 2
    assert not any(p.startswith("/ads/") for p in paths)
    assert sorted(articles_requested(site)) == [
        "/news/e1",
        "/news/w11",
        "/news/w12",
        "/news/w21",
        "/news/w22",
    ]
    world = [h.time for h in site.hits if h.path.startswith(("/world", "/news/w"))]
    assert spaced(world, 0.2)  # the source's own delay
    frontier = rows(tmp_path, urls)
    assert frontier[site.url("/news/w21")].hint_title == "World story 2.1"
    assert frontier[site.url("/private/e2")].status == "dropped"


# -- the launcher --------------------------------------------------------------------------------


def test_newsagg_crawl_over_the_sample_news_web(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.sampleweb.server import SampleWeb, load_manifest, sources_yaml

    with SampleWeb() as web:
        registry = tmp_path / "sources.yaml"
        registry.write_text(sources_yaml(web.base_url), encoding="utf-8")
        store = f"sqlite:///{tmp_path / 'store.db'}"
        status = newsagg(
            [
                "crawl",
                "--sources",
                str(registry),
                "--store",
                store,
                "--allow-private-network",
                "--only",
                "monitor",
                "gazette",
            ]
        )
        requested = {r.path for r in web.requests}

    printed = json.loads(capsys.readouterr().out)
    assert status == 0
    assert sorted(printed["ok"]) == ["gazette", "monitor"] and printed["failed"] == {}
    assert not any(path.startswith("/private/") for path in requested)
    stored = {row.url.removeprefix(web.base_url): row.source for row in rows(tmp_path, pages).values()}
    expected = {a["url_path"]: a["outlet"] for a in load_manifest() if a["outlet"] in ("monitor", "gazette")}
    assert expected and stored == expected


def test_a_dying_crawl_process_raises_with_its_last_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(crawl_module, "RUNNER", "spiders.no_such_module")
    with pytest.raises(NewsaggError, match=r"(?s)exit status 1.*No module named"):
        crawl(tmp_path, [Source("s", "sitemap", "http://127.0.0.1:9/sitemap.xml")])
    assert crawl(tmp_path, []) == CrawlResult()


def test_every_shared_robots_txt_parses_with_protego() -> None:
    from scrapy.robotstxt import ProtegoRobotParser

    archive = shared_path("data", "robots", "protego", "robots_txt_test_data.tar.gz")
    count = 0
    with tarfile.open(archive) as tar:  # read in place, never extracted into the repo
        for member in tar:
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is None:
                continue
            parser = ProtegoRobotParser(handle.read(), None)
            parser.allowed("https://example.com/news/2026/11/20/story?id=1", "newsagg")
            delay = parser.crawl_delay("newsagg")
            assert delay is None or delay >= 0, member.name
            count += 1
    assert count == 4231
