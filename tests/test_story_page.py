"""The story pages in a real browser: Debian's Chromium, headless, driven by Playwright.

The store is filled by running the pipeline over the bundled sample news web. The list page must
filter by outlet, place, text and date and keep each outlet's colour from card to card; the Kyiv
strike's own page must show its figures timeline (table and chart), its reports and outlets; both
must fit a 390 px phone. Screenshots go to artifacts/ for people to look at.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import text

from pipeline.cli import main
from pipeline.models import Figure, Story, StoryArticle
from pipeline.sampleweb.server import SITE_DIR, SampleWeb, sources_yaml
from pipeline.serve.readapi import COOKIE, create_app
from pipeline.serve.tokens import create_token
from pipeline.serve.web.filters import choices, parse_filters, story_ids
from pipeline.serve.web.page import PALETTE, outlet_colours, outlet_palette, story_page
from pipeline.store.core import Store
from tests.test_views import fill

if TYPE_CHECKING:
    from playwright.sync_api import Page

T0 = datetime(2026, 11, 19, 1, 0, tzinfo=UTC)
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
FEED_OUTLETS = ["wire", "ledger", "herald", "courier"]
KYIV_STRIKE_EVENT = "kyiv-strike-2026-11-19"  # the ground truth: sampleweb/site/manifest.json


def _sample_web_store(tmp_path: Path, url: str) -> Store:
    """A store filled by ``newsagg run`` over the sample web's feed outlets."""
    with SampleWeb() as web:
        registry = tmp_path / "sources.yaml"
        registry.write_text(sources_yaml(web.base_url), encoding="utf-8")
        assert (
            main(
                [
                    "run",
                    "--sources",
                    str(registry),
                    "--store",
                    url,
                    "--allow-private-network",
                    "--only",
                    *FEED_OUTLETS,
                ]
            )
            == 0
        )
    store = Store(url)
    store.migrate()
    return store


@pytest.fixture
def filled_store(tmp_path: Path, sqlite_url: str) -> Iterator[Store]:
    store = _sample_web_store(tmp_path, sqlite_url)
    yield store
    store.close()


@contextlib.contextmanager
def serving(store: Store) -> Iterator[str]:
    """``newsagg serve``'s app over ``store`` in a real uvicorn on a free port; its base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(store), log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def server(filled_store: Store) -> Iterator[str]:
    with serving(filled_store) as url:
        yield url


BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1100, "height": 900}


def _kyiv_story(store: Store) -> Story:
    manifest = json.loads((SITE_DIR / "manifest.json").read_text(encoding="utf-8"))
    [wire_report] = [
        m["url_path"] for m in manifest if m["event"] == KYIV_STRIKE_EVENT and m["outlet"] == "wire"
    ]
    story = next(s for s in store.stories() if any(a.url.endswith(wire_report) for a in s.articles))
    assert {a.source for a in story.articles} >= {
        m["outlet"] for m in manifest if m["event"] == KYIV_STRIKE_EVENT and m["outlet"] in FEED_OUTLETS
    }
    return story


def _dot_colours(page: Page, scope: str) -> dict[str, str]:
    pairs = page.locator(f"{scope} li.outlet").evaluate_all(
        "els => els.map(e => [e.dataset.outlet, getComputedStyle(e.querySelector('.dot')).backgroundColor])"
    )
    return dict(pairs)


@pytest.mark.slow
def test_story_list_and_story_page_in_chromium(server: str, filled_store: Store) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: apt-get install chromium (a browser is never downloaded)")
    from playwright.sync_api import sync_playwright

    story = _kyiv_story(filled_store)
    outlets = {a.source for a in story.articles}
    token = create_token(filled_store, "browser")
    ARTIFACTS.mkdir(exist_ok=True)
    foreign: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=BROWSER_ARGS)
        try:
            context = browser.new_context(viewport=DESKTOP)
            page = context.new_page()
            page.on("request", lambda r: None if r.url.startswith(server) else foreign.append(r.url))
            response = page.goto(f"{server}/?token={token}")
            assert response is not None and response.status == 200
            assert page.url == f"{server}/"  # the token left the address bar for a cookie

            # the list: one card per story, stable outlet colours across cards
            cards = page.locator("article.story")
            assert cards.count() == len(filled_store.stories())
            colours: dict[str, str] = {}
            for story_id in cards.evaluate_all("els => els.map(e => e.dataset.storyId)"):
                for outlet, colour in _dot_colours(page, f'article[data-story-id="{story_id}"]').items():
                    assert colours.setdefault(outlet, colour) == colour, f"{outlet} changes colour"
            card = page.locator(f"#story-{story.story_id}")
            assert card.locator("h2").inner_text() == story.title
            assert (
                set(card.locator("li.outlet").evaluate_all("els => els.map(e => e.dataset.outlet)"))
                == outlets
            )
            assert "killed" in card.locator(".keyfigs").inner_text()
            page.screenshot(path=str(ARTIFACTS / "story-list-desktop.png"), full_page=True)

            # the filters: outlet, place, text and dates each narrow the list
            page.select_option("select[name=outlet]", "ledger")
            page.click("form.filters button")
            shown = page.locator("article.story").evaluate_all("els => els.map(e => e.dataset.storyId)")
            with_ledger = [
                s.story_id for s in filled_store.stories() if "ledger" in {a.source for a in s.articles}
            ]
            assert sorted(shown) == sorted(with_ledger) and story.story_id in shown
            assert "outlet=ledger" in page.url
            page.goto(f"{server}/?q=kyiv")
            titled = [
                s.story_id
                for s in filled_store.stories()
                if "kyiv" in (s.title or "").lower() or "kyiv" in (s.summary or "").lower()
            ]
            assert sorted(
                page.locator("article.story").evaluate_all("els => els.map(e => e.dataset.storyId)")
            ) == sorted(titled)
            place = next(f.value for f in story.figures if f.kind == "place")
            page.goto(f"{server}/?place={place}")
            assert story.story_id in page.locator("article.story").evaluate_all(
                "els => els.map(e => e.dataset.storyId)"
            )
            page.goto(f"{server}/?from=2001-01-01&to=2001-01-02")
            assert page.locator("article.story").count() == 0
            assert "No story matches these filters" in page.locator("main").inner_text()
            page.goto(f"{server}/?from=yesterday")
            assert "is not a date" in page.locator(".problems").inner_text()
            assert page.locator("article.story").count() == len(filled_store.stories())

            # the story's own page
            page.goto(f"{server}/")
            page.click(f"#story-{story.story_id} h2 a")
            assert page.url == f"{server}/story/{story.story_id}"
            assert page.locator("h1.title").inner_text() == story.title
            assert _dot_colours(page, "article.story-page") == {o: colours[o] for o in outlets}
            chart = page.locator("svg.chart")
            assert chart.is_visible()
            assert set(chart.locator("g.kind").evaluate_all("els => els.map(e => e.dataset.kind)")) >= {
                "killed",
                "injured",
            }
            table = page.locator("table.figs").inner_text()
            for fig in story.figures:
                if fig.kind in ("killed", "injured"):
                    assert fig.value in table and fig.source in table
                    if fig.source_claim:  # who gives each figure, where the report says
                        assert f"{fig.value} ({fig.source_claim})" in table
            assert {int(f.value) for f in story.figures if f.kind == "killed"} >= {1, 2}
            reports = page.locator("ol.reports > li")
            assert reports.count() == len(story.articles)
            assert set(reports.evaluate_all("els => els.map(e => e.dataset.outlet)")) == outlets
            if any(a.copy_of for a in story.articles):
                assert page.locator("#copies").is_visible()
            why = page.locator("#evidence")
            assert why.is_visible() and "Places they name: Kyiv" in why.inner_text()
            page.screenshot(path=str(ARTIFACTS / "story-page-desktop.png"), full_page=True)

            # a 390 px phone: nothing wider than the screen, the chart fits, the text is readable
            phone = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
            phone.add_cookies(context.cookies())
            mobile = phone.new_page()
            for path, shot in (
                ("/", "story-list-phone.png"),
                (f"/story/{story.story_id}", "story-page-phone.png"),
            ):
                mobile.goto(f"{server}{path}")
                width = mobile.evaluate("document.documentElement.scrollWidth")
                assert width <= PHONE["width"], f"{path} scrolls sideways on a phone ({width} px)"
                mobile.screenshot(path=str(ARTIFACTS / shot), full_page=True)
            box = mobile.locator("svg.chart").bounding_box()
            assert box is not None and box["width"] <= PHONE["width"]
            font = mobile.locator("svg.chart g.kind text").first.evaluate(
                "e => e.getBoundingClientRect().height"
            )
            assert font >= 9, "the chart's labels shrank below readable size"
        finally:
            browser.close()
    assert foreign == [], "the pages fetched something from elsewhere"


def _get(url: str, **headers: str) -> str:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as response:
        assert response.status == 200, url
        return str(response.read().decode("utf-8"))


def test_the_stored_evidence_on_the_story_page_the_api_and_stories_json(
    tmp_path: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Over the sample web, on each database: dedup stored why the Kyiv strike's reports are
    one story, and the page (over HTTP, from a real server), the read API and ``stories
    --json`` all show that record."""
    store = _sample_web_store(tmp_path, store_url)
    try:
        story = _kyiv_story(store)
        with store.engine.connect() as conn:
            stored = conn.execute(
                text("SELECT evidence FROM newsagg_v1_stories WHERE story_id = :s"), {"s": story.story_id}
            ).scalar_one()
        evidence = json.loads(stored)  # stored by dedup, not worked out on this read
        assert story.evidence == evidence
        assert evidence["reports"] == len(story.articles) >= 4
        assert "Kyiv" in evidence["shared_places"] and "kyiv" in evidence["shared_names"]
        assert {"1", "2"} <= set(evidence["shared_counts"])
        assert evidence["event_window"]["from"] <= evidence["event_window"]["to"]
        assert 0 < evidence["nearest_similarity"]["min"] <= evidence["nearest_similarity"]["mean"] <= 1
        single = next(s for s in store.stories() if len(s.articles) == 1)
        assert single.evidence is not None and single.evidence["shared_names"] == []

        token = create_token(store, "evidence")
        with serving(store) as base:
            page = _get(f"{base}/story/{story.story_id}", Cookie=f"{COOKIE}={token}")
            one = json.loads(_get(f"{base}/stories/{story.story_id}", Authorization=f"Bearer {token}"))
            listed = json.loads(_get(f"{base}/stories?limit=200", Authorization=f"Bearer {token}"))
            lone = _get(f"{base}/story/{single.story_id}", Cookie=f"{COOKIE}={token}")
    finally:
        store.close()
    section = page.split('<section class="panel" id="evidence">', 1)[1].split("</section>", 1)[0]
    assert "Why these reports are one story" in section
    assert f"of the {len(story.articles)} reports" in section
    assert '<li data-evidence="shared_places"><b>Places they name:</b> Kyiv' in section
    names = section.split('data-evidence="shared_names">', 1)[1].split("</li>", 1)[0]
    assert all(n.replace("'", "&#x27;") in names for n in evidence["shared_names"])
    assert 'data-evidence="event_window"' in section and 'data-evidence="nearest_similarity"' in section
    assert f"at least {evidence['nearest_similarity']['min']:.2f} alike" in section
    assert 'id="evidence"' not in lone, "a story of one report has nothing to share"

    assert one["evidence"] == evidence
    assert {s["story_id"]: s["evidence"] for s in listed["stories"]}[story.story_id] == evidence
    capsys.readouterr()
    assert main(["stories", "--store", store_url, "--json"]) == 0
    cli = {s["story_id"]: s for s in json.loads(capsys.readouterr().out)}
    assert cli[story.story_id] == one, "the API's story is exactly the CLI's"
    assert all(s["evidence"] is not None for s in cli.values())


# -- the pages without a browser -----------------------------------------------------------------


def test_outlet_colours_are_stable_and_distinct() -> None:
    outlets = ["wire", "ledger", "herald", "courier", "vestnik", "tagesblatt", "gazette", "monitor"]
    palette = outlet_palette(outlets)
    assert len(set(palette.values())) == len(outlets), "a small registry never shares a colour"
    assert outlet_palette(list(reversed(outlets))) == palette, "the order outlets arrive in is irrelevant"
    assert all(palette[o] in PALETTE for o in outlets)
    # a story with some of the outlets colours them as the whole store does
    story = Story("st-x", "t", None, T0, T0, (StoryArticle("a1", "https://w/1", "wire", "t", T0),))
    assert outlet_colours(story, palette) == {"wire": palette["wire"]}


def test_story_page_renders_copies_evidence_and_a_table_row_per_report() -> None:
    members = (
        StoryArticle("a1", "https://wire.example/1", "wire", "Strike hits city", T0),
        StoryArticle("a2", "https://herald.example/1", "herald", "Strike hits city", T0, copy_of="a1"),
        StoryArticle(
            "a3", "https://ledger.example/1", "ledger", "Toll rises to two", T0 + timedelta(hours=3)
        ),
    )
    figs = (
        Figure("killed", "1", "wire", "https://wire.example/1", T0),
        Figure("killed", "2", "ledger", "https://ledger.example/1", T0 + timedelta(hours=3)),
        Figure("injured", "9", "ledger", "https://ledger.example/1", T0 + timedelta(hours=3)),
        Figure("place", "Podil", "wire", "https://wire.example/1", T0),
    )
    story = Story(
        "st-20261119T010000Z-0123456789ab",
        "Toll rises to two",
        "s",
        T0,
        T0 + timedelta(hours=3),
        members,
        figs,
    )
    evidence = {
        "reports": 3,
        "languages": ["en", "uk"],
        "shared_names": ["klitschko", "<script>alert(1)</script>"],
        "shared_places": ["Kyiv"],
        "shared_counts": ["2", "9"],
        "event_window": {
            "from": "2026-11-18T18:00:00Z",
            "to": "2026-11-19T06:00:00Z",
            "reports_with_window": 2,
        },
        "published": {"from": "2026-11-19T01:00:00Z", "to": "2026-11-19T04:00:00Z"},
        "nearest_similarity": {"min": 0.412, "mean": 0.5},
        "later_key": {"ignored": True},
    }
    html = story_page(replace(story, evidence=evidence))
    section = html.split('<section class="panel" id="evidence">', 1)[1].split("</section>", 1)[0]
    assert "Why these reports are one story" in section and "of the 3 reports" in section
    assert '<li data-evidence="shared_places"><b>Places they name:</b> Kyiv</li>' in section
    assert "klitschko" in section and "&lt;script&gt;alert(1)&lt;/script&gt;" in section
    assert "<script" not in html, "what the store holds is escaped"
    assert "2, 9" in section and "en, uk" in section
    assert "18 Nov 2026 18:00 UTC to 19 Nov 2026 06:00 UTC (the time 2 of the 3 reports give" in section
    assert "at least 0.41 alike, 0.50 on average" in section
    assert "ignored" not in section
    assert "herald carries wire's report" in html and "copy of wire" in html
    assert html.count("<tr><td><time") == 2, "one row per (time, outlet) that gave a number"
    assert '<g class="kind" data-kind="killed">' in html and 'data-kind="injured"' in html
    assert "Why these reports" not in story_page(story), "no evidence stored or worked out: no section"
    alone = replace(story, articles=members[:1], evidence={**evidence, "reports": 1})
    assert "Why these reports" not in story_page(alone), "one report shares nothing"
    odd = replace(
        story, evidence={"shared_places": "Kyiv", "event_window": [1], "nearest_similarity": {"min": "x"}}
    )
    assert '<ul class="evidence"></ul>' in story_page(odd), "a malformed record shows nothing, not a 500"
    assert "3 reports from 3 outlets" in html


def test_story_page_labels_disagreeing_figures_with_who_claims_them() -> None:
    url = "https://monitor.example/1"
    when = T0 + timedelta(hours=7)
    figs = (
        Figure("killed", "2", "monitor", url, when, "city military administration"),
        Figure("killed", "3", "monitor", url, when, "State Emergency Service"),
        Figure("injured", "16", "monitor", url, when),
        Figure("killed", "1", "wire", "https://wire.example/1", T0),
    )
    members = (
        StoryArticle("a1", "https://wire.example/1", "wire", "Strike", T0),
        StoryArticle("a2", url, "monitor", "Toll rises", when),
    )
    html = story_page(Story("st-c", "Toll rises", "s", T0, when, members, figs))
    cell = (
        '2 <span class="claim">(city military administration)</span> · '
        '3 <span class="claim">(State Emergency Service)</span>'
    )
    assert f'<td class="num moved claimed">{cell}</td>' in html  # side by side; moved from 1
    assert '<td class="num">16</td>' in html  # unattributed: the number alone
    assert "monitor: 3 killed according to State Emergency Service" in html  # the chart's marker
    assert html.count("<tr><td><time") == 2


def test_filters_parse_leniently() -> None:
    f = parse_filters("  Kyiv   strike ", "wire", "", "2026-11-19", "2026-11-18")
    assert (f.text, f.outlet, f.date_from, f.date_to) == (
        "Kyiv strike",
        "wire",
        date(2026, 11, 18),
        date(2026, 11, 19),
    )
    assert f.problems == ("to is before from; swapped",)
    bad = parse_filters(date_from="yesterday")
    assert bad.date_from is None and "not a date" in bad.problems[0] and not bad.active


def test_filters_select_stories_on_both_databases(store_url: str) -> None:
    with Store(store_url) as store:
        store.migrate()
        fill(store)  # st_kyiv: wire, courier, ledger, place Shevchenkivskyi; st_odesa: herald, Prymorskyi

        def ids(**kw: str | None) -> list[str]:
            return story_ids(store.engine, parse_filters(**kw), limit=10)[0]  # type: ignore[arg-type]

        assert sorted(ids()) == ["st_kyiv", "st_odesa"]
        assert ids(outlet="herald") == ["st_odesa"]
        assert ids(place="shevchenk") == ["st_kyiv"]
        assert ids(text="ODESA") == ["st_odesa"]
        assert ids(text="100%_") == []  # a literal, not a pattern
        assert ids(date_from="2026-11-20") == []
        assert sorted(ids(date_from="2026-11-19", date_to="2026-11-19")) == ["st_kyiv", "st_odesa"]
        assert story_ids(store.engine, parse_filters(), limit=1) == (["st_odesa"], True)
        outlets, places = choices(store.engine)
        assert outlets == ["courier", "herald", "ledger", "wire"] and "Prymorskyi" in places
