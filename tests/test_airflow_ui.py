"""The real thing: scripts/airflow-local.sh (api-server, scheduler, dag-processor on SQLite) on
127.0.0.1, the DAG triggered from the UI's trigger form in headless Chromium with a source
subset, the run watched to success, the stories checked in the store, and a screenshot of the
run's grid saved to artifacts/airflow-grid.png.

Uses Debian's /usr/bin/chromium (``apt-get install -y chromium``); never downloads a browser.
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipeline.sampleweb.server import SampleWeb, load_manifest, sources_yaml

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "airflow-local.sh"
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
DAG_ID = "news_aggregation"
SUBSET = ["wire", "ledger", "monitor"]
STARTUP_SECONDS = 180
RUN_SECONDS = 240


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    base_url: str
    home: Path
    store_url: str
    web: SampleWeb
    log: Path

    def api(self, path: str, method: str = "GET", body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.base_url}/api/v2{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def log_tail(self) -> str:
        parts = [self.log.read_text(errors="replace")[-3000:]]
        for name in ("scheduler.out", "dag-processor.out", "api-server.out"):
            path = self.home / "logs" / name
            if path.exists():
                parts.append(f"--- {name}\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(parts)


def _kill_leftovers(home: Path) -> None:
    """Task processes run in their own process groups: find ours by their AIRFLOW_HOME."""
    import psutil

    mine = []
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error):
            if proc.pid != os.getpid() and proc.environ().get("AIRFLOW_HOME") == str(home):
                mine.append(proc)
    for proc in mine:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(mine, timeout=10)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    if not CHROMIUM.exists():
        pytest.skip(
            "/usr/bin/chromium is absent (apt-get install -y chromium): no browser to "
            "drive the Airflow UI with"
        )
    port = free_port()
    home = tmp_path / "airflow"
    store_url = f"sqlite:///{tmp_path / 'store' / 'newsagg.db'}"
    log = tmp_path / "airflow-local.log"
    with SampleWeb() as web:
        registry = tmp_path / "sources.yaml"
        registry.write_text(sources_yaml(web.base_url), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "NEWSAGG_"))}
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW_PORT": str(port),
                "VENV": sys.prefix,
                "AIRFLOW_PARALLELISM": "4",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "NEWSAGG_SOURCES": str(registry),
                "NEWSAGG_STORE_URL": store_url,
                "NEWSAGG_ALLOW_PRIVATE_NETWORK": "1",
                "XDG_DATA_HOME": str(tmp_path / "xdg"),
            }
        )
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [str(SCRIPT)],
                env=env,
                cwd=tmp_path,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        stack = Stack(f"http://127.0.0.1:{port}", home, store_url, web, log)
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"airflow-local.sh exited with {proc.returncode}:\n" + stack.log_tail())
                with contextlib.suppress(OSError, ValueError):
                    if stack.api(f"/dags/{DAG_ID}")["dag_id"] == DAG_ID:
                        break
                if time.monotonic() > deadline:
                    pytest.fail("Airflow did not come up with the DAG in time:\n" + stack.log_tail())
                time.sleep(2)
            yield stack
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # anything the script left in its group
            _kill_leftovers(home)


def test_trigger_from_the_ui_with_a_source_subset(stack: Stack) -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(30_000)
            page.goto(f"{stack.base_url}/dags/{DAG_ID}", wait_until="networkidle")
            page.get_by_test_id("trigger-dag-button").click()
            # The registry's names are the field's options (a multi-select): pick three.
            sources = page.locator("#element_sources")
            sources.wait_for()
            for name in SUBSET:
                sources.click()
                page.keyboard.type(name)
                page.keyboard.press("Enter")
            page.get_by_test_id("trigger-dag-submit").click()

            run = wait_for_run(stack)
            assert run["state"] == "success", failed_tasks(stack, run) + stack.log_tail()
            assert run["conf"]["sources"] == SUBSET
            assert run["triggered_by"] == "ui"

            page.goto(f"{stack.base_url}/dags/{DAG_ID}/runs/{run['dag_run_id']}", wait_until="networkidle")
            page.get_by_text("publish").first.wait_for()
            page.screenshot(path=str(ARTIFACTS / "airflow-grid.png"), full_page=True)
        finally:
            browser.close()

    tis = stack.api(f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances?limit=100")
    states = {
        (t["task_id"], t.get("rendered_map_index") or str(t["map_index"])): t["state"]
        for t in tis["task_instances"]
    }
    shards = {label: state for (task, label), state in states.items() if task == "fetch_shard"}
    assert shards and set(shards.values()) == {"success"}
    assert all(label.startswith("shard ") for label in shards)
    assert states[("fail_if_any_failed", "-1")] == "success"

    from pipeline.store.core import Store

    with Store(stack.store_url) as store:
        stories = store.stories()
    urls = {a.url for s in stories for a in s.articles}
    assert {a.source for s in stories for a in s.articles} == set(SUBSET)
    expected = {stack.web.base_url + m["url_path"] for m in load_manifest() if m["outlet"] in SUBSET}
    assert expected <= urls, sorted(expected - urls)
    assert (ARTIFACTS / "airflow-grid.png").stat().st_size > 10_000


def wait_for_run(stack: Stack) -> dict[str, Any]:
    deadline = time.monotonic() + RUN_SECONDS
    run: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, urllib.error.HTTPError):
            runs = stack.api(f"/dags/{DAG_ID}/dagRuns?limit=10")["dag_runs"]
            assert len(runs) <= 1, f"more runs than the one triggered: {runs}"
            if runs:
                run = runs[0]
                if run["state"] in ("success", "failed"):
                    return run
        time.sleep(2)
    raise AssertionError(
        f"the run did not finish in {RUN_SECONDS}s: {run}\n"
        + (failed_tasks(stack, run) if run else "")
        + stack.log_tail()
    )


def failed_tasks(stack: Stack, run: dict[str, Any]) -> str:
    tis = stack.api(f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances?limit=100")
    return (
        "task states: "
        + ", ".join(
            f"{t['task_id']}[{t.get('rendered_map_index') or t['map_index']}]={t['state']}"
            for t in tis["task_instances"]
        )
        + "\n"
    )
