"""The bundled sample news web: content, feeds, sitemaps, HTTP semantics, editions, faults."""

from __future__ import annotations

import gzip
import http.client
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
import pytest
import trafilatura
import yaml
from lxml import etree
from lxml import html as lhtml
from protego import Protego

from pipeline.models import FIGURE_KINDS, Source
from pipeline.sampleweb import (
    FAULT_500_PATH,
    FAULT_GARBAGE_FEED_PATH,
    FAULT_GOOD_ARTICLE_PATH,
    FAULT_NOT_HTML_PATH,
    FAULTS_FEED_PATH,
    PRIVATE_PAGE_PATH,
    SITE_DIR,
    SampleWeb,
    load_manifest,
    sources_yaml,
)

MANIFEST = load_manifest()
OUTLETS = {"wire", "ledger", "herald", "courier", "vestnik", "tagesblatt", "monitor", "gazette"}
FEED_OUTLETS = ["wire", "ledger", "herald", "courier", "vestnik", "tagesblatt"]
EVENT_A = "kyiv-strike-2026-11-19"
EVENT_B = "kyiv-strike-2026-11-20"
EVENT_C = "odesa-strike-2026-11-19"
WIRE_A = next(e for e in MANIFEST if e["outlet"] == "wire" and e["event"] == EVENT_A)

# Where each outlet's layout keeps the article paragraphs.
BODY_XPATH = {
    "wire": '//div[@class="article-body"]/p',
    "ledger": '//div[contains(@class, "content__article-body")]/p',
    "herald": '//div[@class="entry-content"]/p[not(@class)]',
    "courier": '//div[@class="kc-article__body"]/p',
    "vestnik": '//div[@class="article__text"]/p',
    "tagesblatt": '//div[@class="article-content"]/p[@class="textabsatz"]',
    "monitor": '//div[@data-testid="article-body"]/p',
    "gazette": '//div[@class="story-body"]/p',
}
# Boilerplate an extractor must drop: comments, related lists, newsletters, banners, sharing.
BOILERPLATE_XPATH = (
    '//*[@id="comments" or @id="reader-comments" or @id="secondary"'
    ' or contains(@class, "comment") or contains(@class, "related")'
    ' or contains(@class, "newsletter") or contains(@class, "more-stories")'
    ' or contains(@class, "most-popular") or contains(@class, "mostread")'
    ' or contains(@class, "cookie") or contains(@class, "consent") or contains(@class, "share")'
    ' or contains(@class, "sidebar") or contains(@class, "footer") or contains(@class, "ticker")'
    ' or contains(@class, "breaking") or contains(@class, "promo") or contains(@class, "rich-link")'
    ' or contains(@class, "read-more")]'
)
# Counts up to twelve written as words, by language: German and Russian style spells them out
# ("zwei Tote", "погибли два человека"), the tests accept any case form.
NUMBER_WORDS = {
    "en": "zero one two three four five six seven eight nine ten eleven twelve",
    "de": "null ein|eine|einer|eines|einem|einen zwei drei vier fünf sechs sieben acht neun zehn elf zwölf",
    "ru": "ноль один|одна|одного|одной двое|два|две|двух трое|три|трех|трёх четверо|четыре|четырех|четырёх "
    "пятеро|пять|пяти шестеро|шесть|шести семеро|семь|семи восемь|восьми девять|девяти десять|десяти "
    "одиннадцать двенадцать",
}


# ---------------------------------------------------------------------------- helpers


class Fetched:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def fetch(web: SampleWeb, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> Fetched:
    """One request, no redirects followed, no caching: what the server really answered."""
    parts = urlsplit(web.base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return Fetched(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def local(url: str) -> str:
    """Path (query dropped) of an absolute URL."""
    return urlsplit(url).path


def article_variants(entry: dict[str, Any]) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(edition, title, figures) for each edition of an article."""
    yield 1, entry["title"], entry["figures"]
    for ed in entry.get("editions", []):
        yield ed["edition"], ed["title"], ed["figures"]


def body_paragraphs(entry: dict[str, Any], page: str) -> list[str]:
    tree = lhtml.fromstring(page)
    return [p.text_content().strip() for p in tree.xpath(BODY_XPATH[entry["outlet"]])]


def number_in(text: str, n: int, language: str = "en") -> bool:
    if re.search(rf"(?<![\d.,]){n}(?![\d])", text):
        return True
    words = NUMBER_WORDS.get(language, NUMBER_WORDS["en"]).split()
    return n < len(words) and re.search(rf"\b(?:{words[n]})\b", text, re.I) is not None


def sources(web: SampleWeb) -> list[dict[str, Any]]:
    data = yaml.safe_load(sources_yaml(web.base_url))
    return data["sources"]


@pytest.fixture(scope="module")
def web() -> Iterator[SampleWeb]:
    with SampleWeb() as server:
        yield server


@pytest.fixture
def fresh_web() -> Iterator[SampleWeb]:
    """A server of its own, for tests that change the edition."""
    with SampleWeb() as server:
        yield server


# ---------------------------------------------------------------------------- manifest & content


def test_manifest_lists_40_to_50_articles_from_eight_outlets() -> None:
    assert 40 <= len(MANIFEST) <= 50
    assert {e["outlet"] for e in MANIFEST} == OUTLETS
    url_paths = [e["url_path"] for e in MANIFEST]
    assert len(set(url_paths)) == len(url_paths)
    for e in MANIFEST:
        assert set(e) >= {
            "outlet",
            "path",
            "url_path",
            "event",
            "title",
            "published_at",
            "language",
            "copy_of",
            "figures",
        }
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", e["published_at"])
        assert e["url_path"].startswith(f"/{e['outlet']}/")
        for _, _, figures in article_variants(e):
            assert set(figures) <= set(FIGURE_KINDS), e["url_path"]
        assert e["copy_of"] is None or e["copy_of"] in url_paths


def test_events_have_the_outlets_the_scenario_needs() -> None:
    outlets: dict[str, set[str]] = defaultdict(set)
    for e in MANIFEST:
        outlets[e["event"]].add(e["outlet"])
    assert outlets[EVENT_A] == OUTLETS
    assert len(outlets[EVENT_B]) >= 3
    assert len(outlets[EVENT_C]) >= 2
    strikes = {EVENT_A, EVENT_B, EVENT_C}
    unrelated = [ev for ev in outlets if ev not in strikes]
    assert len(unrelated) >= 3
    assert all(1 <= len(outlets[ev]) <= 4 for ev in unrelated)  # each told by half the outlets at most
    # C happened the same night as A: both reported on the morning of 19 November
    for e in MANIFEST:
        if e["event"] in (EVENT_A, EVENT_C):
            assert e["published_at"].startswith("2026-11-19")


def test_night_a_figures_change_over_time_and_outlets_disagree() -> None:
    a = [e for e in MANIFEST if e["event"] == EVENT_A]
    assert {e["figures"]["killed"] for e in a} == {1, 2}
    injured_final = {e["outlet"]: e["figures"]["injured"] for e in a if e["figures"]["killed"] == 2}
    assert len(set(injured_final.values())) >= 2, injured_final  # e.g. 14 vs 16
    assert WIRE_A["figures"]["killed"] == 1
    assert WIRE_A["editions"][0]["figures"]["killed"] == 2
    assert WIRE_A["editions"][0]["title"] != WIRE_A["title"]


def test_ukrainian_articles_are_marked_uk() -> None:
    uk = [e for e in MANIFEST if e["language"] == "uk"]
    assert {e["outlet"] for e in uk} == {"courier"}
    # one local story of its own, and the two strike nights in Ukrainian: a cross-language story
    # and a next-night trap
    assert sorted(e["event"] for e in uk) == sorted(["kyiv-metro-reopening-2026-11-19", EVENT_A, EVENT_B])


def test_russian_and_german_outlets_tell_both_nights_and_the_other_city() -> None:
    by_language: dict[str, dict[str, list[dict[str, Any]]]] = {
        "ru": defaultdict(list),
        "de": defaultdict(list),
    }
    for e in MANIFEST:
        if e["language"] in by_language:
            by_language[e["language"]][e["event"]].append(e)
    assert {e["outlet"] for es in by_language["ru"].values() for e in es} == {"vestnik"}
    assert {e["outlet"] for es in by_language["de"].values() for e in es} == {"tagesblatt"}
    # both strike nights and the other city in each language, and one story that is not a strike
    assert set(by_language["ru"]) == {EVENT_A, EVENT_B, EVENT_C, "kyiv-metro-reopening-2026-11-19"}
    assert set(by_language["de"]) == {EVENT_A, EVENT_B, EVENT_C, "eu-sanctions-2026-11-18"}
    phrases = {
        ("ru", EVENT_A): ["в ночь на 19 ноября"],
        ("ru", EVENT_B): ["в ночь на 20 ноября", "вторую ночь подряд"],
        ("de", EVENT_A): ["in der Nacht zum 19. November"],
        ("de", EVENT_B): ["in der Nacht zum 20. November", "zweite Nacht in Folge"],
    }
    for (language, event), wanted in phrases.items():
        [entry] = by_language[language][event]
        page = (SITE_DIR / entry["path"]).read_text(encoding="utf-8").lower()
        for phrase in wanted:
            assert phrase.lower() in page, (entry["path"], phrase)
    for events in by_language.values():  # each night reported the morning after it
        assert all(e["published_at"].startswith("2026-11-19") for e in events[EVENT_A] + events[EVENT_C])
        assert all(e["published_at"].startswith("2026-11-20") for e in events[EVENT_B])


def _shingles(text: str, k: int = 5) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + k]) for i in range(len(words) - k + 1)}


def test_herald_copy_is_a_near_duplicate_of_the_wire_report(web: SampleWeb) -> None:
    copies = [e for e in MANIFEST if e["copy_of"]]
    assert [(c["outlet"], c["copy_of"]) for c in copies] == [("herald", WIRE_A["url_path"])]
    copy = copies[0]
    original = " ".join(body_paragraphs(WIRE_A, fetch(web, WIRE_A["url_path"]).text))
    duplicate = " ".join(body_paragraphs(copy, fetch(web, copy["url_path"]).text))
    assert original != duplicate
    a, b = _shingles(original), _shingles(duplicate)
    assert len(a & b) / len(a | b) > 0.6
    assert copy["title"] != WIRE_A["title"]


# ---------------------------------------------------------------------------- article pages


@pytest.mark.parametrize("entry", MANIFEST, ids=lambda e: e["url_path"])
def test_article_page_is_served_with_absolute_links_and_metadata(
    web: SampleWeb, entry: dict[str, Any]
) -> None:
    r = fetch(web, entry["url_path"])
    assert r.status == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    page = r.text
    assert "{{BASE}}" not in page
    tree = lhtml.fromstring(page)
    assert tree.get("lang", "").split("-")[0] == entry["language"]
    assert tree.xpath('//link[@rel="canonical"]/@href') == [web.base_url + entry["url_path"]]
    assert tree.xpath('//meta[@property="og:title"]/@content') == [entry["title"]]
    assert entry["title"] in tree.findtext(".//title")
    published = datetime.fromisoformat(entry["published_at"].replace("Z", "+00:00"))
    stamps = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in tree.xpath("//time/@datetime")]
    assert published in stamps
    for href in tree.xpath("//a/@href | //link/@href | //img/@src"):
        assert href.startswith((web.base_url, "https://", "mailto:", "#")), href
    paragraphs = body_paragraphs(entry, page)
    words = sum(len(p.split()) for p in paragraphs)
    assert len(paragraphs) >= 5
    assert 180 <= words <= 500, words


def test_pages_carry_varied_metadata(web: SampleWeb) -> None:
    seen: dict[str, set[str]] = defaultdict(set)
    for e in MANIFEST:
        tree = lhtml.fromstring(fetch(web, e["url_path"]).body)
        if tree.xpath('//script[@type="application/ld+json"]'):
            seen["json-ld"].add(e["outlet"])
        if tree.xpath('//meta[@property="article:published_time"]'):
            seen["published_time"].add(e["outlet"])
        if tree.xpath('//meta[@name="author"]'):
            seen["meta-author"].add(e["outlet"])
        if tree.xpath("//script[not(@type) and not(@src)]"):
            seen["inline-script"].add(e["outlet"])
        if tree.xpath("//*[@onclick]"):
            seen["onclick"].add(e["outlet"])
    assert 2 <= len(seen["json-ld"]) < 6
    assert 2 <= len(seen["published_time"]) < 6
    assert len(seen["meta-author"]) >= 2
    assert len(seen["inline-script"]) >= 2
    assert len(seen["onclick"]) >= 2


@pytest.mark.parametrize(
    "entry", [e for e in MANIFEST if any(e["figures"].values())], ids=lambda e: e["url_path"]
)
def test_manifest_figures_are_in_the_page_text(web: SampleWeb, entry: dict[str, Any]) -> None:
    try:
        for edition, title, figures in article_variants(entry):
            web.set_edition(edition)
            text = " ".join(body_paragraphs(entry, fetch(web, entry["url_path"]).text))
            assert lhtml.fromstring(fetch(web, entry["url_path"]).body).xpath(
                '//meta[@property="og:title"]/@content'
            ) == [title]
            for kind, value in figures.items():
                if kind == "place":
                    for place in value:
                        assert place in text, (edition, place)
                else:
                    assert number_in(text, value, entry["language"]), (edition, kind, value)
    finally:
        web.set_edition(1)


@pytest.mark.parametrize("entry", MANIFEST, ids=lambda e: e["url_path"])
def test_trafilatura_extracts_body_title_and_date_without_boilerplate(
    web: SampleWeb, entry: dict[str, Any]
) -> None:
    page = fetch(web, entry["url_path"]).text
    result = trafilatura.extract(
        page, url=web.base_url + entry["url_path"], with_metadata=True, output_format="json"
    )
    assert result is not None
    data = json.loads(result)
    assert data["title"] == entry["title"]
    assert data["date"] == entry["published_at"][:10]
    text = data["text"]
    for paragraph in body_paragraphs(entry, page):
        assert paragraph[:80] in text
    tree = lhtml.fromstring(page)
    checked = 0
    for element in tree.xpath(BOILERPLATE_XPATH):
        for piece in element.xpath(".//text()"):
            piece = piece.strip()
            if len(piece) >= 25:
                checked += 1
                assert piece not in text, piece
    assert checked >= 5  # every layout carries boilerplate worth removing
    for leak in (
        "cpaAnalytics",
        "gtag(",
        "_ledq",
        "__mmMetrics",
        "clickmap",
        "tbPage",
        "onclick",
        "{{BASE}}",
    ):
        assert leak not in text


# ---------------------------------------------------------------------------- feeds & discovery


def test_sources_yaml_is_a_valid_registry(web: SampleWeb) -> None:
    text = sources_yaml(web.base_url)
    assert "{{BASE}}" not in text
    entries = sources(web)
    assert [s["name"] for s in entries] == [*FEED_OUTLETS, "monitor", "gazette"]
    allowed = {"name", "kind", "url", "language", "links", "next_page", "max_pages", "delay", "enabled"}
    for entry in entries:
        assert set(entry) <= allowed
        source = Source(**entry)
        assert source.url.startswith(web.base_url + "/")
        assert fetch(web, local(source.url)).status == 200
    assert sources_yaml(web.base_url + "/") == text
    assert web.sources_yaml() == text
    assert "/faults/" not in text


@pytest.mark.parametrize("outlet", FEED_OUTLETS)
def test_feed_parses_and_lists_the_outlets_articles(web: SampleWeb, outlet: str) -> None:
    source = next(s for s in sources(web) if s["name"] == outlet)
    assert source["kind"] == "rss"
    r = fetch(web, local(source["url"]))
    assert r.status == 200
    assert "{{BASE}}" not in r.text
    feed = feedparser.parse(r.body)
    assert not feed.bozo, feed.get("bozo_exception")
    links = {local(entry.link) for entry in feed.entries}
    expected = {e["url_path"] for e in MANIFEST if e["outlet"] == outlet}
    assert links == expected
    for entry in feed.entries:
        assert entry.link.startswith(web.base_url)
        assert entry.get("published_parsed") is not None
        assert entry.title


def test_herald_feed_has_full_content_and_tracking_links(web: SampleWeb) -> None:
    feed = feedparser.parse(fetch(web, "/herald/feed.rss").body)
    assert any("content" in entry for entry in feed.entries)
    assert all("utm_source=rss" in entry.link for entry in feed.entries)


def test_monitor_sitemaps_list_its_articles(web: SampleWeb) -> None:
    source = next(s for s in sources(web) if s["name"] == "monitor")
    index = etree.fromstring(fetch(web, local(source["url"])).body)
    ns = {
        "sm": "http://www.sitemaps.org/schemas/sitemap/0.9",
        "news": "http://www.google.com/schemas/sitemap-news/0.9",
    }
    locs = index.xpath("//sm:sitemap/sm:loc/text()", namespaces=ns)
    assert [local(u) for u in locs] == ["/monitor/sitemap-news.xml.gz", "/monitor/sitemap-2026-10.xml"]
    found: dict[str, etree._Element] = {}
    for loc in locs:
        r = fetch(web, local(loc))
        assert r.status == 200
        if loc.endswith(".gz"):
            assert r.headers["Content-Type"] in ("application/gzip", "application/x-gzip")
            xml = gzip.decompress(r.body)
        else:
            xml = r.body
        assert b"{{BASE}}" not in xml
        for url in etree.fromstring(xml).xpath("//sm:url", namespaces=ns):
            assert url.findtext("sm:lastmod", namespaces=ns)
            found[local(url.findtext("sm:loc", namespaces=ns))] = url
    monitor = {e["url_path"]: e for e in MANIFEST if e["outlet"] == "monitor"}
    assert set(found) == set(monitor)
    news_items = 0
    for path, url in found.items():
        news = url.find("news:news", namespaces=ns)
        if news is None:
            continue
        news_items += 1
        assert news.findtext("news:title", namespaces=ns) == monitor[path]["title"]
        date = news.findtext("news:publication_date", namespaces=ns)
        assert datetime.fromisoformat(date) == datetime.fromisoformat(
            monitor[path]["published_at"].replace("Z", "+00:00")
        )
    assert news_items >= 4


def test_gazette_section_pagination_reaches_every_article(web: SampleWeb) -> None:
    source = next(s for s in sources(web) if s["name"] == "gazette")
    url, pages, links = source["url"], 0, []
    while url and pages < source["max_pages"]:
        r = fetch(web, local(url))
        assert r.status == 200
        tree = lhtml.fromstring(r.body)
        links += [urljoin(url, a.get("href")) for a in tree.cssselect(source["links"])]
        nxt = tree.cssselect(source["next_page"])
        url = urljoin(url, nxt[0].get("href")) if nxt else None
        pages += 1
    assert pages == 3 and url is None
    gazette = {e["url_path"] for e in MANIFEST if e["outlet"] == "gazette"}
    assert {local(u) for u in links} == gazette | {PRIVATE_PAGE_PATH}
    assert all(u.startswith(web.base_url) for u in links)


def test_robots_txt_disallows_private_and_names_the_sitemap(web: SampleWeb) -> None:
    r = fetch(web, "/robots.txt")
    assert r.status == 200
    robots = Protego.parse(r.text)
    assert not robots.can_fetch(web.url(PRIVATE_PAGE_PATH), "newsagg")
    assert fetch(web, PRIVATE_PAGE_PATH).status == 200  # exists: only politeness keeps it out
    for e in MANIFEST:
        assert robots.can_fetch(web.base_url + e["url_path"], "newsagg")
    assert list(robots.sitemaps) == [web.url("/monitor/sitemap_index.xml")]


# ---------------------------------------------------------------------------- HTTP semantics


def test_conditional_requests(web: SampleWeb) -> None:
    path = WIRE_A["url_path"]
    first = fetch(web, path)
    etag, last_modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert re.fullmatch(r'"[0-9a-f]{16,}"', etag)  # strong
    assert parsedate_to_datetime(last_modified) == datetime(2026, 11, 19, 1, 48, tzinfo=UTC)
    assert fetch(web, path).headers["ETag"] == etag

    not_modified = fetch(web, path, {"If-None-Match": etag})
    assert not_modified.status == 304 and not_modified.body == b""
    assert not_modified.headers["ETag"] == etag
    assert fetch(web, path, {"If-None-Match": f'"nope", {etag}'}).status == 304
    assert fetch(web, path, {"If-None-Match": '"nope"'}).status == 200
    assert fetch(web, path, {"If-Modified-Since": last_modified}).status == 304
    later = format_datetime(datetime(2026, 12, 1, tzinfo=UTC), usegmt=True)
    earlier = format_datetime(datetime(2026, 11, 1, tzinfo=UTC), usegmt=True)
    assert fetch(web, path, {"If-Modified-Since": later}).status == 304
    assert fetch(web, path, {"If-Modified-Since": earlier}).status == 200
    # If-None-Match wins over If-Modified-Since
    assert fetch(web, path, {"If-None-Match": '"nope"', "If-Modified-Since": later}).status == 200

    head = fetch(web, path, method="HEAD")
    assert head.status == 200 and head.body == b""
    assert head.headers["ETag"] == etag
    assert int(head.headers["Content-Length"]) == len(first.body)

    gz = fetch(web, "/monitor/sitemap-news.xml.gz")
    assert fetch(web, "/monitor/sitemap-news.xml.gz", {"If-None-Match": gz.headers["ETag"]}).status == 304


def test_directory_and_extensionless_urls(web: SampleWeb) -> None:
    assert fetch(web, "/gazette/world/").status == 200
    redirect = fetch(web, "/gazette/world")
    assert redirect.status == 301
    assert redirect.headers["Location"] == web.url("/gazette/world/")
    ledger = next(e for e in MANIFEST if e["outlet"] == "ledger")
    assert "." not in ledger["url_path"].rsplit("/", 1)[-1]
    assert fetch(web, ledger["url_path"] + "?CMP=share_btn_url").status == 200


@pytest.mark.parametrize(
    "path",
    [
        "/nothing-here",
        "/wire/2026/11/19/russian-missiles-drones-hit-kyiv/index.v2.html",
        "/wire/rss.v2.xml",
        "/manifest.json",
        "/wire/../robots.txt",
        "/%2e%2e/etc/passwd",
        "/wire/rss.xml.gz.gz",
    ],
)
def test_not_found(web: SampleWeb, path: str) -> None:
    assert fetch(web, path).status == 404


def test_edition_two_updates_the_wire_article_at_the_same_url(fresh_web: SampleWeb) -> None:
    web, path = fresh_web, WIRE_A["url_path"]
    edition2 = WIRE_A["editions"][0]
    other = next(e for e in MANIFEST if e["outlet"] == "ledger")
    before, other_before = fetch(web, path), fetch(web, other["url_path"])
    feed_before = feedparser.parse(fetch(web, "/wire/rss.xml").body)

    web.set_edition(2)
    after = fetch(web, path)
    assert after.status == 200
    assert after.body != before.body
    assert after.headers["ETag"] != before.headers["ETag"]
    assert parsedate_to_datetime(after.headers["Last-Modified"]) > parsedate_to_datetime(
        before.headers["Last-Modified"]
    )
    assert fetch(web, path, {"If-None-Match": before.headers["ETag"]}).status == 200
    assert fetch(web, path, {"If-Modified-Since": before.headers["Last-Modified"]}).status == 200
    assert WIRE_A["title"] in before.text and edition2["title"] not in before.text
    assert edition2["title"] in after.text
    old_text = " ".join(body_paragraphs(WIRE_A, before.text))
    new_text = " ".join(body_paragraphs(WIRE_A, after.text))
    assert "eight others" in old_text and "14 others" in new_text
    # everything else is unchanged
    assert fetch(web, other["url_path"]).headers["ETag"] == other_before.headers["ETag"]
    feed_after = feedparser.parse(fetch(web, "/wire/rss.xml").body)
    titles_before = {local(e.link): e.title for e in feed_before.entries}
    titles_after = {local(e.link): e.title for e in feed_after.entries}
    assert titles_before[path] == WIRE_A["title"] and titles_after[path] == edition2["title"]
    assert {k: v for k, v in titles_after.items() if k != path} == {
        k: v for k, v in titles_before.items() if k != path
    }

    web.set_edition(1)
    assert fetch(web, path).body == before.body


def test_faults(web: SampleWeb) -> None:
    garbage = fetch(web, FAULT_GARBAGE_FEED_PATH)
    assert garbage.status == 200
    parsed = feedparser.parse(garbage.body)
    assert parsed.bozo and not parsed.entries
    assert fetch(web, FAULT_500_PATH).status == 500
    pdf = fetch(web, FAULT_NOT_HTML_PATH)
    assert pdf.status == 200
    assert pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.body.startswith(b"%PDF")

    feed = feedparser.parse(fetch(web, FAULTS_FEED_PATH).body)
    assert not feed.bozo
    links = [local(e.link) for e in feed.entries]
    assert links == [FAULT_GOOD_ARTICLE_PATH, FAULT_500_PATH, FAULT_NOT_HTML_PATH]
    good = fetch(web, FAULT_GOOD_ARTICLE_PATH)
    assert good.status == 200 and good.headers["Content-Type"].startswith("text/html")
    assert FAULT_GOOD_ARTICLE_PATH not in {e["url_path"] for e in MANIFEST}


def test_request_log(fresh_web: SampleWeb) -> None:
    web = fresh_web
    fetch(web, "/robots.txt")
    web.clear_requests()
    assert web.requests == []
    fetch(web, "/wire/rss.xml?x=1", {"User-Agent": "newsagg-test/1.0", "X-Probe": "yes"})
    fetch(web, "/nothing-here", method="HEAD")
    first, second = web.requests
    assert (first.method, first.path, first.status) == ("GET", "/wire/rss.xml?x=1", 200)
    assert first.headers["User-Agent"] == "newsagg-test/1.0"
    assert first.headers["X-Probe"] == "yes"
    assert (second.method, second.path, second.status) == ("HEAD", "/nothing-here", 404)
    assert first.time <= second.time


def test_base_url_and_lifecycle() -> None:
    web = SampleWeb()
    with pytest.raises(RuntimeError):
        _ = web.base_url
    with web:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", web.base_url)
        assert fetch(web, "/robots.txt").status == 200
        with pytest.raises(ValueError):
            web.set_edition(0)
    web.stop()  # idempotent
