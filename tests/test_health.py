"""Source health: each silent failure served on loopback must raise its flag, and a quiet but
healthy source must raise none.

Runs go through ``run_pipeline`` (what ``newsagg run`` calls) against
``pipeline.sampleweb.sites.Site``; the routes change between runs the way an outlet's site changes
between nights.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from sqlalchemy import func, select

from pipeline.cli import main
from pipeline.config import load_settings
from pipeline.context import open_context
from pipeline.health import (
    CHALLENGE_MARKERS,
    STOPPED_RUNS,
    Flag,
    SourceHealth,
    evaluate,
    overview,
    status_mix,
    warnings,
)
from pipeline.models import Source
from pipeline.progress import Progress
from pipeline.run import RunSummary, run_pipeline
from pipeline.sampleweb.sites import Site, article_html, listing_html
from pipeline.store.core import Store
from pipeline.store.health import JSON_MAX, HealthRepo, SourceRun, bounded_json
from pipeline.store.schema import source_runs
from pipeline.summary import format_summary

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)

CHALLENGE_PAGE = (
    "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>"
    '<div id="cf-challenge-running">Checking your browser before accessing the site.</div>'
    "<script>window._cf_chl_opt={cType:'managed'};</script></body></html>"
)


def nav_page(path: str) -> str:
    """A page with markup and links but no article body (a redesign moved the story)."""
    items = "".join(f'<li><a href="{path}/more/{i}">Related link {i}</a></li>' for i in range(80))
    head = f"<!DOCTYPE html><html><head><title>{path}</title></head>"
    return f"{head}<body><nav><ul>{items}</ul></nav></body></html>"


def rss(site: Site, items: list[tuple[str, str]]) -> str:
    entries = "".join(
        f"<item><title>{escape(title)}</title><link>{escape(site.url(path))}</link>"
        f"<guid>{escape(site.url(path))}</guid>"
        f"<pubDate>{format_datetime(T0 + timedelta(minutes=i))}</pubDate></item>"
        for i, (path, title) in enumerate(items)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Test</title>'
        f"<link>{site.base_url}</link>{entries}</channel></rss>"
    )


class Outlet:
    """One feed source on the site whose articles a test adds run by run."""

    def __init__(self, site: Site, name: str) -> None:
        self.site, self.name = site, name
        self.items: list[tuple[str, str]] = []
        self.source = Source(name, "rss", site.url(f"/{name}/rss.xml"))
        self.publish()

    def publish(self) -> None:
        self.site.add(f"/{self.name}/rss.xml", rss(self.site, self.items), "application/rss+xml")

    def article(self, title: str, body: str | None = None, status: int = 200) -> None:
        path = f"/{self.name}/{len(self.items)}-{title.lower().replace(' ', '-')}"
        text = body or article_html(title, f"{title}: what happened in {self.name}'s town today. " * 30)
        self.site.add(path, text, status=status)
        self.items.append((path, title))
        self.publish()


@pytest.fixture
def site() -> Iterator[Site]:
    with Site() as s:
        yield s


def run_once(store_url: str, sources: list[Source]) -> RunSummary:
    settings = load_settings({"store_url": store_url, "allow_private_network": True})
    with open_context(settings) as ctx:
        return run_pipeline(ctx, sources, None, Progress(enabled=False))


def flags_of(summary: RunSummary) -> dict[str, set[str]]:
    return {h.source: {f.rule for f in h.flags} for h in summary.health}


def test_a_source_that_stops_yielding_is_flagged_and_a_quiet_one_is_not(store_url: str, site: Site) -> None:
    stopped, quiet = Outlet(site, "stopped"), Outlet(site, "quiet")
    sources = [stopped.source, quiet.source]
    for day in range(2):  # both yield for two runs
        stopped.article(f"Bridge works day {day}")
        quiet.article(f"Harvest festival day {day}")
        first = run_once(store_url, sources)
        assert flags_of(first) == {"stopped": set(), "quiet": set()}
        assert {h.source: h.state for h in first.health} == {"stopped": "ok", "quiet": "ok"}

    # the quiet outlet publishes every other run; the stopped one never again
    for n in range(1, STOPPED_RUNS + 1):
        if n % 2 == 0:
            quiet.article(f"Council meeting {n}")
        summary = run_once(store_url, sources)
        flags = flags_of(summary)
        assert "stopped" not in flags["quiet"]
        if n < STOPPED_RUNS:
            assert flags["stopped"] == set(), f"flagged after only {n} quiet runs"
    assert flags["stopped"] == {"stopped"}
    stopped_health = next(h for h in summary.health if h.source == "stopped")
    assert stopped_health.state == "warning"
    assert stopped_health.last_good is not None
    assert any("stopped: stopped: no new or changed article" in line for line in summary.lines())

    # the flag is in `newsagg sources` and in the DAG's warning hook
    with Store(store_url) as store:
        assert [w for w in warnings(store) if w.startswith("source stopped: stopped")]
        assert not [w for w in warnings(store) if w.startswith("source quiet")]
        states = {h.source: h.state for h in overview(store, ["stopped", "quiet", "never"])}
    assert states["stopped"] == "warning" and states["never"] == "unknown"
    assert states["quiet"] in ("ok", "quiet")


def test_a_jump_in_pages_without_an_article_body_is_flagged(store_url: str, site: Site) -> None:
    outlet = Outlet(site, "redesign")
    for i in range(4):
        outlet.article(f"Story {i}")
    assert flags_of(run_once(store_url, [outlet.source])) == {"redesign": set()}
    for i in range(4):  # the redesign: pages now hold navigation only
        outlet.article(f"Later {i}", body=nav_page(f"/redesign/later-{i}"))
    summary = run_once(store_url, [outlet.source])
    flags = flags_of(summary)["redesign"]
    assert {"drops", "no-body"} <= flags
    assert "wall" not in flags, "distinct navigation pages are not a wall"
    run = summary.health[0].run
    assert run is not None and run.no_body == 4 and run.dropped == 4
    assert run.drop_reasons == {"cannot clean: no article body found": 4}


def test_challenge_pages_are_flagged_as_a_wall(store_url: str, site: Site) -> None:
    outlet = Outlet(site, "walled")
    for i in range(3):  # the bot wall answers 202 with the same challenge on every URL
        outlet.article(f"Story {i}", body=CHALLENGE_PAGE, status=202)
    summary = run_once(store_url, [outlet.source])
    assert "wall" in flags_of(summary)["walled"]
    assert summary.health[0].run is not None and summary.health[0].run.challenge_pages == 3
    assert summary.sources_failed == {}, "the run itself saw nothing wrong: that is the point"


def test_refusals_are_flagged_as_blocked(store_url: str, site: Site) -> None:
    outlet = Outlet(site, "blocker")
    for i in range(4):
        outlet.article(f"Story {i}", status=403)
    summary = run_once(store_url, [outlet.source])
    assert "blocked" in flags_of(summary)["blocker"]
    assert summary.health[0].run is not None and summary.health[0].run.statuses == {"403": 4}


@pytest.mark.slow
def test_a_section_selector_that_matches_nothing_is_flagged(sqlite_url: str, site: Site) -> None:
    site.add("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
    site.add(
        "/world/",
        listing_html([(f"/world/{i}", f"Story {i}") for i in range(3)]).replace("story-link", "card"),
    )
    for i in range(3):
        site.add_article(f"/world/{i}", f"Story {i}")
    section = Source("section", "html", site.url("/world/"), links="a.story-link")
    summary = run_once(sqlite_url, [section])
    assert "selector" in flags_of(summary)["section"]
    assert "matched no article link" in next(
        f.detail for f in summary.health[0].flags if f.rule == "selector"
    )


def test_a_healthy_quiet_source_raises_nothing_over_many_runs(store_url: str, site: Site) -> None:
    outlet = Outlet(site, "calm")  # one story, then silence: no rhythm to break
    outlet.article("Only story")
    for _ in range(STOPPED_RUNS + 2):
        summary = run_once(store_url, [outlet.source])
        assert flags_of(summary) == {"calm": set()}
    # a source that never yielded is quiet, not stopped: nothing was lost
    empty = Outlet(site, "empty")
    for _ in range(STOPPED_RUNS + 1):
        summary = run_once(store_url, [empty.source])
        assert flags_of(summary) == {"empty": set()}
        assert summary.health[0].state == "quiet"


def test_newsagg_sources_lists_state_and_last_good_run(
    sqlite_url: str, site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, walled = Outlet(site, "good"), Outlet(site, "walled")
    good.article("Fine story")
    for i in range(3):
        walled.article(f"Story {i}", body=CHALLENGE_PAGE)
    registry = tmp_path / "sources.yaml"
    registry.write_text(
        "sources:\n"
        + "".join(f"  - {{name: {o.name}, kind: rss, url: '{o.source.url}'}}\n" for o in (good, walled))
        + "  - {name: later, kind: rss, url: 'http://127.0.0.1:9/rss.xml'}\n",
        encoding="utf-8",
    )
    run_once(sqlite_url, [good.source, walled.source])
    capsys.readouterr()
    assert main(["sources", "--sources", str(registry), "--store", sqlite_url]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert lines["good"].split()[1] == "ok" and "last good run 20" in lines["good"]
    assert lines["walled"].split()[1] == "warning" and "wall:" in lines["walled"]
    assert "no good run yet" in lines["walled"]
    assert lines["later"].split()[1] == "unknown"
    assert lines["3"].startswith("3 sources, 1 flagged")

    assert main(["sources", "--sources", str(registry), "--store", sqlite_url, "--json"]) == 0
    rows = {row["source"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["walled"]["flags"][0]["rule"] == "wall"
    assert rows["good"]["last_run_figures"]["cleaned"] == 1


# -- the rules and the bounds, without a run ------------------------------------------------------


def _run(n: int, cleaned: int, **kw: int) -> SourceRun:
    at = T0 + timedelta(days=n)
    return SourceRun(run_id=f"r{n}", source="s", started_at=at, finished_at=at, cleaned=cleaned, **kw)


def test_stopped_needs_a_silence_longer_than_any_before() -> None:
    # yields every fourth run: three empty runs are its normal rhythm
    history = [_run(i, 2 if i % 4 == 0 else 0) for i in range(12)]
    assert evaluate(_run(12, 2), history[:-1]) == []
    assert evaluate(_run(4, 0), [_run(0, 2), _run(1, 0), _run(2, 0), _run(3, 0)]) == [], "one yield"
    rhythm = [_run(i, 2 if i % 4 == 0 else 0) for i in range(9)]  # ends with a yield at 8
    silent = [*rhythm, _run(9, 0), _run(10, 0), _run(11, 0)]
    assert evaluate(silent[-1], silent[:-1]) == []
    longer = [*silent, _run(12, 0)]
    assert [f.rule for f in evaluate(longer[-1], longer[:-1])] == ["stopped"]


def test_drops_are_a_jump_only_against_a_calm_history() -> None:
    noisy = [_run(i, 1, fetched=2, dropped=3) for i in range(5)]
    assert evaluate(_run(5, 0, fetched=1, dropped=5), noisy) == []
    calm = [_run(i, 5, fetched=5) for i in range(5)]
    assert [f.rule for f in evaluate(_run(5, 0, fetched=1, dropped=5), calm)] == ["drops"]
    assert evaluate(_run(5, 3, fetched=3, dropped=2), calm) == [], "two drops are not a jump"


def test_status_mix_reads_the_status_from_drop_reasons() -> None:
    reasons = ["refused http://a/1: HTTP 404 Not Found", "HTTP 503", "cannot connect to a:80 (refused)"]
    assert status_mix(3, reasons) == {"200": 3, "404": 1, "503": 1, "error": 1}


def test_challenge_markers_are_lower_case_bytes() -> None:
    assert all(m == m.lower() and isinstance(m, bytes) for m in CHALLENGE_MARKERS)


def test_history_values_are_cut_to_their_column_bounds(store_url: str) -> None:
    reasons = {f"reason {i} " + "x" * 500: i + 1 for i in range(200)}
    flags = [{"rule": "wall", "detail": "y" * 10_000}] * 50
    text = bounded_json(reasons, JSON_MAX)
    assert len(text) <= JSON_MAX and json.loads(text)
    with Store(store_url) as store:
        store.migrate()
        repo = HealthRepo(store.engine)
        run = SourceRun(
            run_id="r" * 40,
            source="s" * 100,
            started_at=T0,
            finished_at=T0,
            discovered=10**12,
            drop_reasons=reasons,
            statuses={str(i): i for i in range(1000)},
            flags=flags,
            state="warning-and-more",
        )
        repo.save([run])
        with store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(source_runs)).scalar() == 1
        (saved,) = repo.history("s" * 64)
    assert saved.discovered == 2**31 - 1
    assert saved.flags and len(saved.flags[0]["detail"]) <= 200
    assert max(saved.drop_reasons.values()) == 200, "the biggest reasons are kept"


def test_the_summary_shows_flags_but_not_failures_twice() -> None:
    summary = RunSummary(sources_ok=["a"], sources_failed={"b": "HTTP 500"})
    summary.health = [
        SourceHealth("a", "warning", (Flag("wall", "3 of 3 pages look like a bot challenge"),)),
        SourceHealth("b", "failed", (Flag("failed", "HTTP 500"),)),
    ]
    lines = format_summary(summary, summary.health)
    assert "source health: 1 source flagged" in lines
    assert "  a: wall: 3 of 3 pages look like a bot challenge" in lines
    assert sum("HTTP 500" in line for line in lines) == 1


def test_the_dag_hook_records_the_run_and_returns_warnings(sqlite_url: str, site: Site) -> None:
    from pipeline.health import after_dag_run
    from pipeline.timeutil import now

    outlet = Outlet(site, "walled")
    for i in range(3):
        outlet.article(f"Story {i}", body=CHALLENGE_PAGE)
    started = now()
    run_once(sqlite_url, [outlet.source])  # the DAG's tasks do the same stages
    with Store(sqlite_url) as store:
        lines = after_dag_run(store, ["walled"], started, {})
        assert lines and lines[0].startswith("source walled: wall: 3 of 3 pages")
        assert len(HealthRepo(store.engine).history("walled")) == 2
