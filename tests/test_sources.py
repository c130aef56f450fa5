from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.sources import load_registry, parse_registry, select

GOOD = """
sources:
  - name: wire
    kind: rss
    url: https://wire.example/rss.xml
    language: en
  - name: monitor
    kind: sitemap
    url: https://monitor.example/sitemap_index.xml
    delay: 2
  - name: gazette
    kind: html
    url: https://gazette.example/world/
    links: "a.story-link"
    next_page: "a.next"
    max_pages: 3
  - name: old
    kind: rss
    url: https://old.example/feed
    enabled: false
"""


def test_good_registry_loads_typed_sources(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(GOOD)
    sources = load_registry(path)
    assert [s.name for s in sources] == ["wire", "monitor", "gazette", "old"]
    gazette = sources[2]
    assert (gazette.kind, gazette.links, gazette.next_page, gazette.max_pages) == (
        "html",
        "a.story-link",
        "a.next",
        3,
    )
    assert sources[1].delay == 2.0
    assert [s.name for s in select(sources)] == ["wire", "monitor", "gazette"]
    assert [s.name for s in select(sources, ["gazette"])] == ["gazette"]
    assert [s.name for s in select(sources, kinds=["rss"])] == ["wire"]
    with pytest.raises(ConfigError, match=r"unknown source name.*nope"):
        select(sources, ["nope"])


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "name: a\n    kind: rss\n    url: https://a.example/\n    colour: red",
            r"source 'a': unknown field 'colour'",
        ),
        ("name: a\n    kind: rss", r"source 'a': missing field 'url'"),
        (
            "name: a\n    kind: podcast\n    url: https://a.example/",
            r"source 'a': field 'kind' must be one of rss, sitemap, html, got 'podcast'",
        ),
        (
            "name: a\n    kind: rss\n    url: ftp://a.example/",
            r"source 'a': field 'url' must be an absolute http\(s\) URL",
        ),
        (
            "name: a\n    kind: html\n    url: https://a.example/",
            r"source 'a': field 'links' .* required for kind html",
        ),
        (
            "name: a\n    kind: rss\n    url: https://a.example/\n    links: a",
            r"source 'a': field 'links' only applies to kind html",
        ),
        ("name: a\n    kind: rss\n    url: https://a.example/\n    delay: -1", r"source 'a': field 'delay'"),
        ("kind: rss\n    url: https://a.example/", r"source #1: missing field 'name'"),
        ("name: Bad Name\n    kind: rss\n    url: https://a.example/", r"field 'name' must match"),
    ],
)
def test_bad_entries_name_the_source_and_field(entry: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_registry(f"sources:\n  - {entry}\n", "reg.yaml")


def test_bad_documents() -> None:
    with pytest.raises(ConfigError, match="top-level 'sources:' list"):
        parse_registry("feeds: []")
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_registry("sources: [")
    with pytest.raises(ConfigError, match="duplicate name"):
        parse_registry(
            "sources:\n  - {name: a, kind: rss, url: 'https://a.example/'}\n"
            "  - {name: a, kind: rss, url: 'https://b.example/'}\n"
        )


def test_missing_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="NEWSAGG_SOURCES"):
        load_registry(tmp_path / "nope.yaml")
