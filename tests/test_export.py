"""``newsagg export``: JSON lines and Parquet, resumable from the cursor it reports."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from pipeline.dedup import story_to_json, with_evidence
from pipeline.progress import Progress
from pipeline.serve.export import export
from pipeline.store.core import Store
from tests.test_views import KYIV, ODESA, fill, save_story


@pytest.fixture
def store(store_url: str) -> Store:
    s = Store(store_url)
    s.migrate()
    fill(s)
    yield s
    s.close()


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def cursor_from(err: str) -> int:
    return int(err.rsplit("--since-seq ", 1)[1].split()[0])


def test_jsonl_export_resumes_from_the_reported_cursor(
    store: Store, store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out" / "stories.jsonl"
    assert main(["export", "--store", store_url, "--output", str(out)]) == 0
    first = lines(out)
    cursor = cursor_from(capsys.readouterr().err)
    by_id = {s.story_id: s for s in with_evidence(store, store.stories())}
    assert [s["story_id"] for s in first] == ["st_kyiv", "st_odesa"]  # in change order
    for item in first:
        seq = item.pop("change_seq")
        assert item == story_to_json(by_id[item["story_id"]]) and 0 < seq <= cursor

    assert main(["export", "--store", store_url, "--output", str(out), "--since-seq", str(cursor)]) == 0
    assert lines(out) == [] and cursor_from(capsys.readouterr().err) == cursor

    revised = replace(ODESA[0], text="Two killed in Odesa.", content_hash="h2")
    with store.begin() as conn:
        store.upsert_article(conn, revised)
    save_story(store, "st_odesa", [revised], [(revised, "killed", "2")])
    assert main(["export", "--store", store_url, "--output", str(out), "--since-seq", str(cursor)]) == 0
    [again] = lines(out)
    assert again["story_id"] == "st_odesa" and again["change_seq"] > cursor
    assert again["figures"][0]["value"] == 2
    assert cursor_from(capsys.readouterr().err) == again["change_seq"]


def test_parquet_export_of_stories_and_articles(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "stories.parquet"
    result = export(store, "parquet", path, progress=Progress(enabled=False))
    table = pq.read_table(path).to_pylist()
    assert result.rows == 2 and [r["story_id"] for r in table] == ["st_kyiv", "st_odesa"]
    kyiv = table[0]
    assert {a["source"] for a in kyiv["articles"]} == {"wire", "courier", "ledger"}
    killed = [
        (f["source"], f["number"], f["value"], f["source_claim"])
        for f in kyiv["figures"]
        if f["kind"] == "killed"
    ]
    assert ("ledger", 2, "2", "city military administration") in killed and ("wire", 1, "1", None) in killed
    [place] = [f for f in kyiv["figures"] if f["kind"] == "place"]
    assert place["number"] is None and place["value"] == "Shevchenkivskyi"
    assert kyiv["first_seen"].isoformat() == "2026-11-19T01:48:00+00:00"
    evidence = json.loads(kyiv["evidence"])  # JSON text, as in the view
    assert evidence == with_evidence(store, store.stories(story_ids=["st_kyiv"]))[0].evidence
    assert evidence["reports"] == 3 and "Kyiv" in evidence["shared_places"]

    apath = tmp_path / "articles.parquet"
    result = export(store, "parquet", apath, kind="articles", progress=Progress(enabled=False))
    articles = pq.read_table(apath).to_pylist()
    assert result.rows == len(KYIV) + len(ODESA) == len(articles)
    courier = next(a for a in articles if a["source"] == "courier")
    assert courier["copy_of"] == KYIV[0].article_id and courier["authors"] == ["courier desk"]
    assert courier["story_id"] == "st_kyiv"


def test_cursor_file_makes_reruns_incremental(store: Store, store_url: str, tmp_path: Path) -> None:
    cursor = tmp_path / "cursor.json"
    out = tmp_path / "articles.jsonl"
    args = [
        "export",
        "--store",
        store_url,
        "--kind",
        "articles",
        "--output",
        str(out),
        "--cursor-file",
        str(cursor),
    ]
    assert main(args) == 0
    assert len(lines(out)) == len(KYIV) + len(ODESA)
    assert main(args) == 0
    assert lines(out) == []
    with store.begin() as conn:
        store.upsert_article(conn, replace(KYIV[0], text="Revised text.", content_hash="r"))
    assert main(args) == 0
    [only] = lines(out)
    assert only["article_id"] == KYIV[0].article_id and only["text"] == "Revised text."
    assert json.loads(cursor.read_text())["last_seq"] == only["change_seq"]


def test_stdout_export_and_usage_errors(
    store: Store, store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["export", "--store", store_url]) == 0
    captured = capsys.readouterr()
    assert [json.loads(line)["story_id"] for line in captured.out.splitlines()] == ["st_kyiv", "st_odesa"]
    assert "continue with --since-seq" in captured.err
    assert main(["export", "--store", store_url, "--format", "parquet"]) == 2
    assert main(["export", "--store", store_url, "--since-seq", "-1"]) == 2


def test_progress_is_plain_off_a_terminal(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="newsagg"):
        export(store, "jsonl", tmp_path / "s.jsonl", progress=Progress(enabled=False))
    messages = [r.getMessage() for r in caplog.records]
    assert "export stories: started" in messages and "export stories: done (2)" in messages


def test_a_failed_export_leaves_no_file_and_no_cursor(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline.serve.export as mod

    def boom(*_args: object) -> object:
        raise RuntimeError("disk full")

    monkeypatch.setattr(mod, "_parquet_row", boom)
    with pytest.raises(RuntimeError):
        export(store, "parquet", tmp_path / "s.parquet", progress=Progress(enabled=False))
    assert not [p for p in tmp_path.iterdir() if "s.parquet" in p.name]
