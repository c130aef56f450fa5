"""The ``newsagg`` command as a user meets it: --version, help on every option, plurals, quiet
exits on Ctrl-C and on a closed pipe, registry mistakes at load, one Alembic line, and progress
that does not draw a full bar for a stage of unknown size."""

from __future__ import annotations

import argparse
import io
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pipeline import __version__
from pipeline.cli import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, build_parser, main
from pipeline.progress import Progress
from pipeline.sampleweb.sites import Page, Site, article_html
from pipeline.sources import parse_registry
from pipeline.store.core import Store
from tests.test_views import fill

ROOT = Path(__file__).resolve().parent.parent


def newsagg(*args: str, **kw: object) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "pipeline.cli", *args], env=env, cwd=ROOT, **kw
    )


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"newsagg {__version__}"


def _parsers(
    parser: argparse.ArgumentParser, path: str = "newsagg"
) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.extend(_parsers(sub, f"{path} {name}"))
    return found


def test_every_option_and_argument_has_help() -> None:
    missing = [
        f"{path}: {'/'.join(action.option_strings) or action.dest}"
        for path, parser in _parsers(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction)
        and (not action.help or action.help == argparse.SUPPRESS)
    ]
    assert missing == []
    assert len(_parsers(build_parser())) > 10


def test_counts_read_in_the_right_number(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with Store(sqlite_url) as store:
        store.migrate()
        fill(store)  # the Kyiv story has three reports, the Odesa story one
    assert main(["stories", "--store", sqlite_url]) == 0
    out = capsys.readouterr().out
    assert " · 1 report from herald · " in out and " · 3 reports from " in out
    # each count with who the report says gives it, where it says
    assert "killed: 1 (wire 19 Nov 01:48) → 1 (courier 19 Nov 02:10) → " in out
    assert "2 (ledger 19 Nov 06:05, city military administration)" in out
    assert "1 reports" not in out
    assert out.rstrip().endswith("2 stories")
    assert main(["stories", "--store", sqlite_url, "--limit", "1"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("\n1 story")


def test_extract_needs_no_format_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "a.html"
    page.write_text(article_html("Bridge reopens", "The bridge reopened on Monday. " * 30), encoding="utf-8")
    assert main(["extract", str(page)]) == 0
    assert '"title": "Bridge reopens"' in capsys.readouterr().out


@pytest.mark.parametrize(
    ("selector", "field"),
    [("a[class=story-link", "links"), ("xpath://a[", "links"), ("a:::b", "next_page")],
)
def test_a_bad_selector_fails_at_registry_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], selector: str, field: str
) -> None:
    links = selector if field == "links" else "a.story-link"
    extra = f"\n    next_page: '{selector}'" if field == "next_page" else ""
    text = (
        "sources:\n  - name: gazette\n    kind: html\n    url: https://example.org/world/\n"
        f"    links: '{links}'{extra}\n"
    )
    registry = tmp_path / "sources.yaml"
    registry.write_text(text, encoding="utf-8")
    assert main(["run", "--sources", str(registry), "--store", f"sqlite:///{tmp_path / 's.db'}"]) == 2
    err = capsys.readouterr().err
    assert f"source 'gazette': field '{field}': not a valid" in err and selector.removeprefix("xpath:") in err
    assert not (tmp_path / "s.db").exists(), "the registry fails before the store is touched"
    assert parse_registry(text.replace(selector, "h2 > a.story-link::attr(href)"))[0].links


def test_ctrl_c_exits_130_without_a_traceback(tmp_path: Path) -> None:
    entered = threading.Event()
    release = threading.Event()

    def slow_feed(_: int) -> Page:
        entered.set()
        release.wait(30)
        return Page(200, b"<rss version='2.0'><channel><title>t</title></channel></rss>", "text/xml")

    with Site() as site:
        site.add("/rss.xml", slow_feed)
        registry = tmp_path / "sources.yaml"
        registry.write_text(f"sources:\n  - {{name: slow, kind: rss, url: '{site.url('/rss.xml')}'}}\n")
        proc = newsagg(
            "run",
            "--sources",
            str(registry),
            "--store",
            f"sqlite:///{tmp_path / 's.db'}",
            "--allow-private-network",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert entered.wait(60), "the run never asked for the feed"
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=60)
        finally:
            release.set()
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == EXIT_INTERRUPTED == 130
    assert b"Traceback" not in err and b"KeyboardInterrupt" not in err, err.decode()
    assert err.rstrip().endswith(b"newsagg: interrupted")


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    page = tmp_path / "a.html"
    page.write_text(article_html("Long story", "A sentence about the long story. " * 2000), encoding="utf-8")
    proc = newsagg("extract", *[str(page)] * 40, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()  # what `| head -1` reads before it exits
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(60)
    assert first.startswith(b'{"file": ')
    assert proc.returncode == EXIT_BROKEN_PIPE == 141
    assert b"BrokenPipeError" not in err and b"Traceback" not in err, err.decode()


def test_alembic_says_one_line_and_only_when_it_migrates(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    lines = []
    for _ in range(2):
        # recluster writes, so it creates and migrates a new store (read commands never do)
        proc = newsagg("recluster", "--store", url, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        lines.append([line for line in err.decode().splitlines() if " alembic" in line or "migrated" in line])
    assert len(lines[0]) == 1 and "migrated from empty to" in lines[0][0], lines[0]
    assert lines[1] == []


def test_a_stage_that_had_nothing_to_do_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=80, color_system=None)
    monkeypatch.setattr("rich.progress.get_console", lambda: console)
    progress = Progress(enabled=True)
    with progress.stage("clean"):
        pass
    with progress.stage("dedup") as stage:
        stage.advance(3)
    # what stays on screen is each stage's last frame
    frames = [f.strip() for f in re.split(r"\x1b\[[0-9;?]*[A-Za-z]|\r|\n", buffer.getvalue()) if f.strip()]
    assert [f for f in frames if f.startswith("clean")][-1] == "clean: nothing to do"
    last_dedup = [f for f in frames if f.startswith("dedup")][-1]
    assert "3/3" in last_dedup and "?" not in last_dedup


def test_explain_and_stories_say_why_reports_are_or_are_not_together(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from tests.test_dedup_stability import REPORTS, article, ingest

    ingest(sqlite_url, [sorted(REPORTS)])
    read_only = sqlite_url.replace("sqlite:///", "sqlite:///file:") + "?mode=ro&uri=true"

    def explain(a: str, b: str) -> dict:
        capsys.readouterr()
        assert main(["explain", "--store", read_only, article(a).article_id, article(b).article_id]) == 0
        return json.loads(capsys.readouterr().out)

    same = explain("wire-1", "ledger-1")
    assert same["same_story"] is True and same["kept_apart_by"] == []
    assert "Kyiv" in same["shared_places"] and "tkachenko" in same["shared_names"]
    odesa = explain("wire-1", "wire-odesa")
    assert odesa["same_story"] is False and len(set(odesa["story_ids"])) == 2
    assert any("far-apart cities" in r for r in odesa["kept_apart_by"])
    next_night = explain("wire-1", "wire-2")
    assert next_night["same_story"] is False and next_night["kept_apart_by"]

    assert main(["explain", "--store", read_only, article("wire-1").article_id, "nope"]) == 2
    assert "no stored article with id nope" in capsys.readouterr().err

    assert main(["stories", "--store", read_only]) == 0
    out = capsys.readouterr().out
    first_night = out.split("Two dead as Russia pounds Kyiv", 1)[1].split("\n\n", 1)[0]
    assert "  together because: places they name Kyiv" in first_night
    odesa_story = out.split("Odesa port struck by drones overnight", 1)[1].split("\n\n", 1)[0]
    assert "together because" not in odesa_story, "one report: nothing to share"
