"""The walking skeleton end to end: the sample news web on 127.0.0.1 through `newsagg run`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from pipeline.cli import main
from pipeline.sampleweb.server import SampleWeb, sources_yaml
from pipeline.store.core import Store
from tests.helpers import dump_store

FEED_OUTLETS = ["wire", "ledger", "herald", "courier", "vestnik", "tagesblatt"]


@pytest.fixture
def web() -> SampleWeb:
    with SampleWeb() as server:
        yield server


def registry(tmp_path: Path, web: SampleWeb, extra: str = "") -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(sources_yaml(web.base_url) + extra, encoding="utf-8")
    return path


def run(registry_path: Path, store: str, *extra: str) -> int:
    return main(["run", "--sources", str(registry_path), "--store", store, "--allow-private-network", *extra])


def stories_json(store: str, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    capsys.readouterr()
    assert main(["stories", "--store", store, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_run_twice_second_changes_nothing(
    web: SampleWeb, tmp_path: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = registry(tmp_path, web)
    assert run(reg, store_url, "--only", *FEED_OUTLETS) == 0
    out = capsys.readouterr().out
    assert "sources: 6 ok, 0 failed" in out
    stories = stories_json(store_url, capsys)
    urls = {a["url"] for s in stories for a in s["articles"]}
    manifest = json.loads(
        (
            Path(__import__("pipeline.sampleweb", fromlist=["x"]).__file__).parent / "site" / "manifest.json"
        ).read_text()
    )
    expected = {web.base_url + m["url_path"] for m in manifest if m["outlet"] in FEED_OUTLETS}
    assert expected <= urls, sorted(expected - urls)
    for story in stories:
        assert story["story_id"] and story["first_seen"] and story["last_updated"]
        for article in story["articles"]:
            assert set(article) >= {"url", "source", "title", "published_at"}
    with Store(store_url) as store, store.engine.connect() as conn:  # dedup stored every story's
        stored = dict(conn.execute(text("SELECT story_id, evidence FROM newsagg_v1_stories")).all())
    assert {s["story_id"]: s["evidence"] for s in stories} == {k: json.loads(v) for k, v in stored.items()}
    assert any(s["evidence"]["reports"] > 1 and s["evidence"]["shared_places"] for s in stories)

    before = dump_store(store_url)
    web.clear_requests()
    assert run(reg, store_url, "--only", *FEED_OUTLETS) == 0
    out = capsys.readouterr().out
    assert "articles: 0 new, 0 updated" in out
    # right after the first run its pages are still "lately stored": none is cleaned again
    assert "extraction: " not in out, out
    assert dump_store(store_url) == before
    assert web.requests, "the second run sent no request at all"
    for request in web.requests:
        assert request.path.endswith((".xml", ".atom", ".rss")), f"re-fetched {request.path}"
        headers = {k.lower(): v for k, v in request.headers.items()}
        assert "if-none-match" in headers or "if-modified-since" in headers, request.path
        assert request.status == 304


def test_faults_are_recorded_and_the_rest_survives(
    web: SampleWeb, tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = (
        f"  - name: garbage\n    kind: rss\n    url: {web.base_url}/faults/garbage-feed.xml\n"
        f"  - name: broken\n    kind: rss\n    url: {web.base_url}/faults/500\n"
        f"  - name: faults\n    kind: rss\n    url: {web.base_url}/faults/feed.xml\n"
    )
    reg = registry(tmp_path, web, extra)
    assert run(reg, sqlite_url, "--only", "wire", "garbage", "broken", "faults") == 0
    out = capsys.readouterr().out
    assert "sources: 2 ok, 2 failed" in out
    assert "failed garbage: not a feed" in out
    assert "failed broken:" in out and "500" in out
    from pipeline.store.core import Store

    store = Store(sqlite_url)
    reasons = {url: (stage, reason) for url, _, stage, reason in store.drop_reasons()}
    assert reasons[f"{web.base_url}/faults/garbage-feed.xml"][1].startswith("not a feed")
    assert "500" in reasons[f"{web.base_url}/faults/500"][1]
    assert reasons[f"{web.base_url}/faults/not-html"] == ("fetch", "not HTML (application/pdf)")
    stories = stories_json(sqlite_url, capsys)
    sources = {a["source"] for s in stories for a in s["articles"]}
    assert "wire" in sources and "faults" in sources


def test_nothing_done_exits_non_zero(web: SampleWeb, tmp_path: Path, sqlite_url: str) -> None:
    reg = registry(tmp_path, web, f"  - name: broken\n    kind: rss\n    url: {web.base_url}/faults/500\n")
    assert run(reg, sqlite_url, "--only", "broken") == 1


def test_bad_registry_is_a_usage_error(
    tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = tmp_path / "sources.yaml"
    reg.write_text("sources:\n  - {name: a, kind: rss}\n")
    assert run(reg, sqlite_url) == 2
    assert "source 'a': missing field 'url'" in capsys.readouterr().err


def test_private_network_refused_by_default(
    web: SampleWeb, tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = registry(tmp_path, web)
    assert main(["run", "--sources", str(reg), "--store", sqlite_url, "--only", "wire"]) == 1
    out = capsys.readouterr().out
    assert (
        "failed wire:" in out and "pass --allow-private-network, set NEWSAGG_ALLOW_PRIVATE_NETWORK=1" in out
    )
    assert web.requests == []


def test_demo_command_prints_stories(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "stories" in result.stdout
    assert "Kyiv" in result.stdout
    # the first night's strike: one story of all eight outlets, told in four languages
    told = re.search(r"10 reports from ([a-z, ]+) in 4 languages \(de, en, ru, uk\)", result.stdout)
    assert told is not None, result.stdout
    assert told.group(1).split(", ") == sorted(
        ["wire", "ledger", "herald", "courier", "vestnik", "tagesblatt", "monitor", "gazette"]
    )
