"""Every feed edge case in ../shared goes through the feed stage without an exception."""

from __future__ import annotations

import json

from pipeline.extract import sanitize_text
from pipeline.parse.feeds import parse_feed
from tests.conftest import shared_path


def test_feedparser_edge_cases_never_crash() -> None:
    root = shared_path("data", "feeds", "feedparser-tests", "tests")
    files = sorted(p for p in root.rglob("*") if p.is_file())
    assert len(files) >= 2000
    failures = []
    for path in files:
        try:
            result = parse_feed(path.read_bytes(), f"http://feeds.example/{path.name}")
        except Exception as exc:  # the point of the test: report every crash, not the first
            failures.append(f"{path.relative_to(root)}: {type(exc).__name__}: {exc}")
            continue
        assert all(e.url.startswith(("http://", "https://")) for e in result.entries)
    assert failures == []


def _norm(title: str) -> str:
    """Titles as plain text, as parse_feed stores them (entities resolved, markup dropped)."""
    return " ".join(sanitize_text(title).split())


def test_real_feeds_yield_their_linked_items() -> None:
    root = shared_path("data", "feeds", "rss-parser-tests", "test")
    checked = 0
    for source in sorted((root / "input").iterdir()):
        expected_path = root / "output" / (source.stem + ".json")
        if not expected_path.exists():
            continue
        raw = expected_path.read_bytes()
        try:
            expected = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:  # one fixture's expected output is itself Latin-1
            expected = json.loads(raw.decode("latin-1"))
        items = expected.get("feed", {}).get("items", [])
        links = {
            i["link"].strip()
            for i in items
            if isinstance(i.get("link"), str) and i["link"].strip().startswith("http")
        }
        result = parse_feed(source.read_bytes(), "http://feeds.example/feed")
        got = {e.url for e in result.entries}
        # Canonicalisation may respell a link; compare counts and titles instead of strings.
        assert len(got) >= len(links) * 0.9, source.name
        # The reference parser mangled some non-UTF-8 titles into U+FFFD; those say nothing.
        titles = {
            _norm(i["title"])
            for i in items
            if isinstance(i.get("title"), str) and i["title"].strip() and "\ufffd" not in i["title"]
        }
        got_titles = {_norm(e.title or "") for e in result.entries}
        if links and titles:
            assert len(titles & got_titles) >= 0.8 * len(titles), source.name
        checked += 1
    assert checked >= 20
