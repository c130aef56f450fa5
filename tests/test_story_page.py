"""The story page in a real browser: Debian's Chromium, headless, driven by Playwright.

The store is filled by running the pipeline over the bundled sample news web; the page must show
the Kyiv strike story with the outlets that reported it and its figures timeline. A screenshot
goes to artifacts/story-page.png for people to look at.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.sampleweb.server import SITE_DIR, SampleWeb, sources_yaml
from pipeline.serve.readapi import create_app
from pipeline.serve.tokens import create_token
from pipeline.store.core import Store

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
FEED_OUTLETS = ["wire", "ledger", "herald", "courier"]
KYIV_STRIKE_EVENT = "kyiv-strike-2026-11-19"  # the ground truth: sampleweb/site/manifest.json

pytestmark = pytest.mark.slow


@pytest.fixture
def filled_store(tmp_path: Path, sqlite_url: str) -> Iterator[Store]:
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
                    sqlite_url,
                    "--allow-private-network",
                    "--only",
                    *FEED_OUTLETS,
                ]
            )
            == 0
        )
    store = Store(sqlite_url)
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def server(filled_store: Store) -> Iterator[str]:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(filled_store), log_level="warning")
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


def test_story_page_shows_the_kyiv_strike_with_outlets_and_figures(server: str, filled_store: Store) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: apt-get install chromium (a browser is never downloaded)")
    from playwright.sync_api import sync_playwright

    manifest = json.loads((SITE_DIR / "manifest.json").read_text(encoding="utf-8"))
    [wire_report] = [
        m["url_path"] for m in manifest if m["event"] == KYIV_STRIKE_EVENT and m["outlet"] == "wire"
    ]
    story = next(s for s in filled_store.stories() if any(a.url.endswith(wire_report) for a in s.articles))
    outlets = {a.source for a in story.articles}
    assert outlets >= {
        m["outlet"] for m in manifest if m["event"] == KYIV_STRIKE_EVENT and m["outlet"] in FEED_OUTLETS
    }
    token = create_token(filled_store, "browser")
    ARTIFACTS.mkdir(exist_ok=True)
    foreign: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("request", lambda r: None if r.url.startswith(server) else foreign.append(r.url))
            response = page.goto(f"{server}/?token={token}")
            assert response is not None and response.status == 200
            assert page.url == f"{server}/"  # the token left the address bar for a cookie
            card = page.locator(f"#story-{story.story_id}")
            card.wait_for()
            assert card.locator("h2").inner_text() == story.title
            shown = set(card.locator("li.outlet").evaluate_all("els => els.map(e => e.dataset.outlet)"))
            assert shown == outlets
            chart = card.locator("svg.chart")
            assert chart.is_visible()
            assert set(chart.locator("g.kind").evaluate_all("els => els.map(e => e.dataset.kind)")) >= {
                "killed",
                "injured",
            }
            figures = card.locator("table.figs").inner_text()
            for fig in story.figures:
                if fig.kind in ("killed", "injured"):
                    assert fig.value in figures and fig.source in figures
            killed = {int(f.value) for f in story.figures if f.kind == "killed"}
            assert killed >= {1, 2}  # the toll rose overnight; the timeline shows both
            if story.summary:
                assert card.locator(".summary").inner_text() == story.summary
            card.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "story-page.png"), full_page=True)
            card.screenshot(path=str(ARTIFACTS / "story-page-kyiv.png"))
        finally:
            browser.close()
    assert foreign == [], "the page fetched something from elsewhere"
    assert (ARTIFACTS / "story-page.png").stat().st_size > 10_000
