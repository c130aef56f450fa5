"""The Airflow DAG: it parses cheaply, its tasks are guarded, its params are checked, and
``dag.test()`` runs the sample news web into SQLite and PostgreSQL, idempotently.

Airflow runs in subprocesses, each with its own AIRFLOW_HOME (a copy of one migrated SQLite
metadata DB): Airflow reads its configuration once per process, and the test process keeps none
of its global state. The metadata DB is then read with sqlite3 to check states, XComs and asset
events.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import ConfigError
from pipeline.sampleweb.server import SampleWeb, load_manifest, sources_yaml
from tests.helpers import dump_store

ROOT = Path(__file__).resolve().parent.parent
DAGS = ROOT / "dags"
DAG_ID = "news_aggregation"
FEEDS = ["wire", "ledger", "herald", "courier", "vestnik", "tagesblatt"]
CRAWLS = ["monitor", "gazette"]
HEAVY = (
    "scrapy",
    "trafilatura",
    "feedparser",
    "twisted",
    "lxml",
    "numpy",
    "sklearn",
    "psycopg",
    "pipeline.store.core",
    "pipeline.tasks",
    "pipeline.extract",
    "pipeline.net.client",
)
LOGICAL_DATE = "2026-11-21T02:00:00+00:00"
RUN_TIMEOUT = 420

# Runs in a subprocess: `dag.test()` for one run. Retries keep their count but wait seconds,
# not minutes (a retry on a loaded machine must not look like a hang); or are off, so a source
# meant to fail fails at once.
DAG_TEST = r"""
import json, sys
from datetime import datetime, timedelta
args = json.loads(sys.argv[1])
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=args["dags"])
assert not bag.import_errors, bag.import_errors
dag = bag.get_dag(args["dag_id"])
for t in dag.tasks:
    t.retry_delay = timedelta(seconds=1)
    t.max_retry_delay = timedelta(seconds=2)
    if args.get("no_retries"):
        t.retries = 0
logical = args.get("logical_date")
run = dag.test(logical_date=datetime.fromisoformat(logical) if logical else None,
               run_conf=args.get("conf"))
print("RESULT " + json.dumps({"run_id": run.run_id, "state": str(run.state)}))
"""

# Runs in a subprocess: what the DagBag sees, and which confs the params reject.
INSPECT = r"""
import json, sys
args = json.loads(sys.argv[1])
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.exceptions import ParamValidationError
bag = DagBag(dag_folder=args["dags"])
out = {"import_errors": {k: str(v) for k, v in bag.import_errors.items()}, "dag_ids": bag.dag_ids}
dag = bag.get_dag(args["dag_id"])
out["dag"] = {"schedule": dag.timetable.expression, "timezone": str(dag.timetable.timezone),
              "catchup": dag.catchup, "max_active_runs": dag.max_active_runs,
              "params": {k: v.schema for k, v in dag.params.items()},
              "defaults": dag.params.dump()}
out["tasks"] = {
    t.task_id: {"retries": t.retries, "timeout": t.execution_timeout.total_seconds()
                if t.execution_timeout else None, "pool": t.pool,
                "backoff": t.retry_exponential_backoff,
                "max_retry_delay": t.max_retry_delay.total_seconds() if t.max_retry_delay else None,
                "trigger_rule": str(t.trigger_rule), "mapped": type(t).__name__.endswith("Mapped")
                or "Mapped" in type(t).__name__,
                "outlets": [getattr(o, "name", None) for o in t.outlets],
                "upstream": sorted(t.upstream_task_ids)}
    for t in dag.tasks}
# What the API server does with a trigger's conf, before it creates the run.
from airflow.serialization.serialized_objects import DagSerialization
served = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
verdicts = []
for conf in args["confs"]:
    try:
        served.params.deep_merge(conf).validate()
        verdicts.append(None)
    except ParamValidationError as exc:
        verdicts.append(str(exc))
out["verdicts"] = verdicts
print("RESULT " + json.dumps(out, default=str))
"""

# Runs in a subprocess: parse the DAG file with sockets forbidden; report what it imported.
PARSE = r"""
import json, socket, sys, time, importlib.util
def refuse(*a, **k):
    raise AssertionError("network or database access while parsing the DAG file")
socket.socket.connect = refuse
socket.create_connection = refuse
import airflow.sdk  # the baseline every DAG file pays
from airflow.sdk import Asset, Param, dag, task  # noqa: F401
before = set(sys.modules)
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("news_aggregation_dag", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
elapsed = time.perf_counter() - started
print("RESULT " + json.dumps({"new": sorted(set(sys.modules) - before), "all": sorted(sys.modules),
                              "seconds": elapsed}))
"""


# -- helpers -------------------------------------------------------------------------------------


def _result(proc: subprocess.CompletedProcess[str], log: Path | None = None) -> dict[str, Any]:
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (log.read_text(errors="replace") if log else proc.stderr)[-6000:]
        raise AssertionError(f"subprocess failed (exit {proc.returncode}):\n{tail}")
    data: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    return data


@pytest.fixture(scope="session")
def airflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated Airflow metadata DB; each test works on a copy."""
    home = tmp_path_factory.mktemp("airflow-template")
    env = airflow_env(home)
    proc = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return home


def airflow_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "NEWSAGG_")) or k == "NEWSAGG_TEST_POSTGRES_URL"
    }
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
        }
    )
    env.update(extra or {})
    return env


@pytest.fixture
def airflow_home(airflow_template: Path, tmp_path: Path) -> Path:
    home = tmp_path / "airflow"
    home.mkdir()
    shutil.copy(airflow_template / "airflow.db", home / "airflow.db")
    if (airflow_template / "airflow.cfg").exists():
        shutil.copy(airflow_template / "airflow.cfg", home / "airflow.cfg")
    return home


@pytest.fixture
def web() -> Iterator[SampleWeb]:
    with SampleWeb() as server:
        yield server


def newsagg_env(tmp_path: Path, web: SampleWeb, store: str, extra_sources: str = "") -> dict[str, str]:
    registry = tmp_path / "sources.yaml"
    registry.write_text(sources_yaml(web.base_url) + extra_sources, encoding="utf-8")
    return {
        "NEWSAGG_SOURCES": str(registry),
        "NEWSAGG_STORE_URL": store,
        "NEWSAGG_ALLOW_PRIVATE_NETWORK": "1",
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
    }


class Run:
    """One finished DAG run, read back from the metadata DB."""

    def __init__(self, home: Path, run_id: str, state: str) -> None:
        self.run_id, self.state = run_id, state
        with sqlite3.connect(home / "airflow.db") as db:
            (self.logical_date,) = db.execute(
                "SELECT logical_date FROM dag_run WHERE run_id = ?", (run_id,)
            ).fetchone()
            self.tis = {
                (r[0], r[1]): {"state": r[2], "try_number": r[3], "label": r[4]}
                for r in db.execute(
                    "SELECT task_id, map_index, state, try_number, rendered_map_index "
                    "FROM task_instance WHERE run_id = ?",
                    (run_id,),
                )
            }
            self.xcoms = [
                (r[0], r[1], r[2], r[3])
                for r in db.execute(
                    "SELECT task_id, map_index, key, value FROM xcom WHERE run_id = ?", (run_id,)
                )
            ]
            self.events = [
                (r[0], json.loads(r[1]) if isinstance(r[1], str) else r[1])
                for r in db.execute(
                    "SELECT asset.uri, asset_event.extra FROM asset_event "
                    "JOIN asset ON asset.id = asset_event.asset_id "
                    "WHERE asset_event.source_run_id = ?",
                    (run_id,),
                )
            ]

    def state_of(self, task_id: str) -> str | None:
        return self.tis[(task_id, -1)]["state"]

    def mapped(self, task_id: str) -> dict[str, str]:
        return {
            ti["label"] or str(index): ti["state"]
            for (tid, index), ti in self.tis.items()
            if tid == task_id and index >= 0
        }

    def xcom(self, task_id: str, key: str = "return_value") -> Any:
        values = [v for t, i, k, v in self.xcoms if t == task_id and k == key and i == -1]
        assert values, f"no XCom {key} from {task_id}"
        value = values[0]
        return json.loads(value) if isinstance(value, str | bytes) else value

    def summary(self) -> str:
        return ", ".join(
            f"{t}[{i}]={ti['state']}/try {ti['try_number']}" for (t, i), ti in sorted(self.tis.items())
        )


def run_dag(
    home: Path,
    env: Mapping[str, str],
    *,
    conf: Mapping[str, Any] | None = None,
    logical_date: str | None = LOGICAL_DATE,
    no_retries: bool = False,
) -> Run:
    args = {
        "dags": str(DAGS),
        "dag_id": DAG_ID,
        "conf": dict(conf or {}),
        "logical_date": logical_date,
        "no_retries": no_retries,
    }
    log = home / f"dag-test-{len(list(home.glob('dag-test-*.log')))}.log"
    with open(log, "w") as out:
        proc = subprocess.run(
            [sys.executable, "-c", DAG_TEST, json.dumps(args)],
            env=airflow_env(home, env),
            stdout=subprocess.PIPE,
            stderr=out,
            text=True,
            timeout=RUN_TIMEOUT,
            cwd=home,
        )
    result = _result(proc, log)
    run = Run(home, result["run_id"], result["state"])
    retried = [f"{t}[{i}]" for (t, i), ti in run.tis.items() if (ti["try_number"] or 0) > 1]
    if retried:  # allowed (that is what retries are for), but worth seeing in the test output
        print(f"dag.test retried {', '.join(retried)}; log: {log}", file=sys.stderr)
    return run


def assert_small_xcoms(run: Run) -> None:
    """XCom carries names, URLs and counts: nothing that looks like a page or an article."""
    total = 0
    for task_id, _, key, value in run.xcoms:
        text = value if isinstance(value, str) else json.dumps(value)
        total += len(text)
        assert len(text) < 4000, f"XCom {task_id}/{key} is {len(text)} characters"
        lowered = text.lower()
        for marker in ("<html", "<p>", "<div", "<article", "<body"):
            assert marker not in lowered, f"XCom {task_id}/{key} carries HTML: {text[:200]}"
    assert total < 30000


# -- the DAG file --------------------------------------------------------------------------------

BAD_CONFS: list[dict[str, Any]] = [
    {"since": "yesterday"},
    {"since": "2026-13-01"},
    {"since": 20261120},
    {"sources": "wire"},
    {"sources": ["Not A Name!"]},
    {"sources": ["wire", "wire"]},
    {"sources": [1]},
    {"recluster": "yes"},
    {"dry_run": 1},
]
GOOD_CONFS: list[dict[str, Any]] = [
    {},
    {"sources": ["wire", "monitor"], "since": "2026-11-20", "recluster": True, "dry_run": True},
    {"sources": None, "since": None},
]


@pytest.fixture(scope="module")
def inspected(airflow_template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("airflow-inspect")
    shutil.copy(airflow_template / "airflow.db", home / "airflow.db")
    args = {"dags": str(DAGS), "dag_id": DAG_ID, "confs": BAD_CONFS + GOOD_CONFS}
    proc = subprocess.run(
        [sys.executable, "-c", INSPECT, json.dumps(args)],
        env=airflow_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    return _result(proc)


def test_dagbag_has_no_import_errors(inspected: dict[str, Any]) -> None:
    assert inspected["import_errors"] == {}
    assert DAG_ID in inspected["dag_ids"]
    dag = inspected["dag"]
    assert dag["schedule"] == "0 2 * * *"
    assert dag["timezone"] == "UTC"
    assert dag["catchup"] is False
    assert dag["max_active_runs"] == 1
    assert set(dag["params"]) == {"sources", "since", "recluster", "dry_run"}


def test_every_task_has_retries_backoff_and_a_timeout(inspected: dict[str, Any]) -> None:
    tasks = inspected["tasks"]
    assert {"load_sources", "fetch_shard", "plan_clean", "clean", "dedup", "publish"} <= set(tasks)
    for task_id, task in tasks.items():
        assert task["timeout"] and task["timeout"] <= 3 * 3600, task_id
        if task_id == "fail_if_any_failed":  # it exists to fail; a retry would only delay that
            assert task["retries"] == 0
            continue
        assert task["retries"] >= 2, task_id
        assert task["backoff"], task_id
        assert task["max_retry_delay"] and task["max_retry_delay"] <= 3600, task_id


def test_fetching_tasks_share_the_http_pool_and_publish_updates_the_asset(inspected: dict[str, Any]) -> None:
    tasks = inspected["tasks"]
    assert tasks["fetch_shard"]["pool"] == "newsagg_http"
    assert tasks["fetch_shard"]["mapped"] and tasks["clean"]["mapped"]
    for task_id in ("load_sources", "plan_clean", "clean", "dedup", "publish"):
        assert tasks[task_id]["pool"] != "newsagg_http", task_id
    assert tasks["publish"]["outlets"] == ["newsagg://stories"]
    assert "dedup" in tasks["publish"]["upstream"]


def test_params_reject_bad_values_before_a_run(inspected: dict[str, Any]) -> None:
    verdicts = inspected["verdicts"]
    for conf, verdict in zip(BAD_CONFS, verdicts[: len(BAD_CONFS)], strict=True):
        assert verdict is not None, f"{conf} was accepted"
    for conf, verdict in zip(GOOD_CONFS, verdicts[len(BAD_CONFS) :], strict=True):
        assert verdict is None, f"{conf} was rejected: {verdict}"
    assert inspected["dag"]["params"]["since"]["format"] == "date"


def test_parsing_the_dag_file_imports_nothing_heavy_and_opens_no_socket(tmp_path: Path) -> None:
    env = airflow_env(
        tmp_path,
        {
            # A store the parse must not touch: nothing listens there.
            "NEWSAGG_STORE_URL": "postgresql://nobody@127.0.0.1:9/nowhere",
            "NEWSAGG_SOURCES": str(tmp_path / "missing.yaml"),
            "NEWSAGG_SCHEDULE": "30 3 * * *",
        },
    )
    proc = subprocess.run(
        [sys.executable, "-c", PARSE, str(DAGS / "news_aggregation.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    result = _result(proc)
    loaded, new = set(result["all"]), set(result["new"])
    for name in ("scrapy", "trafilatura", "feedparser"):
        assert name not in loaded, f"parsing the DAG file imported {name}"
    for name in HEAVY:  # some (twisted, via structlog) come with airflow.sdk itself
        assert name not in new, f"parsing the DAG file imported {name}"
    assert "sqlalchemy" not in new and "yaml" not in new
    assert {m for m in new if m.startswith("pipeline")} <= {
        "pipeline",
        "pipeline.config",
        "pipeline.errors",
        "pipeline.models",
    }


def test_schedule_comes_from_configuration(airflow_home: Path) -> None:
    args = {"dags": str(DAGS), "dag_id": DAG_ID, "confs": []}
    proc = subprocess.run(
        [sys.executable, "-c", INSPECT, json.dumps(args)],
        env=airflow_env(airflow_home, {"NEWSAGG_SCHEDULE": "15 4 * * 1"}),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert _result(proc)["dag"]["schedule"] == "15 4 * * 1"


def test_the_trigger_form_offers_the_registry_names(airflow_home: Path, tmp_path: Path) -> None:
    registry = tmp_path / "sources.yaml"
    registry.write_text(
        "sources:\n"
        "  - name: wire\n    kind: rss\n    url: http://wire.example/rss\n"
        "  - {name: 'ledger', kind: rss, url: 'http://ledger.example/rss'}\n"
        "  - name: gazette  # a comment\n    kind: sitemap\n    url: http://gazette.example/s.xml\n",
        encoding="utf-8",
    )
    args = {"dags": str(DAGS), "dag_id": DAG_ID, "confs": [{"sources": ["ledger"]}]}
    proc = subprocess.run(
        [sys.executable, "-c", INSPECT, json.dumps(args)],
        env=airflow_env(airflow_home, {"NEWSAGG_SOURCES": str(registry)}),
        capture_output=True,
        text=True,
        timeout=300,
    )
    result = _result(proc)
    assert result["dag"]["params"]["sources"]["examples"] == ["gazette", "ledger", "wire"]
    assert result["verdicts"] == [None]


# -- shards --------------------------------------------------------------------------------------


def test_shards_keep_a_host_together_and_are_stable() -> None:
    from pipeline.models import Source
    from pipeline.shards import MAX_SHARDS, plan_shards, shard_of

    sources = [
        Source(name=f"s{i}", kind="rss", url=f"https://host{i % 37}.example:{8000 + i}/feed{i}.xml")
        for i in range(300)
    ]
    shards = plan_shards(sources, 16)
    assert 1 < len(shards) <= 16
    assert sorted(n for shard in shards for n in shard.sources) == sorted(s.name for s in sources)
    where = {n: shard.index for shard in shards for n in shard.sources}
    for source in sources:  # every source of one host in its host's shard, whatever the port
        assert where[source.name] == where[f"s{int(source.url.split('host')[1].split('.')[0])}"]
    # Stable: the registry's order, or other hosts coming and going, moves no host.
    again = plan_shards(list(reversed(sources[:150])), 16)
    assert all(where[n] == shard.index for shard in again for n in shard.sources)
    assert shard_of("https://HOST3.example/x", 16) == shard_of("http://host3.example:81/y", 16)
    for bad in (0, MAX_SHARDS + 1):
        with pytest.raises(ConfigError, match="shard_count"):
            plan_shards(sources, bad)
    assert MAX_SHARDS < 1024 // 2  # well under Airflow's max_map_length


def test_a_large_registry_maps_over_a_bounded_number_of_shards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    from pipeline import tasks

    registry = tmp_path / "sources.yaml"
    registry.write_text(
        "sources:\n"
        + "".join(
            f"  - {{name: f{i}, kind: rss, url: 'http://127.{i % 7}.{i % 251}.1/f{i}.xml'}}\n"
            for i in range(3000)
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("NEWSAGG_SOURCES", str(registry))
    monkeypatch.setenv("NEWSAGG_STORE_URL", sqlite_url)
    monkeypatch.setenv("NEWSAGG_SHARD_COUNT", "64")
    plan = tasks.prepare_run({})
    assert len(plan["sources"]) == 3000
    assert len(plan["shards"]) == 64
    assert sum(len(shard["sources"]) for shard in plan["shards"]) == 3000
    subset = tasks.prepare_run({"sources": ["f5", "f10"]})
    assert sorted(n for shard in subset["shards"] for n in shard["sources"]) == ["f10", "f5"]


def test_the_run_summary_reads_as_text_with_every_source() -> None:
    from pipeline.tasks import failed_sources, per_source, summarise, summary_lines

    results = {
        "shards": [
            {
                "shard": 3,
                "sources": {"wire": {"kind": "rss", "ok": True, "discovered": 4, "fetched": 4, "failed": 0}},
                "fetched": {"stored": 4},
            },
            {
                "shard": 9,
                "sources": {
                    "garbage": {
                        "kind": "rss",
                        "ok": False,
                        "discovered": 0,
                        "fetched": 0,
                        "failed": 0,
                        "error": "not a feed",
                    },
                    "monitor": {"kind": "sitemap", "ok": True, "discovered": 7, "fetched": 0, "failed": 0},
                },
                "fetched": {"failed": 1},
            },
        ],
        "cleaned": [{"counts": {"new": 3, "dropped": 1}}],
        "dedup": {"stories": {"new": 2}},
    }
    totals = summarise(results)
    assert totals["sources_ok"] == 2 and totals["sources_failed"] == 1 and totals["discovered"] == 11
    assert totals["pages_stored"] == 4 and totals["pages_failed"] == 1 and totals["stories_new"] == 2
    assert list(per_source(results)) == ["garbage", "monitor", "wire"]
    summary = {
        "run": totals,
        "store": {"articles": 3, "stories": 2},
        "failed": failed_sources(results),
        "warnings": ["wire: most pages look like a consent wall"],
        "sources": per_source(results),
    }
    lines = summary_lines(summary)
    assert lines[0] == "sources: 2 ok, 1 failed; 11 new URLs discovered"
    assert "failed source garbage: not a feed" in lines
    assert "health: wire: most pages look like a consent wall" in lines
    rows = [line.split() for line in lines if line.startswith(("garbage ", "monitor ", "wire "))]
    assert rows == [
        ["garbage", "rss", "0", "0", "0", "FAILED"],
        ["monitor", "sitemap", "7", "0", "0", "ok"],
        ["wire", "rss", "4", "4", "0", "ok"],
    ]


def test_an_unknown_name_lists_the_valid_ones_briefly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline import tasks

    registry = tmp_path / "sources.yaml"
    registry.write_text(
        "sources:\n"
        + "".join(f"  - {{name: s{i:03d}, kind: rss, url: 'http://h{i}.example/rss'}}\n" for i in range(100))
    )
    monkeypatch.setenv("NEWSAGG_SOURCES", str(registry))
    with pytest.raises(ConfigError) as caught:
        tasks.prepare_run({"sources": ["s001", "nosuch"], "dry_run": True})
    message = str(caught.value)
    assert message.startswith("unknown source name(s): nosuch; valid names: s000, s001, ")
    assert message.endswith(" and 60 more") and len(message) < 600


# -- pipeline.tasks, without Airflow ---------------------------------------------------------------


def test_validate_params_normalises_and_rejects() -> None:
    from pipeline.tasks import validate_params

    assert validate_params({}) == {"sources": [], "since": None, "recluster": False, "dry_run": False}
    assert validate_params({"sources": ["wire", "wire"], "since": "2026-11-20"}) == {
        "sources": ["wire"],
        "since": "2026-11-20T00:00:00Z",
        "recluster": False,
        "dry_run": False,
    }
    for bad in (
        {"sources": ["Bad!"]},
        {"sources": "wire"},
        {"since": "soon"},
        {"recluster": "no"},
        {"other": 1},
        {"since": 20261120},
        {"since": (datetime.now(UTC) + timedelta(days=30)).date().isoformat()},
    ):
        with pytest.raises(ConfigError):
            validate_params(bad)


def test_resolve_since_reaches_back_before_the_last_success() -> None:
    from pipeline.tasks import SINCE_OVERLAP, resolve_since

    last = datetime(2026, 11, 20, 2, tzinfo=UTC)
    assert resolve_since("2026-11-01T00:00:00Z", last) == "2026-11-01T00:00:00Z"
    assert resolve_since(None, None) is None
    assert resolve_since(None, last) == (last - SINCE_OVERLAP).isoformat().replace("+00:00", "Z")


def test_unknown_source_names_are_config_errors(
    tmp_path: Path, web: SampleWeb, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.tasks import load_sources

    for key, value in newsagg_env(tmp_path, web, f"sqlite:///{tmp_path / 's.db'}").items():
        monkeypatch.setenv(key, value)
    assert load_sources(["wire", "gazette"]) == {"rss": ["wire"], "sitemap": [], "html": ["gazette"]}
    with pytest.raises(ConfigError, match="unknown source name") as caught:
        load_sources(["wire", "nosuch"])
    # The message lists what could have been asked for, in one line.
    assert "valid names: " in str(caught.value) and "courier, gazette" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_clean_batches_are_ranges_so_a_retry_does_not_eat_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    from pipeline import tasks
    from pipeline.store.core import Store

    registry = tmp_path / "sources.yaml"
    registry.write_text("sources:\n  - {name: site, kind: rss, url: 'http://site.example/rss'}\n")
    monkeypatch.setenv("NEWSAGG_SOURCES", str(registry))
    monkeypatch.setenv("NEWSAGG_STORE_URL", sqlite_url)
    monkeypatch.setenv("NEWSAGG_EXTRACT_WORKERS", "1")
    store = Store(sqlite_url)
    store.migrate()
    body = (
        "<html><head><title>Story {n}</title></head><body><article><h1>Story {n}</h1>"
        + "<p>Paragraph {n} of a report about the harbour reopening after the storm. "
        "Officials said the port would handle ships again by Friday.</p>" * 6 + "</article></body></html>"
    )
    with store.begin() as conn:
        for n in range(5):
            store.save_page(
                conn,
                url=f"http://site.example/{n}",
                source="site",
                final_url=f"http://site.example/{n}",
                body=body.format(n=n).encode(),
                content_type="text/html",
                charset="utf-8",
                etag=None,
                last_modified=None,
            )
    store.close()
    batches = tasks.plan_clean(["site"], batch_size=2)
    assert [b["pages"] for b in batches] == [2, 2, 1]
    first = tasks.clean_batch(batches[0], ["site"])
    assert first["pages"] == 2
    retried = tasks.clean_batch(batches[0], ["site"])  # committed before: a retry finds nothing
    assert retried["pages"] == 0
    assert tasks.plan_clean(["site"], batch_size=2) == [
        {"after": "", "last": "http://site.example/3", "pages": 2},
        {"after": "http://site.example/3", "last": "http://site.example/4", "pages": 1},
    ]
    for batch in batches[1:]:
        assert tasks.clean_batch(batch, ["site"])["pages"] > 0
    assert tasks.plan_clean(["site"]) == []


# -- dag.test() end to end -------------------------------------------------------------------------


def test_dag_runs_the_sample_web_and_a_rerun_changes_no_row(
    airflow_home: Path, tmp_path: Path, web: SampleWeb, store_url: str
) -> None:
    env = newsagg_env(tmp_path, web, store_url)
    run = run_dag(airflow_home, env)
    assert run.state == "success", run.summary()
    assert set(run.mapped("fetch_shard").values()) == {"success"}
    assert all(label.startswith("shard ") for label in run.mapped("fetch_shard"))
    # The shards clean their pages while they fetch: the clean tasks only take what is left.
    assert set(run.mapped("clean").values()) <= {"success"}
    shard_results = [
        json.loads(v) if isinstance(v, str | bytes) else v
        for t, i, k, v in run.xcoms
        if t == "fetch_shard" and k == "return_value"
    ]
    assert sum(sum(r.get("cleaned", {}).values()) for r in shard_results) > 0
    for task_id in ("load_sources", "plan_clean", "dedup", "publish"):
        assert run.state_of(task_id) == "success", task_id
    assert run.state_of("fail_if_any_failed") == "success"  # green, not "skipped"
    assert_small_xcoms(run)

    from pipeline.store.core import Store

    with Store(store_url) as store:
        stories = store.stories()
    urls = {a.url for s in stories for a in s.articles}
    expected = {web.base_url + m["url_path"] for m in load_manifest()}
    assert expected <= urls, sorted(expected - urls)
    published = run.xcom("publish")
    assert published["store"]["stories"] == len(stories)
    assert published["run"]["sources_ok"] == len(FEEDS) + len(CRAWLS)
    assert published["run"]["sources_failed"] == 0 and published["failed"] == {}
    assert set(published["sources"]) == set(FEEDS + CRAWLS)
    assert all(published["sources"][name]["fetched"] > 0 for name in FEEDS)
    assert {e["kind"] for e in published["sources"].values()} == {"rss", "sitemap", "html"}
    [(uri, extra)] = run.events
    assert uri.rstrip("/") == "newsagg://stories"
    assert extra["stories_total"] == len(stories) and extra["articles_new"] > 0

    before = dump_store(store_url)
    again = run_dag(airflow_home, env)
    assert again.state == "success", again.summary()
    assert again.logical_date == run.logical_date
    assert dump_store(store_url) == before
    assert again.xcom("publish")["run"]["articles_new"] == 0
    assert again.xcom("load_sources", "since") is None  # no earlier successful run

    # The next night's default window starts shortly before this successful run.
    nxt = run_dag(airflow_home, env, logical_date="2026-11-22T02:00:00+00:00", conf={"sources": ["wire"]})
    assert nxt.state == "success", nxt.summary()
    assert nxt.xcom("load_sources", "since") == "2026-11-20T20:00:00Z"
    assert dump_store(store_url) == before


def test_manual_run_without_logical_date_on_a_source_subset_into_the_connection(
    airflow_home: Path, tmp_path: Path, web: SampleWeb, sqlite_url: str
) -> None:
    env = newsagg_env(tmp_path, web, sqlite_url)
    # No store in the configuration: the Airflow Connection newsagg_store names it.
    del env["NEWSAGG_STORE_URL"]
    env["AIRFLOW_CONN_NEWSAGG_STORE"] = json.dumps({"conn_type": "sqlite", "extra": {"url": sqlite_url}})
    run = run_dag(
        airflow_home, env, conf={"sources": ["wire", "gazette"], "recluster": True}, logical_date=None
    )
    assert run.state == "success", run.summary()
    assert run.xcom("dedup")["recluster"] is True
    # Only the chosen sources' shards ran, and in them only the chosen sources.
    shards = run.xcom("load_sources", "shards")
    assert sorted(n for shard in shards for n in shard["sources"]) == ["gazette", "wire"]
    assert set(run.mapped("fetch_shard").values()) == {"success"}
    assert len(run.mapped("fetch_shard")) == len(shards)
    assert set(run.xcom("publish")["sources"]) == {"wire", "gazette"}
    assert run.xcom("load_sources", "since") is None
    from pipeline.store.core import Store

    with Store(sqlite_url) as store:
        sources = {a.source for s in store.stories() for a in s.articles}
    assert sources == {"wire", "gazette"}


def test_dry_run_validates_and_touches_nothing(airflow_home: Path, tmp_path: Path, web: SampleWeb) -> None:
    store = tmp_path / "store" / "newsagg.db"
    env = newsagg_env(tmp_path, web, f"sqlite:///{store}")
    run = run_dag(airflow_home, env, conf={"dry_run": True, "since": "2026-11-19"})
    assert run.state == "success", run.summary()
    assert run.state_of("load_sources") == "success"
    assert run.xcom("load_sources", "sources") == FEEDS + CRAWLS
    for task_id in ("fetch_shard", "plan_clean", "clean", "dedup", "publish"):
        assert {ti["state"] for (t, _), ti in run.tis.items() if t == task_id} == {"skipped"}
    assert run.state_of("fail_if_any_failed") == "success"
    assert not store.exists()
    assert web.requests == []
    assert run.events == []


def test_unknown_source_fails_fast_without_retry_or_work(
    airflow_home: Path, tmp_path: Path, web: SampleWeb
) -> None:
    store = tmp_path / "store" / "newsagg.db"
    env = newsagg_env(tmp_path, web, f"sqlite:///{store}")
    run = run_dag(airflow_home, env, conf={"sources": ["wire", "nosuch"]})
    assert run.state == "failed"
    assert run.tis[("load_sources", -1)] == {"state": "failed", "try_number": 1, "label": None}
    assert run.state_of("fail_if_any_failed") == "failed"
    for task_id in ("plan_clean", "dedup"):
        assert run.state_of(task_id) == "skipped", task_id
    assert run.state_of("publish") in ("skipped", "upstream_failed")
    assert not store.exists()
    assert web.requests == []
    assert run.events == []


def test_a_failing_source_fails_the_run_but_the_rest_is_published(
    airflow_home: Path, tmp_path: Path, web: SampleWeb, sqlite_url: str
) -> None:
    extra = f"  - name: garbage\n    kind: rss\n    url: {web.base_url}/faults/garbage-feed.xml\n"
    env = newsagg_env(tmp_path, web, sqlite_url, extra)
    run = run_dag(airflow_home, env, conf={"sources": ["wire", "garbage"]}, no_retries=True)
    assert run.state == "failed"
    # The shard reports the source's failure instead of failing (and refetching its neighbours).
    assert set(run.mapped("fetch_shard").values()) == {"success"}
    for task_id in ("plan_clean", "dedup", "publish"):
        assert run.state_of(task_id) == "success", run.summary()
    assert run.state_of("fail_if_any_failed") == "failed"
    published = run.xcom("publish")
    assert set(published["failed"]) == {"garbage"}
    assert published["sources"]["wire"]["ok"] is True and published["run"]["sources_failed"] == 1
    assert [uri.rstrip("/") for uri, _ in run.events] == ["newsagg://stories"]
    from pipeline.store.core import Store

    with Store(sqlite_url) as store:
        assert {a.source for s in store.stories() for a in s.articles} == {"wire"}


def test_a_refused_source_fails_at_once_without_retries(
    airflow_home: Path, tmp_path: Path, web: SampleWeb, sqlite_url: str
) -> None:
    env = newsagg_env(tmp_path, web, sqlite_url)
    env["NEWSAGG_ALLOW_PRIVATE_NETWORK"] = "0"  # the sample web is on loopback: refused
    run = run_dag(airflow_home, env, conf={"sources": ["wire"]})
    assert run.state == "failed"
    assert list(run.mapped("fetch_shard").values()) == ["success"]
    assert run.tis[("fetch_shard", 0)]["try_number"] == 1, "retried a refusal"
    assert run.state_of("fail_if_any_failed") == "failed"
    assert run.xcom("publish")["failed"]["wire"].startswith("refused: ")
    assert web.requests == []
