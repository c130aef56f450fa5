"""The generated news web of the end-to-end benchmark (benchmarks/newsweb.py): heavy, varied
article pages rendered on request, stable bytes and validators, and chrome that extraction drops."""

from __future__ import annotations

import re
import urllib.request
from html import unescape as html_unescape

import pytest
from newsweb import NewsWeb

from pipeline.extract import extract


@pytest.fixture(scope="module")
def web():
    with NewsWeb(articles=60, outlets=6, days=2, ecb_path=None) as w:
        yield w


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _pages(web: NewsWeb):
    for outlet in web.outlets:
        for item in web.items[outlet.name]:
            yield outlet, item


def test_page_weights_in_range(web: NewsWeb) -> None:
    sizes = sorted(len(web.render_page(o, i)) for o, i in _pages(web))
    assert len(sizes) == 60
    assert sizes[0] >= 50_000 and sizes[-1] <= 1_100_000
    assert 120_000 <= sizes[len(sizes) // 2] <= 400_000
    assert sizes[-1] > 2.5 * sizes[0]  # outlets differ
    weights = web.describe()["page_weight"]
    assert weights["pages"] == 60 and 0.1 <= weights["gzip_ratio"] <= 0.3
    assert weights["p10_kb"] <= weights["median_kb"] <= weights["p90_kb"]


def test_structure_like_real_pages(web: NewsWeb) -> None:
    """Element counts and nesting in the real pages' range, not just the weight (see the module
    docstring: Fundus median 1058 elements, depth 19, 38 % of bytes in script/style)."""
    import lxml.html

    for outlet in web.outlets[:4]:
        item = web.items[outlet.name][0]
        html = web.render_page(outlet, item)
        tree = lxml.html.document_fromstring(html)
        elements = len(list(tree.iter()))
        depth = max(len(list(e.iterancestors())) + 1 for e in tree.iter())
        code = sum(len((e.text or "").encode()) for e in tree.iter("script", "style"))
        assert 450 <= elements <= 2500, (outlet.layout, elements)
        assert 15 <= depth <= 30, (outlet.layout, depth)
        assert 0.15 <= code / len(html) <= 0.85, (outlet.layout, code / len(html))


def test_same_bytes_and_etag_and_304(web: NewsWeb) -> None:
    outlet = web.outlets[1]
    item = web.items[outlet.name][0]
    url = outlet.base + item["path"]
    status, headers, body = _get(url)
    status2, headers2, body2 = _get(url)
    assert status == status2 == 200 and body == body2 and len(body) > 50_000
    assert headers["ETag"] == headers2["ETag"] and int(headers["Content-Length"]) == len(body)
    assert body == web.render_page(outlet, item)
    status3, _, body3 = _get(url, {"If-None-Match": headers["ETag"]})
    assert status3 == 304 and body3 == b""
    status4, _, _ = _get(url, {"If-Modified-Since": headers["Last-Modified"]})
    assert status4 == 304
    hits = [h for h in web.hits if h.path == item["path"]]
    assert [(h.kind, h.conditional, h.status) for h in hits] == [
        ("article", False, 200),
        ("article", False, 200),
        ("article", True, 304),
        ("article", True, 304),
    ]


def test_extraction_keeps_the_article_and_drops_the_chrome(web: NewsWeb) -> None:
    for outlet in web.outlets[:4]:  # one outlet per layout
        item = web.items[outlet.name][0]
        chrome = web.chrome[outlet.name]
        html = web.render_page(outlet, item)
        got = extract(html, outlet.base + item["path"])
        assert got.title == item["title"]
        for paragraph in item["paragraphs"]:
            assert paragraph in got.text, (outlet.layout, paragraph)
        # exactly the article: no teaser standfirst, consent or footer paragraph leaks in (the
        # page-builder layout's bare page has an in-body "Advertisement" line of its own)
        lines = [line for line in got.text.split("\n") if line != "Advertisement"]
        assert lines == item["paragraphs"], outlet.layout
        for marker in (
            "Most read",
            "We value your privacy",
            "Subscribe to",
            "webpackChunk",
            "dataLayer",
            "Registered office",
            "hours ago",
            "Premier League",
        ):
            assert marker not in got.text, (outlet.layout, marker)
        assert not any(
            line in got.text for line in (t.split('__title">')[-1].split("<")[0] for t in chrome.teasers[:10])
        )
        summaries = [
            html_unescape(m) for t in chrome.teasers for m in re.findall(r'summary[^"]*">([^<]+)<', t)
        ]
        assert len(summaries) > 10 and not any(s in got.text for s in summaries), outlet.layout
