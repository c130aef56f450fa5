"""Crash safety: a run killed with SIGKILL and re-run ends where one clean run ends.

``newsagg run`` runs as a real subprocess (``python -m pipeline.cli run ...
--allow-private-network``) against four feed outlets of the sample news web into a SQLite
file. It is killed with ``kill -9`` at four points: a delay drawn from a fixed seed after the
run logs that its feeds, fetch, clean or dedup stage started (so the kill lands inside that stage
whatever the machine's speed), then run again to completion. The store must then hold
exactly what one clean run into a fresh store holds: the same articles (URL, text, every stable
column), the same stories (ids, titles, memberships compared as a partition of article URLs):
nothing lost, nothing duplicated.
The kill is ``kill -9 -PGID`` (the run in its own process group, as an OOM kill of a container
would): killing only the main process leaves its extraction workers (a ``ProcessPoolExecutor``
on a forkserver) orphaned, holding the run's stdout/stderr open.

A crash inside dedup is also tested exactly, in-process (a BaseException from
``Stories.save_story``): dedup writes the articles' new signatures only in its last transaction, so
a run that dies between story writes leaves those articles to do again.

Compared with :func:`tests.helpers.dump_store` minus what is volatile by nature: the columns
``fetched_at``, ``discovered_at``, ``updated_at``, ``at`` and ``change_seq`` and the change log
tables ``changes`` and ``change_counter`` (their numbering depends on how many commits a run
made before it died) and ``run_lock`` (who took it last).

On PostgreSQL, two ``newsagg run`` subprocesses doing the same work at once must give the same
store as one run: ``Store.run_lock()`` serialises whole runs on a store with a row lock on
``run_lock``, so the second run waits and then finds nothing new to do.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from pipeline.sampleweb.server import SampleWeb, sources_yaml
from pipeline.store.core import normalise_url
from pipeline.store.schema import articles, metadata
from tests.helpers import RUN_LOGS, dump_store

FEED_OUTLETS = ["wire", "ledger", "herald", "courier"]
SEED = 20261125
# Progress logs "<stage>: started"; a kill lands inside each of these stages.
KILL_STAGES = ("feeds", "fetch", "clean", "dedup")
VOLATILE_COLUMNS = {"fetched_at", "discovered_at", "updated_at", "at", "change_seq"}
VOLATILE_TABLES = {"changes", "change_counter", "run_lock", *RUN_LOGS}
RUN_TIMEOUT = 240  # seconds: generous, for a busy machine


@pytest.fixture
def web() -> Iterator[SampleWeb]:
    with SampleWeb() as server:
        yield server


def _registry(tmp_path: Path, web: SampleWeb) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(sources_yaml(web.base_url), encoding="utf-8")
    return path


def _command(registry: Path, store: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pipeline.cli",
        "run",
        "--sources",
        str(registry),
        "--store",
        store,
        "--allow-private-network",
        "--only",
        *FEED_OUTLETS,
    ]


def _start(registry: Path, store: str, cwd: Path) -> subprocess.Popen[str]:
    # Its own process group: the kill takes the run's extraction workers with it.
    return subprocess.Popen(
        _command(registry, store),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
        start_new_session=True,
    )


def _kill_group(proc: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _finish(proc: subprocess.Popen[str]) -> str:
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        _kill_group(proc)  # nothing of a run outlives the test
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err[-3000:]}"
    return out


def stable_dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """dump_store without the volatile columns and tables (see the module docstring)."""
    full = dump_store(url)
    out = {}
    for table in metadata.sorted_tables:
        if table.name in VOLATILE_TABLES:
            continue
        keep = [i for i, column in enumerate(table.columns) if column.name not in VOLATILE_COLUMNS]
        out[table.name] = sorted(tuple(row[i] for i in keep) for row in full[table.name])
    return out


def story_partition(url: str) -> dict[str | None, frozenset[str]]:
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(articles.c.url, articles.c.story_id)).all()
    finally:
        engine.dispose()
    groups: dict[str | None, set[str]] = {}
    for article_url, story_id in rows:
        groups.setdefault(story_id, set()).add(article_url)
    return {k: frozenset(v) for k, v in groups.items()}


def _compare(got_url: str, want_url: str) -> dict[str, int]:
    """Assert the two stores hold the same stable rows; returns the rows lost and duplicated."""
    got, want = stable_dump(got_url), stable_dump(want_url)
    lost: dict[str, int] = {}
    extra: dict[str, int] = {}
    for table in want:
        got_rows, want_rows = Counter(got[table]), Counter(want[table])
        lost[table] = sum((want_rows - got_rows).values())
        extra[table] = sum((got_rows - want_rows).values())
    counts = {"lost": sum(lost.values()), "duplicated": sum(extra.values())}
    detail = {t: (lost[t], extra[t]) for t in want if lost[t] or extra[t]}
    assert counts == {"lost": 0, "duplicated": 0}, f"(lost, extra) rows by table: {detail}"
    assert story_partition(got_url) == story_partition(want_url)
    return counts


def test_kill_9_then_rerun_equals_one_clean_run(web: SampleWeb, tmp_path: Path) -> None:
    registry = _registry(tmp_path, web)
    reference = f"sqlite:///{tmp_path / 'clean' / 'newsagg.db'}"
    started = time.monotonic()
    _finish(_start(registry, reference, tmp_path))
    clean_seconds = time.monotonic() - started
    want = stable_dump(reference)
    assert len(want["articles"]) >= 10 and want["stories"], "the clean run stored too little"

    rng = random.Random(SEED)
    report = []
    killed_mid_run = 0
    for n, stage in enumerate(KILL_STAGES):
        delay = rng.uniform(0.0, 0.25)
        store = f"sqlite:///{tmp_path / f'killed{n}' / 'newsagg.db'}"
        log = tmp_path / f"killed{n}.log"
        with log.open("w") as err:
            proc = subprocess.Popen(
                _command(registry, store),
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=dict(os.environ),
                start_new_session=True,
            )
            try:
                deadline = time.monotonic() + RUN_TIMEOUT
                while (
                    proc.poll() is None
                    and f"{stage}: started" not in log.read_text()
                    and time.monotonic() < deadline
                ):
                    time.sleep(0.01)
                time.sleep(delay)
                state = "killed" if proc.poll() is None else "had finished"
                _kill_group(proc)  # kill -9 -PGID: the run and its workers
                proc.wait(timeout=RUN_TIMEOUT)
            finally:
                _kill_group(proc)
        killed_mid_run += state == "killed"
        _finish(_start(registry, store, tmp_path))  # the rerun, to completion
        counts = _compare(store, reference)
        report.append(
            f"kill {delay:.2f}s into {stage} ({state}): "
            f"lost {counts['lost']}, duplicated {counts['duplicated']}"
        )
    print(
        f"\nclean run: {clean_seconds:.1f}s, {len(want['articles'])} articles, "
        f"{len(want['stories'])} stories\n" + "\n".join(report)
    )
    assert killed_mid_run >= 1, report


# ------------------------------------------------------------------------------ PostgreSQL


def test_two_concurrent_runs_on_postgresql_equal_one_run(
    web: SampleWeb, tmp_path: Path, pg_url: str, second_pg_url: str
) -> None:
    registry = _registry(tmp_path, web)
    _finish(_start(registry, second_pg_url, tmp_path))
    first, second = _start(registry, pg_url, tmp_path), _start(registry, pg_url, tmp_path)
    outs = [_finish(first), _finish(second)]
    # One of the two did the work; the other waited for the run lock and found it done.
    assert sum("articles: 0 new" not in out for out in outs) == 1, outs
    counts = _compare(pg_url, second_pg_url)
    print(f"\nconcurrent runs on PostgreSQL: lost {counts['lost']}, duplicated {counts['duplicated']}")


# ------------------------------------------------------- a crash inside dedup, made exact


class _Crash(BaseException):
    """Stands for SIGKILL: nothing in the pipeline catches it, no cleanup code of ours runs."""


def test_crash_between_story_writes_then_rerun_equals_one_clean_run(
    web: SampleWeb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash inside dedup, made exact: the run dies after dedup committed the articles' story
    assignments and the first story, before the other stories (and their figures) are written.

    Before ``dedup()`` wrote the new signatures last, the rerun found every ``dedup_sig``
    current, did nothing, and the store stayed without 8 of its 9 stories."""
    from pipeline.cli import main
    from pipeline.store.stories import Stories

    registry = _registry(tmp_path, web)
    args = ["run", "--sources", str(registry), "--allow-private-network", "--only", *FEED_OUTLETS]
    reference = f"sqlite:///{tmp_path / 'clean' / 'newsagg.db'}"
    assert main([*args, "--store", reference]) == 0

    crashed = f"sqlite:///{tmp_path / 'crashed' / 'newsagg.db'}"
    real_save = Stories.save_story
    saved = [0]

    def save_then_die(self: Stories, *a: Any, **k: Any) -> str:
        if saved[0] == 1:
            raise _Crash
        saved[0] += 1
        return real_save(self, *a, **k)

    with monkeypatch.context() as patch:
        patch.setattr(Stories, "save_story", save_then_die)
        # stories are written in transactions of many; one per transaction makes the first
        # story commit before the crash, the case this test is about
        patch.setattr("pipeline.dedup.STORIES_PER_TRANSACTION", 1)
        with pytest.raises(_Crash):
            main([*args, "--store", crashed])
    assert main([*args, "--store", crashed]) == 0
    _compare(crashed, reference)


# ------------------------------------------------- children die with the main process


_PARENT = """
import sys, time
from pipeline.config import load_settings
from pipeline.crawl import run_crawl
from pipeline.models import Source
from pipeline.sampleweb.sites import Page, Site

def slow(_count):
    time.sleep(120)
    return Page(200, b"", "application/xml")

site = Site().start()
site.add("/robots.txt", "User-agent: *\\n", "text/plain")
site.add("/sitemap.xml", slow)
settings = load_settings({"store_url": sys.argv[1], "allow_private_network": True})
print("serving", flush=True)
run_crawl(settings, [Source(name="slow", kind="sitemap", url=site.url("/sitemap.xml"), delay=0)], None)
"""


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc to find the children")
def test_killing_only_the_main_process_ends_the_crawl_child_and_removes_its_temp_dir(
    tmp_path: Path, sqlite_url: str
) -> None:
    """What the OOM killer does: SIGKILL to the run's main process alone, not its group."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent), "TMPDIR": str(tmp_path)}
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, sqlite_url], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "serving"
        deadline = time.monotonic() + RUN_TIMEOUT
        children: list[int] = []
        while not children and time.monotonic() < deadline:
            time.sleep(0.2)
            children = _children(parent.pid)
        assert children, "the crawl child never started"
        job_dirs = list(tmp_path.glob("newsagg-crawl-*"))
        assert job_dirs
        time.sleep(3)  # the child is past its start-up and waiting on the slow sitemap
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 15
        while any(map(_alive, children)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(map(_alive, children)), "the crawl child outlived its parent"
        assert not any(d.exists() for d in job_dirs), "the crawl's temp dir was left behind"
    finally:
        with contextlib.suppress(ProcessLookupError):
            parent.kill()
        for pid in _children(parent.pid) if _alive(parent.pid) else []:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_a_pool_worker_dies_with_its_parent(tmp_path: Path) -> None:
    """pipeline.proc.worker_initializer, in a pool whose owning process is killed alone."""
    script = tmp_path / "owner.py"
    script.write_text(
        "import os, time\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "from multiprocessing import get_context\n"
        "from pipeline.proc import worker_initializer\n"
        "if __name__ == '__main__':\n"
        "    context = get_context('forkserver')\n"
        "    with ProcessPoolExecutor(1, mp_context=context, initializer=worker_initializer) as pool:\n"
        "        print(pool.submit(os.getpid).result(), flush=True)\n"
        "        time.sleep(120)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    parent = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        worker = int(parent.stdout.readline())
        assert _alive(worker)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 15
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(worker), "the pool worker outlived the process that owned the pool"
    finally:
        with contextlib.suppress(ProcessLookupError):
            parent.kill()
