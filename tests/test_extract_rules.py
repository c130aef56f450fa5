"""The general rules of extraction: titles without site or section labels, dates in the page's own
offset, escalation on any layout, title and date kept without a body, scrambled text, live blogs,
and the ``extract`` command on every core."""

from __future__ import annotations

import gzip
import json
import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path

import lxml.html
import pytest

from pipeline.cli import main
from pipeline.errors import ExtractionError, NoBodyError
from pipeline.extract import Extracted, extract, extract_many, parse_date
from pipeline.extract.body import largest_text_block
from pipeline.extract.language import not_language

PROSE = [
    "The city council voted on Tuesday to expand the tram network across the river, a plan that "
    "has been debated for more than a decade and that residents of the eastern districts have "
    "long demanded from the mayor and from the regional government.",
    "Under the approved plan, construction of the first section will begin next spring and is "
    "expected to take three years, with the new line carrying up to forty thousand passengers "
    "a day once it opens to the public.",
    "Opponents argued that the money would be better spent on buses, which can be rerouted "
    "quickly, but the mayor said the tram would give the neighbourhoods a permanent connection "
    "to the centre of the city.",
]
HEADLINE = "Council approves tram extension across the river"


def shifted(text: str, by: int = 1) -> str:
    """``text`` with every letter moved ``by`` places in the alphabet, as some paywalls serve it."""

    def move(ch: str) -> str:
        for first in ("a", "A"):
            if first <= ch <= chr(ord(first) + 25):
                return chr((ord(ch) - ord(first) + by) % 26 + ord(first))
        return ch

    return "".join(move(ch) for ch in text)


def html(body: str, head: str = "", title: str = "Page") -> bytes:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>{head}</head>'
        f"<body><nav><a href='/'>Home</a> <a href='/sport'>Sport</a> <a href='/news'>More News</a></nav>"
        f"{body}<footer><p>Copyright Example Media.</p></footer></body></html>"
    ).encode()


def paragraphs(texts: list[str] = PROSE) -> str:
    return "".join(f"<p>{t}</p>" for t in texts)


# -- titles -------------------------------------------------------------------------------------


def test_section_label_in_h1_gives_way_to_the_headline() -> None:
    body = f"<h1>Sport</h1><h2>{HEADLINE}</h2>{paragraphs()}"
    result = extract(
        html(body, title=f"{HEADLINE} - Belfast Telegraph"), "https://www.belfasttelegraph.co.uk/a/1"
    )
    assert result.title == HEADLINE


def test_site_name_in_h1_gives_way_to_the_headline() -> None:
    body = f"<h1>TimesLeader.com</h1><h3>{HEADLINE}</h3>{paragraphs()}"
    result = extract(html(body, title=f"TimesLeader.com | {HEADLINE}"), "https://www.timesleader.com/news/1")
    assert result.title == HEADLINE


@pytest.mark.parametrize(
    ("page_title", "url"),
    [
        (f"{HEADLINE}_English_Xinhua", "http://news.xinhuanet.com/english/2008-05/01/content_1.htm"),
        (f"{HEADLINE} - Belfast Telegraph", "https://www.belfasttelegraph.co.uk/news/1.html"),
        (f"{HEADLINE} | NEWS.com.au", "https://www.news.com.au/world/1"),
    ],
)
def test_site_segments_leave_the_title(page_title: str, url: str) -> None:
    result = extract(html(f"<div>{paragraphs()}</div>", title=page_title), url)
    assert result.title == HEADLINE


def test_a_label_is_not_taken_over_a_headline_and_never_leaves_the_title_empty() -> None:
    weather = extract(html(f"<h1>10°C</h1>{paragraphs()}", title=HEADLINE), "https://paper.example/a")
    assert weather.title == HEADLINE
    only_label = extract(
        html(f"<h1>More News</h1>{paragraphs()}", title="More News"), "https://paper.example/b"
    )
    assert only_label.title == "More News"


@pytest.mark.parametrize(
    "chrome",
    [
        '<h1 class="menu-toggle">Menu</h1>',  # a theme's menu button
        '<h1 class="navSkip">Navigation und Service</h1>',  # a skip link's heading
        "<h1>Sections</h1>",  # the nav drawer's heading, with no class to tell
    ],
)
def test_page_chrome_in_an_h1_gives_way_to_the_headline(chrome: str) -> None:
    body = f'{chrome}<h1 class="entry-title">{HEADLINE}</h1>{paragraphs()}'
    result = extract(html(body, title=f"{HEADLINE} - Example Blog"), "https://blog.example/2020/2")
    assert result.title == HEADLINE


def test_a_blog_archive_trail_and_its_site_logo_leave_the_title() -> None:
    page_title = f"Four Years Remaining &raquo; Blog Archive &raquo; {HEADLINE}"
    body = f'<h1><a href="/">Four Years Remaining</a></h1><div>{paragraphs()}</div>'
    result = extract(html(body, title=page_title), "http://fouryears.eu/2009/11/21/interning/")
    assert result.title == HEADLINE


def test_the_site_named_in_parentheses_leaves_the_title() -> None:
    page_title = f"{HEADLINE} (neues deutschland)"
    result = extract(
        html(f"<div>{paragraphs()}</div>", title=page_title), "https://www.neues-deutschland.de/a/1"
    )
    assert result.title == HEADLINE
    kept = f"{HEADLINE} (video)"  # not the site: stays
    assert extract(html(f"<div>{paragraphs()}</div>", title=kept), "https://paper.example/a").title == kept


def test_a_one_word_headline_is_no_label() -> None:
    result = extract(
        html(f"<h1>Nebelsuppe.</h1>{paragraphs()}", title="Nebelsuppe."), "https://blog.example/2020/1"
    )
    assert result.title == "Nebelsuppe."


def test_a_segment_that_only_begins_with_the_site_name_stays() -> None:
    headline = "Climate summit in Glasgow - DRK: more people need help because of the climate"
    result = extract(html(f"<div>{paragraphs()}</div>", title=headline), "https://www.drk.de/presse/1")
    assert result.title == headline


def test_a_headline_with_a_kicker_keeps_it() -> None:
    headline = "Election 2024: Council approves tram extension"
    result = extract(html(f"<h1>{headline}</h1>{paragraphs()}", title=headline), "https://paper.example/c")
    assert result.title == headline


# -- dates --------------------------------------------------------------------------------------


def jsonld(**fields: object) -> str:
    return f'<script type="application/ld+json">{json.dumps({"@type": "NewsArticle", **fields})}</script>'


def test_the_date_keeps_the_page_offset_and_its_local_day() -> None:
    head = jsonld(headline=HEADLINE, datePublished="2024-03-05T23:30:00-05:00")
    result = extract(html(paragraphs(), head), "https://paper.example/d")
    assert result.published_at == datetime(2024, 3, 6, 4, 30, tzinfo=UTC)  # the same instant
    assert result.published_at is not None and result.published_at.date().isoformat() == "2024-03-05"
    assert result.published_at.utcoffset() == timedelta(hours=-5)
    assert parse_date("2024-03-05T23:30:00-05:00") == datetime(2024, 3, 6, 4, 30, tzinfo=UTC)


def test_a_utc_time_is_shown_in_the_offset_the_page_uses() -> None:
    head = (
        '<meta property="article:published_time" content="2024-03-05T23:30:00Z">'
        '<meta property="article:modified_time" content="2024-03-06T09:00:00+01:00">'
    )
    result = extract(html(paragraphs(), head), "https://paper.example/e")
    assert result.published_at is not None and result.published_at.date().isoformat() == "2024-03-06"


def test_a_date_only_value_keeps_its_day() -> None:
    head = (
        '<meta property="article:published_time" content="2024-03-05">'
        '<meta property="article:modified_time" content="2024-03-06T09:00:00-08:00">'
    )
    result = extract(html(paragraphs(), head), "https://paper.example/f")
    assert result.published_at is not None and result.published_at.date().isoformat() == "2024-03-05"


def test_the_time_of_the_article_not_of_a_related_list() -> None:
    body = (
        '<aside><ul><li><a href="/old">Old story</a> <time datetime="2019-01-02T10:00:00Z">2 Jan</time></li>'
        "</ul></aside>"
        f'<article><h1>{HEADLINE}</h1><div class="byline"><time datetime="2024-04-05T08:00:00+02:00">'
        f"5 April</time></div>{paragraphs()}</article>"
    )
    result = extract(html(body), "https://paper.example/g")
    assert result.published_at is not None and result.published_at.date().isoformat() == "2024-04-05"


# -- escalation ---------------------------------------------------------------------------------


def test_the_largest_block_counts_text_between_br_and_in_tables() -> None:
    text = "<br><br>".join(PROSE)
    tree = lxml.html.document_fromstring(f"<html><body><table><tr><td>{text}</td></tr></table></body></html>")
    assert largest_text_block(tree) >= sum(len(p) for p in PROSE)
    tree = lxml.html.document_fromstring(f"<html><body><div>{paragraphs()}</div></body></html>")
    assert largest_text_block(tree) >= sum(len(p) for p in PROSE)
    menu = "".join(f'<a href="/{i}">A fairly long link text number {i}</a> ' for i in range(40))
    tree = lxml.html.document_fromstring(f"<html><body><div>{menu}</div></body></html>")
    assert largest_text_block(tree) < 100  # links are menus, not running text


def test_a_table_and_br_layout_keeps_its_article() -> None:
    text = "<br><br>".join(f"<font size=2>{p}</font>" for p in PROSE)
    body = (
        f'<table><tr><td class="nav"><a href="/">Home</a><br><a href="/sport">Sport</a></td>'
        f'<td><b class="headline">{HEADLINE}</b><br>{text}</td></tr></table>'
    )
    result = extract(html(body, title=HEADLINE), "https://oldpaper.example/2008/05/story.html")
    for paragraph in PROSE:
        assert paragraph in result.text.replace("\n", " ")


# -- no body, scrambled text --------------------------------------------------------------------


def test_a_page_without_a_body_keeps_its_title_and_date() -> None:
    head = jsonld(headline=HEADLINE, datePublished="2024-03-05T10:00:00+01:00")
    with pytest.raises(NoBodyError, match="no article body") as caught:
        extract(html(f"<h1>{HEADLINE}</h1>", head), "https://paper.example/h")
    partial = caught.value.partial
    assert isinstance(partial, Extracted) and partial.title == HEADLINE and partial.text == ""
    assert partial.published_at == datetime(2024, 3, 5, 9, 0, tzinfo=UTC)
    copy = pickle.loads(pickle.dumps(caught.value))  # it crosses the pool's processes
    assert isinstance(copy, NoBodyError) and copy.partial == partial


def test_a_page_without_anything_is_an_extraction_error() -> None:
    with pytest.raises(ExtractionError) as caught:
        extract(b"<html><body><div><a href='/'>Home</a></div></body></html>", None)
    assert not isinstance(caught.value, NoBodyError)


def test_the_partial_result_comes_back_from_worker_processes() -> None:
    head = jsonld(headline=HEADLINE, datePublished="2024-03-05T10:00:00+01:00")
    items = [
        (i, html(f"<h1>{HEADLINE}</h1>" + (paragraphs() if i % 2 else ""), head), None) for i in range(10)
    ]
    results = dict(extract_many(items, workers=2))
    for i, result in results.items():
        if i % 2:
            assert isinstance(result, Extracted) and result.text
        else:
            assert isinstance(result, NoBodyError) and isinstance(result.partial, Extracted)
            assert result.partial.title == HEADLINE


def test_letter_shifted_text_is_dropped_with_a_reason() -> None:
    head = jsonld(headline=HEADLINE, datePublished="2024-03-05T10:00:00+01:00")
    with pytest.raises(NoBodyError, match="letter-shifted") as caught:
        extract(html(f"<h1>{HEADLINE}</h1>" + paragraphs([shifted(p) for p in PROSE]), head), None)
    assert isinstance(caught.value.partial, Extracted) and caught.value.partial.title == HEADLINE


@pytest.mark.parametrize(
    "text",
    [
        " ".join(PROSE),
        "Die Stadt hat am Dienstag beschlossen, das Straßenbahnnetz über den Fluss auszubauen. Der Plan "
        "wird seit mehr als zehn Jahren diskutiert, und die Bewohner der östlichen Stadtteile fordern ihn "
        "schon lange. Nach dem Plan beginnt der Bau des ersten Abschnitts im nächsten Frühjahr und soll "
        "drei Jahre dauern, mit bis zu vierzigtausend Fahrgästen am Tag.",
        "Le conseil municipal a voté mardi pour étendre le réseau de tramway de l'autre côté du fleuve, "
        "un projet qui est débattu depuis plus de dix ans et que les habitants des quartiers de l'est "
        "réclament depuis longtemps. Les travaux de la première section commenceront au printemps "
        "prochain et dureront trois ans.",
        "Trong khi đó, các nhà khoa học cho biết rằng những thay đổi về khí hậu sẽ ảnh hưởng đến nhiều "
        "vùng của đất nước trong những năm tới, đặc biệt là các tỉnh ven biển nơi người dân sống bằng "
        "nghề đánh bắt cá và trồng lúa từ nhiều đời nay mà không có sự hỗ trợ nào",
        "Ejf Gppe.Usvdlt",  # too short to judge
    ],
)
def test_language_passes(text: str) -> None:
    assert not_language(text) is None


def test_scrambled_text_is_not_language() -> None:
    assert not_language(shifted(" ".join(PROSE), 3)) is not None
    assert not_language(" ".join(["xqzt vbnm krtpl zzkq wrtp"] * 20)) is not None


# -- live blogs ---------------------------------------------------------------------------------

ENTRIES = [
    ("Mayor speaks", PROSE[0]),
    ("Vote passes", PROSE[1]),
    ("Opposition reacts", PROSE[2]),
]


def live_head() -> str:
    updates = [{"@type": "BlogPosting", "headline": h, "articleBody": b} for h, b in ENTRIES]
    return (
        '<script type="application/ld+json">'
        + json.dumps({"@type": "LiveBlogPosting", "headline": HEADLINE, "liveBlogUpdate": updates})
        + "</script>"
    )


def test_a_live_blog_shown_by_script_keeps_every_entry() -> None:
    lead = "Follow the council's tram vote live as the debate unfolds in the chamber this afternoon."
    result = extract(html(f"<h1>{HEADLINE}</h1><p>{lead}</p><div id='entries'></div>", live_head()), None)
    assert result.live_blog
    for headline, text in ENTRIES:
        assert headline in result.text and text in result.text


def test_a_live_blog_that_shows_its_entries_keeps_the_page() -> None:
    shown = "".join(f"<h2>{h}</h2><p>{b}</p>" for h, b in ENTRIES[:2])
    result = extract(html(f"<article><h1>{HEADLINE}</h1>{shown}</article>", live_head()), None)
    assert result.live_blog
    assert PROSE[0] in result.text and PROSE[1] in result.text and PROSE[2] not in result.text


def test_live_blog_markers_and_ordinary_articles() -> None:
    marked = html(f"<main class='liveblog-container'><h1>{HEADLINE}</h1>{paragraphs()}</main>")
    assert extract(marked, None).live_blog
    teaser = html(f"<aside class='live-blog-teaser'>Live: markets</aside><h1>{HEADLINE}</h1>{paragraphs()}")
    assert not extract(teaser, None).live_blog


# -- the extract command ------------------------------------------------------------------------


def test_extract_command_uses_the_pool_and_keeps_the_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = []
    for i in range(12):
        path = tmp_path / f"page{i}.html.gz"
        path.write_bytes(gzip.compress(html(f"<h1>Story {i} of the day in town</h1>{paragraphs()}")))
        files.append(str(path))
    empty = tmp_path / "empty.html"
    empty.write_bytes(html(f"<h1>{HEADLINE}</h1>", jsonld(headline=HEADLINE, datePublished="2024-03-05")))
    status = main(["extract", *files, str(empty), "--workers", "2"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert status != 0  # one file had no body
    assert [line["file"] for line in lines] == [*files, str(empty)]
    assert [line["title"] for line in lines[:12]] == [f"Story {i} of the day in town" for i in range(12)]
    assert "no article body" in lines[-1]["error"] and lines[-1]["title"] == HEADLINE
    assert lines[-1]["published_at"].startswith("2024-03-05")
