"""Smoke run of the end-to-end benchmark (benchmarks/e2e.py) at a small size, SQLite only."""

from __future__ import annotations

from pathlib import Path

import e2e


def test_e2e_smoke(tmp_path: Path) -> None:
    out = e2e.main(
        [
            "--articles",
            "300",
            "--outlets",
            "6",
            "--days",
            "3",
            "--store",
            "sqlite",
            "--json-out",
            str(tmp_path / "e2e.json"),
        ]
    )
    (result,) = out["results"]
    assert result["articles_stored"] > 0
    first, second = result["first"], result["second"]
    assert first["articles_per_s"] > 0
    assert all(v > 0 for v in first["times"].values() if v is not None)
    assert second["rows_changed"] == {}, second["rows_changed"]
    requests = second["requests"]
    assert requests["requests"] > 0
    by_kind, conditional = requests["by_kind"], requests["conditional_by_kind"]
    # Every feed request of the second run is conditional and no article is fetched again.
    assert by_kind.get("feed", 0) > 0
    assert conditional.get("feed", 0) == by_kind["feed"]
    assert by_kind.get("article", 0) == conditional.get("article", 0)
    # Every request of the second run carries validators: feeds, robots.txt and sitemaps alike.
    assert requests["conditional"] == requests["requests"], (by_kind, conditional)
    assert by_kind.get("robots", 0) > 0 and by_kind.get("sitemap", 0) > 0
    extraction = first["extraction"]
    assert extraction["pages"] == result["articles_stored"]
    assert 0 < extraction["trafilatura_s"] < extraction["cpu_s"] <= first["cpu_total_s"]
    assert set(extraction["share"]) == {"extract calls", "whole run"}
    assert first["politeness_bound_s"] == 0 and first["clean_cpu_ratio"] > 0
    assert first["peak"]["fds_tree"] > 0 and first["peak"]["rss_tree_mb"] > 0
    assert (tmp_path / "e2e.json").is_file()
