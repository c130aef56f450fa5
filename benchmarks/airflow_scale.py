"""Many sources through Airflow's Celery workers, against ``newsagg run`` on the same work.

Run ``python benchmarks/airflow_scale.py [--feeds 5000] [--hosts 500] [--items 2] [--delay 0.05]
[--shards 16] [--clean-batch 500] [--workers 2] [--concurrency 2] [--pool 4]``. Needs Redis on
127.0.0.1:6379 and PostgreSQL (``NEWSAGG_TEST_POSTGRES_URL``, trust auth); its databases are
created and dropped here.

Method. ``--hosts`` loopback hosts (127.x.y.z, each its own host to the politeness rules), one
asyncio server process listening on all of them, serve ``--feeds`` RSS feeds spread over the
hosts, each feed listing ``--items`` article pages on its own host. A few feeds are large (40
items), some hosts dead (nothing listens: connection refused), some feeds slow (answer after
1.5 s), erroring (HTTP 500) or not XML at all. Every request is logged with its arrival time.

1. ``newsagg run`` (the CLI: one process) into a fresh PostgreSQL store;
2. the DAG, started by ``scripts/airflow-local.sh --executor celery --workers N`` (PostgreSQL
   metadata database and store, Redis broker), triggered through the REST API into another
   fresh store; its time is the DAG run's own start to end (Airflow's start-up excluded).

Figures: wall time and feeds per second of each, the Airflow overhead (DAG run time minus the
CLI's time, as a share of the CLI's), tasks created, peak memory of each worker's process tree
(sampled every 0.5 s), and from the request logs, per run, the smallest gap between two
requests to one host and how many gaps were shorter than the delay.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "airflow-local.sh"
DAG_ID = "news_aggregation"
WORDS = [
    "harbour",
    "council",
    "storm",
    "minister",
    "budget",
    "election",
    "court",
    "river",
    "bridge",
    "school",
    "hospital",
    "strike",
    "market",
    "museum",
    "festival",
    "railway",
    "airport",
    "energy",
    "water",
    "police",
    "farmers",
    "trade",
    "summit",
    "vote",
    "report",
    "inquiry",
    "flood",
    "fire",
    "plan",
    "tax",
    "union",
    "housing",
    "climate",
    "coast",
    "mayor",
    "port",
    "ferry",
    "road",
]


# -- the web ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    feeds: int
    hosts: int
    items: int
    seed: int = 7

    def host(self, index: int) -> str:
        n = index + 2  # 127.0.0.2 onwards: 127.0.0.1 stays free for everything else
        return f"127.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"

    def feed_host(self, feed: int) -> int:
        return feed % self.hosts  # interleaved: the registry's neighbours are other hosts

    def kind(self, feed: int) -> str:
        """Most feeds are small and well; a few large, slow, erroring or garbage."""
        r = random.Random(self.seed * 1_000_003 + feed).random()
        if r < 0.01:
            return "large"
        if r < 0.02:
            return "slow"
        if r < 0.04:
            return "error"
        if r < 0.05:
            return "garbage"
        return "small"

    def dead(self, host: int) -> bool:
        return random.Random(self.seed * 7919 + host).random() < 0.02

    def count(self, feed: int) -> int:
        return 40 if self.kind(feed) == "large" else self.items


def feed_xml(spec: Spec, feed: int, host: str, port: int) -> bytes:
    now = datetime.now(UTC)
    items = []
    for j in range(spec.count(feed)):
        event = (feed * 7 + j) % 400
        when = format_datetime(now - timedelta(minutes=5 * j + feed % 60))
        items.append(
            f"<item><title>{WORDS[event % len(WORDS)].title()} report {feed}-{j}</title>"
            f"<link>http://{host}:{port}/a/{feed}/{j}.html</link>"
            f"<guid>http://{host}:{port}/a/{feed}/{j}.html</guid><pubDate>{when}</pubDate></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Feed {feed}</title><link>http://{host}:{port}/</link><description>f</description>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


def article_html(feed: int, item: int) -> bytes:
    event = (feed * 7 + item) % 400
    rng = random.Random(event)
    topic = [WORDS[(event + k) % len(WORDS)] for k in range(4)]
    paragraphs = []
    for p in range(5):
        words = [rng.choice(WORDS) for _ in range(45)]
        paragraphs.append(
            f"<p>The {topic[p % 4]} {' '.join(words)}; officials said on day {event % 28 + 1} that "
            f"outlet {feed} would follow the {topic[0]} story.</p>"
        )
    title = f"{topic[0].title()} {topic[1]} and {topic[2]}: event {event}"
    return (
        f"<!doctype html><html><head><title>{title}</title></head><body><article><h1>{title}</h1>"
        + "".join(paragraphs)
        + "</article></body></html>"
    ).encode()


async def handle(
    spec: Spec, host: str, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, log: Any
) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            log.write(f"{host} {time.time():.6f}\n")
            path = head.split(b" ", 2)[1].decode("latin-1")
            status, ctype, body, pause = 200, "text/html; charset=utf-8", b"", 0.0
            if path == "/robots.txt":
                status, body = 404, b"no"
            elif path.startswith("/feed/"):
                feed = int(path[6:].split(".")[0])
                kind = spec.kind(feed)
                ctype = "application/rss+xml"
                if kind == "error":
                    status, body = 500, b"oops"
                elif kind == "garbage":
                    ctype, body = "text/plain", b"\x00\x01 not a feed at all " * 20
                else:
                    body = feed_xml(spec, feed, host, port)
                    pause = 1.5 if kind == "slow" else 0.0
            elif path.startswith("/a/"):
                feed_s, item_s = path[3:].split("/")
                body = article_html(int(feed_s), int(item_s.split(".")[0]))
            else:
                status, body = 404, b"not here"
            if pause:
                await asyncio.sleep(pause)
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Connection: keep-alive\r\n\r\n".encode()
                + body
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError, IndexError):
        pass
    finally:
        writer.close()


async def serve(spec: Spec, port: int, log_path: Path, ready: Path) -> None:
    with open(log_path, "a", buffering=1) as log:
        servers = []
        for index in range(spec.hosts):
            if spec.dead(index):
                continue
            host = spec.host(index)

            async def one(r: asyncio.StreamReader, w: asyncio.StreamWriter, host: str = host) -> None:
                await handle(spec, host, port, r, w, log)

            servers.append(await asyncio.start_server(one, host, port, backlog=64))
        ready.write_text(str(len(servers)))
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        for server in servers:
            server.close()


def registry(spec: Spec, port: int) -> str:
    lines = ["sources:"]
    for feed in range(spec.feeds):
        host = spec.host(spec.feed_host(feed))
        lines.append(f"  - {{name: f{feed:05d}, kind: rss, url: 'http://{host}:{port}/feed/{feed}.xml'}}")
    return "\n".join(lines) + "\n"


def free_port_on_all(spec: Spec) -> int:
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((spec.host(0), 0))
            port = int(probe.getsockname()[1])
        ok = True
        for index in range(spec.hosts):
            with socket.socket() as sock:
                try:
                    sock.bind((spec.host(index), port))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise RuntimeError("no port free on every loopback host")


# -- measuring ------------------------------------------------------------------------------------


class MemoryWatch:
    """Peak RSS of process trees, sampled every 0.5 s: each Celery worker's, or one process's."""

    def __init__(self) -> None:
        self.peaks: dict[str, int] = defaultdict(int)
        self.roots: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(0.5):
            for label, pid in list(self.roots.items()):
                total = 0
                with contextlib.suppress(psutil.Error):
                    root = psutil.Process(pid)
                    for proc in [root, *root.children(recursive=True)]:
                        with contextlib.suppress(psutil.Error):
                            total += proc.memory_info().rss
                self.peaks[label] = max(self.peaks[label], total)


def find_workers(home: Path) -> dict[str, int]:
    """The Celery workers' pids, as scripts/airflow-local.sh wrote them."""
    return {path.stem: int(path.read_text()) for path in sorted(home.glob("worker*.pid"))}


def gaps(log_path: Path, start: float, end: float) -> tuple[float, dict[str, float], int]:
    """Per host, the smallest gap between two requests in [start, end]."""
    by_host: dict[str, list[float]] = defaultdict(list)
    for line in log_path.read_text().splitlines():
        host, stamp = line.split()
        t = float(stamp)
        if start <= t <= end:
            by_host[host].append(t)
    smallest: dict[str, float] = {}
    total = 0
    for host, times in by_host.items():
        times.sort()
        total += len(times)
        if len(times) > 1:
            smallest[host] = min(b - a for a, b in itertools.pairwise(times))
    overall = min(smallest.values()) if smallest else float("inf")
    return overall, smallest, total


@contextlib.contextmanager
def database(admin: str) -> Iterator[str]:
    import psycopg

    name = f"airflow_scale_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def api(base: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{base}/api/v2{path}", data=data, method="POST" if body is not None else "GET"
    )
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def parse_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


# -- the runs -------------------------------------------------------------------------------------


def run_cli(env: dict[str, str], store: str, workdir: Path) -> dict[str, Any]:
    import psutil

    started = time.time()
    with open(workdir / "cli.log", "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "run"],
            env={**env, "NEWSAGG_STORE_URL": store},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
        peak = 0
        while proc.poll() is None:
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(proc.pid)
                total = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
                peak = max(peak, total)
            time.sleep(0.5)
    ended = time.time()
    tail = (workdir / "cli.log").read_text(errors="replace")[-1500:]
    return {
        "start": started,
        "end": ended,
        "seconds": ended - started,
        "exit": proc.returncode,
        "peak": peak,
        "tail": tail,
    }


def run_dag(
    args: argparse.Namespace, env: dict[str, str], store: str, metadata: str, workdir: Path
) -> dict[str, Any]:
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    api_port = port.getsockname()[1]
    port.close()
    home = workdir / "airflow"
    base = f"http://127.0.0.1:{api_port}"
    script_env = {
        **env,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_PORT": str(api_port),
        "VENV": sys.prefix,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
        "NEWSAGG_STORE_URL": store,
        "AIRFLOW_QUEUE": f"scale-{uuid.uuid4().hex[:8]}",
        "AIRFLOW_WORKER_CONCURRENCY": str(args.concurrency),
        "AIRFLOW_PARALLELISM": str(args.workers * args.concurrency),
        "NEWSAGG_HTTP_POOL_SLOTS": str(args.pool),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
    }
    log = workdir / "airflow-local.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(SCRIPT), "--executor", "celery", "--workers", str(args.workers)],
            env=script_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.time() + 300
        while "airflow-local: ready: " not in log.read_text():
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("airflow-local.sh did not start:\n" + log.read_text()[-3000:])
            time.sleep(1)
        while time.time() < deadline:
            with contextlib.suppress(OSError, ValueError):
                if api(base, f"/dags/{DAG_ID}")["dag_id"] == DAG_ID:
                    break
            time.sleep(1)
        with MemoryWatch() as memory:
            memory.roots.update(find_workers(home))
            run = api(base, f"/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": {}})
            run_id = run["dag_run_id"]
            while run["state"] not in ("success", "failed"):
                time.sleep(2)
                with contextlib.suppress(OSError, ValueError):
                    run = api(base, f"/dags/{DAG_ID}/dagRuns/{run_id}")
        tis = api(base, f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances?limit=1000")["task_instances"]
        by_task: dict[str, int] = defaultdict(int)
        for ti in tis:
            by_task[ti["task_id"]] += 1
        publish = [t for t in tis if t["task_id"] == "publish"]
        busy: dict[str, float] = defaultdict(float)
        waits = []
        for ti in tis:
            if ti.get("duration"):
                busy[ti["task_id"]] += float(ti["duration"])
            if ti.get("queued_when") and ti.get("start_date"):
                waits.append(parse_time(ti["start_date"]) - parse_time(ti["queued_when"]))
        return {
            "state": run["state"],
            "start": parse_time(run["start_date"]),
            "end": parse_time(run["end_date"]),
            "seconds": parse_time(run["end_date"]) - parse_time(run["start_date"]),
            "tasks": len(tis),
            "by_task": dict(by_task),
            "hosts": sorted({t["hostname"] for t in tis if t["hostname"]}),
            "peaks": dict(memory.peaks),
            "published": bool(publish and publish[0]["state"] == "success"),
            "busy": dict(busy),
            "wait": sorted(waits)[len(waits) // 2] if waits else 0.0,
        }
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=60)


def count_rows(store: str) -> dict[str, int]:
    from pipeline.store.core import Store

    with Store(store) as s:
        return dict(s.counts())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=5000)
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--items", type=int, default=2, help="articles per small feed")
    parser.add_argument(
        "--delay", type=float, default=0.05, help="politeness: seconds between requests to a host"
    )
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--clean-batch", type=int, default=500, help="pages per clean task")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2, help="task slots per Celery worker")
    parser.add_argument(
        "--pool", type=int, default=4, help="newsagg_http pool slots (shards fetching at once)"
    )
    parser.add_argument("--serve", nargs=4, metavar=("SPEC", "PORT", "LOG", "READY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        spec_json, port, log, ready = args.serve
        asyncio.run(serve(Spec(**json.loads(spec_json)), int(port), Path(log), Path(ready)))
        return
    admin = os.environ.get("NEWSAGG_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    spec = Spec(args.feeds, args.hosts, args.items)
    print(f"$ {shlex.join([Path(sys.executable).name, *sys.argv])}")
    with tempfile.TemporaryDirectory(prefix="airflow-scale-") as tmp:
        workdir = Path(tmp)
        port = free_port_on_all(spec)
        log_path, ready = workdir / "requests.log", workdir / "ready"
        server = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve",
                json.dumps(spec.__dict__),
                str(port),
                str(log_path),
                str(ready),
            ]
        )
        try:
            while not ready.exists():
                if server.poll() is not None:
                    raise SystemExit("the loopback web did not start")
                time.sleep(0.2)
            live = int(ready.read_text())
            (workdir / "sources.yaml").write_text(registry(spec, port))
            kinds: dict[str, int] = defaultdict(int)
            for feed in range(spec.feeds):
                kinds["dead host" if spec.dead(spec.feed_host(feed)) else spec.kind(feed)] += 1
            print(
                f"registry: {spec.feeds} feeds on {spec.hosts} hosts ({spec.hosts - live} dead); "
                + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
            )
            env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "NEWSAGG_"))}
            env.update(
                {
                    "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
                    "NEWSAGG_SOURCES": str(workdir / "sources.yaml"),
                    "NEWSAGG_ALLOW_PRIVATE_NETWORK": "1",
                    "NEWSAGG_HOST_DELAY": str(args.delay),
                    "NEWSAGG_SHARD_COUNT": str(args.shards),
                    "NEWSAGG_CLEAN_BATCH_SIZE": str(args.clean_batch),
                    "XDG_DATA_HOME": str(workdir / "xdg"),
                }
            )
            with database(admin) as cli_store:
                cli = run_cli(env, cli_store, workdir)
                cli_rows = count_rows(cli_store)
            with database(admin) as dag_store, database(admin) as metadata:
                dag = run_dag(args, env, dag_store, metadata, workdir)
                dag_rows = count_rows(dag_store)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        cli_gap, _, cli_requests = gaps(log_path, cli["start"], cli["end"])
        dag_gap, dag_hosts, dag_requests = gaps(log_path, dag["start"], dag["end"])
        cli_bad = sum(1 for g in gaps(log_path, cli["start"], cli["end"])[1].values() if g < args.delay)
        dag_bad = sum(1 for g in dag_hosts.values() if g < args.delay)
    mb = 1024 * 1024
    lines = [
        f"newsagg run:  {cli['seconds']:.1f} s, {spec.feeds / cli['seconds']:.1f} feeds/s, "
        f"exit {cli['exit']}, peak {cli['peak'] / mb:.0f} MB; store {cli_rows}",
        f"Airflow DAG:  {dag['seconds']:.1f} s (run start to end), "
        f"{spec.feeds / dag['seconds']:.1f} feeds/s, state {dag['state']}; store {dag_rows}",
        f"  tasks created: {dag['tasks']} ("
        + ", ".join(f"{k} {v}" for k, v in sorted(dag["by_task"].items()))
        + ")",
        f"  ran on: {', '.join(dag['hosts'])}; median queued-to-running {dag['wait']:.1f} s",
        "  task seconds (summed over map indexes): "
        + ", ".join(f"{k} {v:.0f}" for k, v in sorted(dag["busy"].items(), key=lambda kv: -kv[1])),
        "  peak memory per worker (process tree): "
        + ", ".join(f"{k} {v / mb:.0f} MB" for k, v in sorted(dag["peaks"].items())),
    ]
    overhead = dag["seconds"] - cli["seconds"]
    lines.append(
        f"Airflow overhead: {overhead:+.1f} s = {overhead / cli['seconds']:+.0%} of the CLI's time "
        "(aim <= +15%)"
    )
    lines.append(
        f"politeness (delay {args.delay} s): CLI {cli_requests} requests, smallest gap on one host "
        f"{cli_gap * 1000:.1f} ms, {cli_bad} hosts below the delay; DAG {dag_requests} requests, "
        f"smallest gap {dag_gap * 1000:.1f} ms, {dag_bad} hosts below the delay"
    )
    print("\n".join(lines))
    if cli["exit"] not in (0, 1):
        print("CLI output:\n" + cli["tail"])


if __name__ == "__main__":
    main()
