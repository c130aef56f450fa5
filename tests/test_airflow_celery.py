"""scripts/airflow-local.sh for real: CeleryExecutor with two workers on Redis and PostgreSQL
runs the DAG over the sample web from a REST API trigger; both executors stop their whole
process tree on SIGTERM or Ctrl-C.

The Celery test needs Redis on 127.0.0.1:6379 and PostgreSQL (NEWSAGG_TEST_POSTGRES_URL) and
skips, saying which is missing, without them. Each test has its own AIRFLOW_HOME, metadata
database, store and Celery queue, so nothing it does reaches another stack on the same Redis.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest
import yaml

from pipeline.sampleweb.server import load_manifest
from tests.conftest import fresh_pg_database
from tests.helpers import dump_store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "airflow-local.sh"
DAG_ID = "news_aggregation"
STARTUP_SECONDS = 240
RUN_SECONDS = 300
REDIS = ("127.0.0.1", 6379)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_answers() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class Stack:
    proc: subprocess.Popen[bytes]
    base_url: str
    home: Path
    log: Path
    store_url: str = ""
    started: set[int] = field(default_factory=set)

    def api(self, path: str, method: str = "GET", body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.base_url}/api/v2{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=15) as response:
            return json.loads(response.read() or b"null")

    def log_tail(self) -> str:
        parts = [self.log.read_text(errors="replace")[-3000:]]
        for path in sorted((self.home / "logs").glob("*.out")):
            parts.append(f"--- {path.name}\n" + path.read_text(errors="replace")[-2000:])
        return "\n".join(parts)

    def processes(self) -> set[int]:
        """The script's process tree now, and every process in its components' sessions."""
        with contextlib.suppress(psutil.Error):
            tree = {p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)}
            sessions = set()
            for pid in tree:
                with contextlib.suppress(OSError):
                    sessions.add(os.getsid(pid))
            for proc in psutil.process_iter(["pid"]):
                with contextlib.suppress(OSError, psutil.Error):
                    if os.getsid(proc.pid) in sessions and proc.pid != os.getpid():
                        tree.add(proc.pid)
            self.started |= tree
        return set(self.started)


def alive(pids: set[int]) -> list[str]:
    out = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{pid} {' '.join(proc.cmdline())[:120]}")
    return out


def start(tmp_path: Path, args: list[str], env_extra: dict[str, str]) -> Stack:
    port = free_port()
    home = tmp_path / "airflow"
    log = tmp_path / "airflow-local.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "NEWSAGG_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW_PORT": str(port),
            "VENV": sys.prefix,
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "XDG_DATA_HOME": str(tmp_path / "xdg"),
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
            **env_extra,
        }
    )
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(SCRIPT), *args],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own group: a Ctrl-C is a SIGINT to that group
        )
    stack = Stack(proc, f"http://127.0.0.1:{port}", home, log)
    deadline = time.monotonic() + STARTUP_SECONDS
    while "airflow-local: ready: " not in log.read_text(errors="replace"):
        if proc.poll() is not None:
            pytest.fail(f"airflow-local.sh exited with {proc.returncode}:\n" + stack.log_tail())
        if time.monotonic() > deadline:
            stop(stack, signal.SIGTERM)
            pytest.fail("airflow-local.sh was not ready in time:\n" + stack.log_tail())
        stack.processes()
        time.sleep(1)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the DAG is parsed a few seconds after the UI is up
        with contextlib.suppress(OSError, ValueError):
            if stack.api(f"/dags/{DAG_ID}")["dag_id"] == DAG_ID:
                break
        time.sleep(1)
    stack.processes()
    return stack


def stop(stack: Stack, sig: signal.Signals) -> list[str]:
    """Signal the script as a terminal would (its process group) and return what survived it."""
    known = stack.processes()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(stack.proc.pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        stack.proc.wait(timeout=60)
    time.sleep(1)
    survivors = alive(known | {stack.proc.pid})
    for pid in known:  # never leave them to the next test, whatever the verdict
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(stack.proc.pid, signal.SIGKILL)
    return survivors


def trigger_and_wait(stack: Stack, conf: dict[str, Any]) -> dict[str, Any]:
    run = stack.api(f"/dags/{DAG_ID}/dagRuns", "POST", {"logical_date": None, "conf": conf})
    run_id = run["dag_run_id"]
    deadline = time.monotonic() + RUN_SECONDS
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, urllib.error.HTTPError):
            run = stack.api(f"/dags/{DAG_ID}/dagRuns/{run_id}")
            if run["state"] in ("success", "failed"):
                return dict(run)
        time.sleep(2)
    raise AssertionError(f"run {run_id} did not finish in {RUN_SECONDS}s: {run}\n" + stack.log_tail())


def task_instances(stack: Stack, run_id: str) -> list[dict[str, Any]]:
    tis: list[dict[str, Any]] = stack.api(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances?limit=200")[
        "task_instances"
    ]
    return tis


@pytest.fixture
def celery_dbs() -> Iterator[tuple[str, str]]:
    if not redis_answers():
        pytest.skip("no Redis answers on 127.0.0.1:6379: no Celery broker to run the workers on")
    with fresh_pg_database() as metadata, fresh_pg_database() as store:
        yield metadata, store


def test_a_celery_run_on_two_workers_over_the_sample_web(tmp_path: Path, celery_dbs: tuple[str, str]) -> None:
    metadata, store_url = celery_dbs
    stack = start(
        tmp_path,
        ["--executor", "celery", "--workers", "2", "--sample-web"],
        {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
            "NEWSAGG_STORE_URL": store_url,
            "AIRFLOW_QUEUE": f"newsagg-test-{uuid.uuid4().hex[:8]}",
            "AIRFLOW_WORKER_CONCURRENCY": "2",
            # Small clean batches: several mapped clean tasks for the two workers to share.
            "NEWSAGG_CLEAN_BATCH_SIZE": "4",
        },
    )
    survivors: list[str] = []
    try:
        run = trigger_and_wait(stack, {})
        tis = task_instances(stack, run["dag_run_id"])
        states = {(t["task_id"], t["map_index"]): t["state"] for t in tis}
        assert run["state"] == "success", f"{states}\n" + stack.log_tail()
        assert run["triggered_by"] == "rest_api"
        assert states[("fail_if_any_failed", -1)] == "success"
        hosts = {t["hostname"] for t in tis if t["state"] == "success"}
        names = {h.split("@")[0] for h in hosts}
        assert names == {"worker1", "worker2"}, f"tasks ran on {hosts}"
        assert all(t["queue"].startswith("newsagg-test-") for t in tis)

        registry = yaml.safe_load((stack.home / "sample-sources.yaml").read_text())
        first = urlsplit(registry["sources"][0]["url"])
        base_url = f"{first.scheme}://{first.netloc}"
        from pipeline.store.core import Store

        with Store(store_url) as store:
            stories = store.stories()
        urls = {a.url for s in stories for a in s.articles}
        expected = {base_url + m["url_path"] for m in load_manifest()}
        assert expected <= urls, sorted(expected - urls)

        before = dump_store(store_url)
        again = trigger_and_wait(stack, {})
        assert again["state"] == "success", stack.log_tail()
        assert dump_store(store_url) == before
        stack.processes()
    finally:
        survivors = stop(stack, signal.SIGTERM)
    assert survivors == [], f"left running after SIGTERM: {survivors}"
    assert "airflow-local: stopped" in stack.log.read_text()


def test_ctrl_c_stops_every_local_executor_process(tmp_path: Path) -> None:
    registry = tmp_path / "sources.yaml"
    registry.write_text("sources:\n  - {name: wire, kind: rss, url: 'http://127.0.0.1:9/rss'}\n")
    stack = start(
        tmp_path,
        [],
        {
            "AIRFLOW_PARALLELISM": "4",
            "NEWSAGG_SOURCES": str(registry),
            "NEWSAGG_STORE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        },
    )
    try:
        # A dry run puts the LocalExecutor's worker processes to work, as a real run does.
        run = trigger_and_wait(stack, {"dry_run": True})
        assert run["state"] == "success", stack.log_tail()
        known = stack.processes()
        assert len(known) >= 4, f"expected the components and their workers, saw {alive(known)}"
    finally:
        survivors = stop(stack, signal.SIGINT)
    assert survivors == [], f"left running after Ctrl-C: {survivors}"
