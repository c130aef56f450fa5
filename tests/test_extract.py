"""The cleaning stage: text safety, decoding, metadata, parallel runs and the quality gate."""

from __future__ import annotations

import multiprocessing
import os
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

import pipeline.extract.pool as extract_module
from pipeline.errors import ExtractionError
from pipeline.extract import Extracted, decode_html, extract, extract_many, sanitize_text, titles

_extract_safely = extract_module._extract_safely

REPO = Path(__file__).resolve().parent.parent

PARAGRAPHS = [
    "The city council voted on Tuesday to expand the tram network across the river, a plan "
    "that has been debated for more than a decade and that residents of the eastern districts "
    "have long demanded.",
    "Under the approved plan, construction of the first section will begin next spring and is "
    "expected to take three years, with the new line carrying up to forty thousand passengers "
    "a day once it opens.",
    "Opponents argued that the money would be better spent on buses, which can be rerouted "
    "quickly, but the mayor said the tram would give the neighbourhoods a permanent connection "
    "to the centre.",
    "The regional government has promised to cover half of the cost, and the remaining funds "
    "will come from a bond issue that the council is expected to approve next month.",
]


def page(body_html: str, head: str = "", *, lang: str = "en", charset: str = "utf-8") -> str:
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="{charset}">{head}<title>Page</title></head>
<body>
<header><nav><a href="/">Home</a> <a href="/world">World</a> <a href="/sport">Sport</a>
<a href="/login">Sign in to your account</a></nav></header>
<aside class="sidebar"><h3>Most read</h3><ul><li><a href="/a">Celebrity weds in secret</a></li>
<li><a href="/b">Ten tips for a better sleep tonight</a></li></ul></aside>
<main><article>{body_html}</article></main>
<footer><p>Copyright 2024 Example Media Group. All rights reserved.</p>
<a href="/privacy">Privacy policy</a> <a href="/cookies">Cookie settings</a></footer>
</body></html>"""


def article_html(*extra: str) -> str:
    return "<h1>Council approves tram extension</h1>" + "".join(
        f"<p>{p}</p>" for p in (*PARAGRAPHS[:2], *extra, *PARAGRAPHS[2:])
    )


# -- body ---------------------------------------------------------------------------------------


def test_boilerplate_is_removed_and_paragraphs_kept() -> None:
    result = extract(page(article_html()).encode(), "https://news.example/tram")
    assert isinstance(result, Extracted)
    for paragraph in PARAGRAPHS:
        assert paragraph in result.text
    for junk in (
        "Sign in to your account",
        "Most read",
        "Celebrity weds",
        "Copyright 2024",
        "Privacy policy",
    ):
        assert junk not in result.text
    assert result.text.split("\n")[0] == PARAGRAPHS[0]  # repeated headline dropped
    assert result.language == "en"


def test_no_script_handler_or_javascript_link_survives() -> None:
    nasty = (
        '<p onclick="steal()">Residents can <a href="javascript:alert(1)" '
        'onmouseover="steal()">read the full plan</a> online before the hearing.</p>'
        "<script>document.write('<p>injected</p>'); alert('x')</script>"
        "<p>The source showed escaped markup: &lt;script&gt;alert(2)&lt;/script&gt; and "
        "&lt;img src=x onerror=alert(3)&gt; and &lt;a href=&quot;javascript:alert(4)&quot;&gt;"
        "link&lt;/a&gt; which must never reach readers as markup.</p>"
        "<p>Some text said javascript:void(0) and onload=boom() outright in the copy.</p>"
    )
    result = extract(page(article_html(nasty)).encode(), "https://news.example/tram")
    lowered = result.text.lower()
    for bad in (
        "<script",
        "</script",
        "<img",
        "<a ",
        "javascript:",
        "onclick",
        "onerror=",
        "onmouseover",
        "onload=",
        "alert('x')",
        "injected",
    ):
        assert bad not in lowered, bad
    assert "read the full plan" in result.text
    assert "must never reach readers as markup" in result.text


def test_nul_and_control_bytes_are_removed() -> None:
    html = page(
        article_html(
            "<p>Null\x00 bytes\x01 and bell\x07 characters are dropped here, "
            "the rest of this sentence stays intact for readers.</p>"
        )
    )
    result = extract(html.encode().replace(b"Council", b"Coun\x00cil"), None)
    for text in (result.text, result.title or ""):
        assert not any(ord(ch) < 32 and ch not in "\n\t" for ch in text)
    assert "Null bytes and bell characters are dropped here" in result.text
    assert result.title == "Council approves tram extension"


def test_no_article_body_raises() -> None:
    empty = page("<h1>Just a headline</h1>")
    with pytest.raises(ExtractionError, match="no article body found"):
        extract(empty.encode(), "https://news.example/empty")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty"),
        (b"   \n\t ", "empty"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>", "PDF"),
        (b'{"title": "not a page", "items": [1, 2, 3]}', "JSON"),
        (b"\n  [1, 2, 3]", "JSON"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "PNG"),
        (b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title></channel></rss>', "feed"),
        (b"just some plain text without any markup at all", "no markup"),
        (bytes(range(256)) * 8, "binary"),
    ],
)
def test_not_html_raises_with_reason(body: bytes, reason: str) -> None:
    with pytest.raises(ExtractionError, match="not HTML") as info:
        extract(body, "https://news.example/file")
    assert reason.lower() in str(info.value).lower()


# -- decoding -----------------------------------------------------------------------------------

GERMAN = "Die Größe der Brücke überrascht: Straßenbahn fährt künftig über den Fluß. " * 8
RUSSIAN = "Городской совет одобрил строительство новой трамвайной линии через реку. " * 8


def german_page(charset: str) -> str:
    return page(f"<h1>Brücke</h1><p>{GERMAN}</p><p>{PARAGRAPHS[0]}</p>", lang="de", charset=charset)


def test_latin1_declared_by_http_header() -> None:
    body = german_page("utf-8").replace('<meta charset="utf-8">', "").encode("latin-1")
    assert GERMAN.strip() in decode_html(body, "ISO-8859-1")
    assert GERMAN.split(":")[0] in extract(body, None, charset="iso-8859-1").text


def test_latin1_declared_by_meta_tag() -> None:
    body = german_page("iso-8859-1").encode("latin-1")
    result = extract(body)
    assert "Die Größe der Brücke überrascht" in result.text
    assert result.language == "de"


def test_cp1251_declared_by_meta_tag() -> None:
    html = page(f"<h1>Трамвай</h1><p>{RUSSIAN}</p><p>{RUSSIAN}</p>", lang="ru", charset="windows-1251")
    result = extract(html.encode("cp1251"))
    assert "Городской совет одобрил строительство" in result.text
    assert result.language == "ru"


def test_wrong_label_on_utf8_bytes_still_decodes() -> None:
    body = german_page("iso-8859-1").encode("utf-8")
    assert "Die Größe der Brücke" in extract(body, charset="latin-1").text


def test_byte_order_marks() -> None:
    html = german_page("utf-8")
    assert "Die Größe" in extract(b"\xef\xbb\xbf" + html.encode()).text
    assert "Die Größe" in extract("\ufeff".encode("utf-16-le") + html.encode("utf-16-le")).text
    assert decode_html(b"\xef\xbb\xbf<p>x</p>") == "<p>x</p>"


def test_decode_html_never_raises() -> None:
    rng = random.Random(7)
    for charset in (None, "utf-8", "latin-1", "cp1251", "shift_jis", "utf-16", "bogus-42"):
        for _ in range(20):
            blob = bytes(rng.randrange(256) for _ in range(rng.randrange(200)))
            text = decode_html(b"<meta charset=gbk>" + blob, charset)
            assert isinstance(text, str)
            assert "\x00" not in text
            text.encode("utf-8")  # valid: no lone surrogates


def test_str_input_is_accepted() -> None:
    assert PARAGRAPHS[0] in extract(page(article_html())).text


# -- metadata -----------------------------------------------------------------------------------

JSONLD = """<script type="application/ld+json">{"@context": "https://schema.org", "@graph": [
 {"@type": "WebSite", "name": "Example News"},
 {"@type": "NewsArticle", "headline": "Council approves tram extension &amp; bond issue",
  "datePublished": "2024-03-05T23:30:00-05:00", "dateModified": "2024-03-07T10:00:00Z",
  "inLanguage": "en-GB",
  "author": [{"@type": "Person", "name": "Jane Doe"},
             {"@type": "Person", "givenName": "John", "familyName": "Smith"}],
  "publisher": {"@type": "Organization", "name": "Example News"}}]}</script>"""


def test_jsonld_title_date_and_authors_are_used() -> None:
    head = (
        JSONLD + '<meta property="og:title" content="Tram vote | Example News">'
        '<meta property="article:published_time" content="2020-01-01T00:00:00Z">'
    )
    result = extract(page(article_html(), head, lang="").encode(), "https://news.example/tram")
    assert result.title == "Council approves tram extension & bond issue"
    assert result.published_at == datetime(2024, 3, 6, 4, 30, tzinfo=UTC)
    assert result.authors == ("Jane Doe", "John Smith")
    assert result.language == "en"


def test_meta_tags_when_there_is_no_jsonld() -> None:
    head = (
        '<meta property="og:title" content="Council approves tram extension | Example News">'
        '<meta property="og:site_name" content="Example News">'
        '<meta property="article:published_time" content="2024-03-05T10:00:00+01:00">'
        '<meta name="author" content="By Jane Doe and John Smith">'
    )
    result = extract(page(article_html(), head, lang="uk-UA").encode(), "https://news.example/x")
    assert result.title == "Council approves tram extension"
    assert result.published_at == datetime(2024, 3, 5, 9, 0, tzinfo=UTC)
    assert result.authors == ("Jane Doe", "John Smith")
    assert result.language == "uk"


def test_title_suffix_kept_when_it_is_not_the_site_name() -> None:
    head = '<meta property="og:title" content="Budget: a decade of cuts | Analysis">'
    html = page("".join(f"<p>{p}</p>" for p in PARAGRAPHS), head)
    assert extract(html.encode(), "https://news.example/x").title == ("Budget: a decade of cuts | Analysis")


def _titled(head: str, h1: str = "Council approves tram extension", title: str = "Page") -> str:
    html = page(f"<h1>{h1}</h1>" + "".join(f"<p>{p}</p>" for p in PARAGRAPHS), head)
    html = html.replace("<title>Page</title>", f"<title>{title}</title>")
    return extract(html.encode(), "https://news.example/x").title or ""


def _jsonld_headline(headline: str) -> str:
    return f'<script type="application/ld+json">{{"@type": "NewsArticle", "headline": "{headline}"}}</script>'


def test_stated_headline_that_differs_from_the_html_title_wins() -> None:
    seo = "Tram extension: council vote explained | Example News"
    social = '<meta property="og:title" content="Tram vote: what changes for riders">'
    # <title> copies og:title, so the JSON-LD headline is the one an editor wrote
    head = _jsonld_headline("Council approves tram extension") + social
    assert _titled(head, title="Tram vote: what changes for riders | Example News") == (
        "Council approves tram extension"
    )
    # <title> copies the JSON-LD headline, so og:title is
    head = _jsonld_headline("Tram extension: council vote explained") + social
    assert _titled(head, title=seo) == "Tram vote: what changes for riders"
    # no <title> on either side: the JSON-LD headline, the more trusted source
    head = _jsonld_headline("Council approves tram extension") + social
    assert _titled(head) == "Council approves tram extension"


def test_stated_headline_beats_h1_and_twitter_title() -> None:
    head = (
        '<meta property="og:title" content="Council approves tram extension">'
        '<meta name="twitter:title" content="Trams! Finally!">'
    )
    assert _titled(head, h1="Trams are coming") == "Council approves tram extension"
    assert _titled("", h1="Trams are coming") == "Trams are coming"


def test_title_candidates_in_section_or_site_segments_are_the_same_headline() -> None:
    # og:title is the h1 dressed as "Kicker: Headline | Section"; the <title> is a third text
    head = '<meta property="og:title" content="Transport: Council approves tram extension | City">'
    assert _titled(head, title="Tram news") == "Council approves tram extension"
    # typographic and straight quotes name the same headline: both sources count for it
    head = (
        _jsonld_headline("Council’s ‘tram’ vote")
        + '<meta property="og:title" content="Council\'s \'tram\' vote">'
        '<meta name="twitter:title" content="Other">'
    )
    assert _titled(head, h1="Tram vote", title="Council's 'tram' vote") == "Council’s ‘tram’ vote"


def test_kicker_and_word_joiners_do_not_merge_title_candidates() -> None:
    pick = titles.pick_title
    # a kicker alone is not decoration: "Kicker: Headline" and "Headline" stay two headlines
    assert (
        pick(
            [
                None,
                "Tram vote: Council approves extension",
                "Council approves extension",
                None,
                "Council approves extension",
            ]
        )
        == "Tram vote: Council approves extension"
    )
    # "-" inside a word ("KI-Foto") is no separator
    assert pick([None, None, "Trump postet Jesus-KI-Foto", None, "Trump postet Jesus"]) == (
        "Trump postet Jesus-KI-Foto"
    )
    # a one-word h1 (section name) does not absorb the og:title that starts with it
    assert pick([None, "Politik | Council approves tram extension", "Politik", None, None]) == (
        "Politik | Council approves tram extension"
    )
    assert pick([None, None, None, None, None]) is None


def test_site_name_segments_are_stripped() -> None:
    strip = titles.strip_site_name
    sites = ["Example News", "news.example", "CBC"]
    assert strip("Council approves tram | Example News", sites) == "Council approves tram"
    assert strip("Example News - Council approves tram", sites) == "Council approves tram"
    assert strip("Council approves tram extension | Example News | by Jane Doe", sites) == (
        "Council approves tram extension"
    )
    assert strip("Council approves tram | CBC News", sites) == "Council approves tram"
    # the name inside the headline, or a longer tail after it, stays
    assert strip("CBC News anchor quits: what we know", sites) == ("CBC News anchor quits: what we know")
    assert strip("Council | Example News | approves the tram extension", sites) == (
        "Council | Example News | approves the tram extension"
    )
    assert strip("Council approves tram | CBCs", sites) == "Council approves tram | CBCs"


def test_time_element_is_a_date_fallback() -> None:
    html = page(
        article_html(
            '<p>Posted <time datetime="2023-11-02T08:15:00Z">2 Nov</time> '
            "by the newsroom, updated as the vote went on and on.</p>"
        )
    )
    assert extract(html.encode()).published_at == datetime(2023, 11, 2, 8, 15, tzinfo=UTC)


def test_sanitize_text() -> None:
    dirty = (
        "  First\x00 line &amp; more <b>bold</b>\r\n\r\n\tSecond\u200b line "
        "&lt;script&gt;x()&lt;/script&gt; <a href='javascript:x()'>a</a>\n\n"
    )
    assert sanitize_text(dirty) == "First line & more bold\nSecond line a"
    assert sanitize_text("caf\u0065\u0301 \ud800") == "café"
    assert sanitize_text("") == ""


# -- many pages ---------------------------------------------------------------------------------


def _items(n: int) -> list[tuple[str, bytes, str | None]]:
    good = page(article_html()).encode()
    bad = [b"%PDF-1.4 binary", b"", b'{"json": true}', page("<h1>only</h1>").encode()]
    items = []
    for i in range(n):
        html = (
            bad[i // 3 % len(bad)]
            if i % 3 == 1
            else good.replace(b"Council approves", f"Item {i} approves".encode())
        )
        items.append((f"key-{i}", html, f"https://news.example/{i}"))
    return items


@pytest.mark.parametrize("workers", [1, 2])
def test_extract_many_keeps_order_and_passes_errors(workers: int) -> None:
    items = _items(30)
    results = list(extract_many(iter(items), workers=workers))
    assert [key for key, _ in results] == [key for key, _, _ in items]
    for i, (_, result) in enumerate(results):
        if i % 3 == 1:
            assert isinstance(result, ExtractionError)
        else:
            assert isinstance(result, Extracted)
            assert result.title == f"Item {i} approves tram extension"


def _crash_on_marker(task):  # runs in a forked worker
    if task[0] == b"CRASH":
        os._exit(1)
    return _extract_safely(task)


def test_extract_many_survives_a_dying_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs fork workers, which inherit this monkeypatch")
    # the replacement pools start while the broken pool's thread lingers; fork them anyway
    monkeypatch.setattr(extract_module, "_mp_context", lambda: multiprocessing.get_context("fork"))
    monkeypatch.setattr(extract_module, "_extract_safely", _crash_on_marker)
    items = _items(20)
    items[9] = ("key-9", b"CRASH", None)
    results = list(extract_many(items, workers=2))
    assert [key for key, _ in results] == [key for key, _, _ in items]
    crashed = results[9][1]
    assert isinstance(crashed, ExtractionError) and "worker process died" in str(crashed)
    assert isinstance(results[11][1], Extracted)  # queued behind the crash, redone
    assert sum(isinstance(r, Extracted) for _, r in results) == 12


def _host_main(entry_module: str, spec: object = None, file: str = "/venv/bin/airflow") -> object:
    """A stand-in for ``__main__`` as a console script leaves it: no spec, a file that is not
    ``.py``, and the ``main`` it imported from its package."""
    import types

    module = types.ModuleType("__main__")
    module.__spec__ = spec  # type: ignore[assignment]
    module.__file__ = file

    def main() -> None: ...

    main.__module__ = entry_module
    module.main = main  # type: ignore[attr-defined]
    return module


def test_a_host_programs_main_with_threads_extracts_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """An Airflow task that fetches in threads must not start forkserver workers: each would
    re-run Airflow's CLI as its main and die, dropping every page."""
    import sys
    import threading

    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, daemon=True)
    thread.start()
    try:
        monkeypatch.setitem(sys.modules, "__main__", _host_main("airflow.__main__"))
        assert not extract_module.workers_can_start()

        def no_pool(workers: int) -> object:
            raise AssertionError("no worker pool may start here")

        monkeypatch.setattr(extract_module, "_new_pool", no_pool)
        items = _items(12)
        results = list(extract_many(iter(items), workers=2))
        assert [key for key, _ in results] == [key for key, _, _ in items]
        assert sum(isinstance(r, Extracted) for _, r in results) == 8

        monkeypatch.setitem(sys.modules, "__main__", _host_main("pipeline.cli"))
        assert extract_module.workers_can_start()  # newsagg's own entry point re-runs safely
        monkeypatch.setitem(sys.modules, "__main__", _host_main("x", file="/work/bench.py"))
        assert extract_module.workers_can_start()
    finally:
        stop.set()
        thread.join()


def test_extract_many_small_input_and_charset_items() -> None:
    body = german_page("utf-8").replace('<meta charset="utf-8">', "").encode("latin-1")
    results = dict(extract_many([("a", body, None, "latin-1"), ("b", b"", None)]))
    assert isinstance(results["a"], Extracted) and "Größe" in results["a"].text
    assert isinstance(results["b"], ExtractionError)
    assert list(extract_many([])) == []


# -- quality gate -------------------------------------------------------------------------------

# reached on the 258 fundus pages (see benchmarks/extraction_quality.py), minus a small margin
GATE = {"body_f1": 0.95, "title": 0.87, "date": 0.97, "authors": 0.86}


def _quality_module():
    import extraction_quality

    return extraction_quality


def test_quality_gate_on_fundus_pages() -> None:
    quality = _quality_module()
    if quality.data_dir() is None:
        pytest.skip(
            f"fundus test pages not found at {quality.DEFAULT_SHARED / quality.FUNDUS} "
            "(../shared is absent); the quality gate needs them"
        )
    figures = quality.evaluate(extractor="newsagg").figures()
    for name, floor in GATE.items():
        assert figures[name] >= floor, f"{name} fell to {figures[name]:.3f} (gate {floor})"
