"""Locks and read commands: a run lock no reader can take or block, that names its holder and
survives its connection's end; migrations that two processes can race; reads that never create,
migrate or write a store.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import func, select

from pipeline.cli import main
from pipeline.errors import RunLockLost, StoreError
from pipeline.store.core import Store
from tests.test_views import fill

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[Store]:
    store = Store(pg_url)
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def reader(pg_url: str) -> Iterator[str]:
    """A store URL that logs in as a fresh reader role (``newsagg db grant-reader --login``)."""
    role = f"newsagg_reader_{uuid.uuid4().hex[:8]}"
    store = Store(pg_url)
    store.migrate()
    fill(store)
    store.close()
    assert main(["db", "grant-reader", role, "--login", "--store", pg_url]) == 0
    params = conninfo_to_dict(pg_url)
    params["user"] = role
    params.pop("password", None)
    host, port = params.get("host", "127.0.0.1"), params.get("port", 5432)
    yield f"postgresql://{role}@{host}:{port}/{params['dbname']}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"DROP OWNED BY {role}")
        conn.execute(f"DROP ROLE IF EXISTS {role}")


def _backend_pids(pg_url: str, like: str) -> list[int]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name LIKE %s AND pid <> pg_backend_pid()",
                (like,),
            )
        ]


def _terminate(pg_url: str, pids: list[int]) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


# -- the run lock (PostgreSQL) ------------------------------------------------------------------


def test_a_second_run_waits_then_fails_naming_the_holder(pg_store: Store, pg_url: str) -> None:
    other = Store(pg_url)
    try:
        held = r"another run holds the run lock .*newsagg run on .* pid"
        with pg_store.run_lock(), pytest.raises(StoreError, match=held), other.run_lock(wait_s=0.5):
            pytest.fail("two runs at once")
        with other.run_lock(wait_s=5):  # released: the next run gets it
            pass
    finally:
        other.close()


def test_the_reader_role_can_neither_take_nor_block_the_run_lock(reader: str, pg_url: str) -> None:
    with psycopg.connect(reader, autocommit=True) as conn:
        # what blocked every run, serve and stories before: any role may take advisory locks
        conn.execute("SELECT pg_advisory_lock(4242001), pg_advisory_lock(4242002)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT token FROM run_lock WHERE id = 1 FOR UPDATE")
        writer = Store(pg_url)
        try:
            writer.migrate()
            with writer.run_lock(wait_s=5), writer.begin() as tx:
                tx.exec_driver_sql("SELECT 1")
        finally:
            writer.close()
        assert main(["stories", "--store", pg_url]) == 0
    reading = Store(reader)
    try:
        with pytest.raises(StoreError, match="cannot take the run lock"), reading.run_lock(wait_s=1):
            pass
    finally:
        reading.close()


def test_a_terminated_lock_backend_neither_breaks_the_run_nor_lets_two_runs_write(
    pg_store: Store, pg_url: str
) -> None:
    other = Store(pg_url)
    try:
        with pg_store.run_lock():
            pids = _backend_pids(pg_url, "newsagg run on %")
            assert len(pids) == 1
            _terminate(pg_url, pids)
            time.sleep(0.2)
            with pg_store.begin() as conn:  # nobody else has it: the run goes on
                conn.exec_driver_sql("SELECT 1")
            # the lock is free again, and taken: the first run must not write any more
            with (
                other.run_lock(wait_s=5),
                pytest.raises(StoreError, match="lost the run lock"),
                pg_store.begin(),
            ):
                pytest.fail("the first run wrote while the second held the lock")
        # leaving the first run's lock after its connection died raised nothing
    finally:
        other.close()


def test_another_process_of_the_run_stops_writing_once_the_lock_changes_hands(
    pg_store: Store, pg_url: str
) -> None:
    """The crawl's child follows its parent's lock: it writes while the parent holds it and
    stops once another run has taken it."""
    child, other = Store(pg_url), Store(pg_url)
    try:
        with pg_store.run_lock():
            child.follow_run_lock(pg_store.run_lock_token)
            with child.begin() as conn:  # the parent holds it: the child writes
                conn.exec_driver_sql("SELECT 1")
            _terminate(pg_url, _backend_pids(pg_url, "newsagg run on %"))
            time.sleep(0.2)
            with other.run_lock(wait_s=5), pytest.raises(RunLockLost), child.begin():
                pytest.fail("the child wrote while another run held the lock")
    finally:
        child.close()
        other.close()


def test_a_crawl_under_a_lock_its_run_no_longer_holds_stores_nothing(pg_url: str, tmp_path: Path) -> None:
    """The real crawl subprocess, handed a token that is not the lock's (another run has taken
    it): every page it fetches is refused before it is written, and the source says why."""
    from pipeline.config import load_settings
    from pipeline.crawl import run_crawl
    from pipeline.models import Source
    from pipeline.sampleweb.server import SampleWeb
    from pipeline.store.schema import pages

    store = Store(pg_url)
    store.migrate()
    try:
        with SampleWeb() as web:
            settings = load_settings({"store_url": pg_url, "allow_private_network": True, "host_delay": 0.0})
            source = Source(
                name="monitor", kind="sitemap", url=web.base_url + "/monitor/sitemap_index.xml", delay=0
            )
            result = run_crawl(settings, [source], None, run_lock_token=12345)
        assert "lost the run lock" in result.failed["monitor"]
        with store.begin() as conn:
            assert conn.execute(select(func.count()).select_from(pages)).scalar_one() == 0
    finally:
        store.close()


def test_idle_session_timeout_does_not_break_a_run(pg_url: str) -> None:
    name = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE \"{name}\" SET idle_session_timeout = '300ms'")
        conn.execute(f"ALTER DATABASE \"{name}\" SET idle_in_transaction_session_timeout = '300ms'")
    store = Store(pg_url)
    try:
        store.migrate()
        with store.run_lock(wait_s=5):
            for _ in range(3):
                time.sleep(0.5)  # the lock's connection and the pooled one idle past the timeout
                with store.begin() as conn:
                    conn.exec_driver_sql("SELECT 1")
        assert store.counts()["articles"] == 0
    finally:
        store.close()


# -- migrations ------------------------------------------------------------------------------------

_MIGRATE = "import sys; from pipeline.store.core import Store; s = Store(sys.argv[1]); s.migrate(); s.close()"


def test_two_processes_migrating_a_new_sqlite_store_both_succeed(tmp_path: Path) -> None:
    failures: list[str] = []
    tries = 5
    for i in range(tries):
        url = f"sqlite:///{tmp_path / f'race{i}' / 'newsagg.db'}"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _MIGRATE, url],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            if proc.returncode:
                failures.append(err[-500:])
    assert failures == []
    print(f"\nSQLite migration races: {tries} tries, 2 processes each, {len(failures)} failures")


def test_migrate_at_head_logs_nothing(sqlite_url: str, caplog: pytest.LogCaptureFixture) -> None:
    store = Store(sqlite_url)
    try:
        with caplog.at_level("INFO"):
            store.migrate()
        assert [r.getMessage() for r in caplog.records if r.levelname == "INFO"] == [
            f"store {store.safe_url} migrated from empty to {store._versions()[0]}"
        ]
        caplog.clear()
        with caplog.at_level("INFO"):
            store.migrate()
        assert caplog.records == []
    finally:
        store.close()


# -- read commands --------------------------------------------------------------------------------


def test_reads_of_a_missing_store_create_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere" / "x.db"
    for command in (["stories"], ["export", "--output", str(tmp_path / "o.jsonl")], ["token", "list"]):
        assert main([*command, "--store", f"sqlite:///{missing}"]) == 2, command
        assert "no store at" in capsys.readouterr().err
    assert not missing.parent.exists()
    assert main(["stories", "--store", "sqlite:////nonexistent/dir/x.db"]) == 2
    assert not Path("/nonexistent").exists()


def test_the_documented_read_only_sqlite_url_reads_and_creates_no_directory(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(sqlite_url)
    store.migrate()
    fill(store)
    store.close()
    path = sqlite_url.removeprefix("sqlite:///")
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    ro = f"sqlite:///file:{path}?mode=ro&uri=true"
    assert main(["stories", "--json", "--store", ro]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    assert main(["export", "--store", ro]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no ./file: directory
    assert main(["stories", "--store", f"sqlite:///file:{tmp_path}/none.db?mode=ro&uri=true"]) == 2


def test_the_reader_role_runs_stories_and_export(
    reader: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stories", "--json", "--store", reader]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    out = tmp_path / "s.parquet"
    assert main(["export", "--format", "parquet", "--output", str(out), "--store", reader]) == 0
    assert "exported 2 stories" in capsys.readouterr().err
    assert main(["export", "--kind", "articles", "--store", reader]) == 0
    assert len(capsys.readouterr().out.splitlines()) > 2


def test_since_means_the_same_instant_however_it_is_written(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(sqlite_url)
    store.migrate()
    fill(store)
    stamps = sorted(s.last_updated for s in store.stories())
    store.close()
    cut = stamps[0] + (stamps[-1] - stamps[0]) / 2 if stamps[0] != stamps[-1] else stamps[0]
    spellings = [
        cut.astimezone(UTC).isoformat(),
        cut.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        cut.astimezone(UTC).replace(tzinfo=None).isoformat(),  # naive: UTC
        cut.astimezone(datetime.now().astimezone().tzinfo).isoformat(),
        cut.astimezone(timezone(timedelta(hours=-7))).isoformat(),
        cut.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat(),
    ]
    counts = []
    for spelling in spellings:
        assert main(["stories", "--json", "--since", spelling, "--store", sqlite_url]) == 0
        counts.append(len(json.loads(capsys.readouterr().out)))
    assert len(set(counts)) == 1, dict(zip(spellings, counts, strict=True))
    assert 0 < counts[0] <= 2


def test_concurrent_reads_during_a_run_lock_are_not_blocked(pg_store: Store, pg_url: str) -> None:
    fill(pg_store)
    results: list[int] = []
    with pg_store.run_lock():
        worker = threading.Thread(target=lambda: results.append(main(["stories", "--store", pg_url])))
        worker.start()
        worker.join(timeout=60)
    assert results == [0]


def test_the_reader_role_serves_the_api(reader: str, pg_url: str) -> None:
    from fastapi.testclient import TestClient

    from pipeline.serve.readapi import create_app
    from pipeline.serve.tokens import create_token, revoke_token

    owner = Store(pg_url)
    token = create_token(owner, "dashboard")
    store = Store(reader, read_only=True)
    try:
        store.check_readable()
        with TestClient(create_app(store)) as client:
            page = client.get("/stories", headers={"Authorization": f"Bearer {token}"})
            assert page.status_code == 200, page.text
            assert len(page.json()["stories"]) == 2
            assert client.get("/changes", headers={"Authorization": f"Bearer {token}"}).status_code == 200
            assert client.get("/stories", headers={"Authorization": "Bearer nat_wrong"}).status_code == 401
            revoke_token(owner, "dashboard")
            assert client.get("/stories", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    finally:
        store.close()
        owner.close()
