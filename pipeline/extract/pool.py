"""Many pages at once: a process pool that survives a dying worker."""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from pipeline.errors import ExtractionError
from pipeline.extract.page import extract
from pipeline.extract.result import CLOCK, Extracted, ExtractStats

__all__ = ["extract_many"]

LOGGER = logging.getLogger(__name__)

K = TypeVar("K")

_CHUNK = 4  # pages per task: amortises IPC while keeping the two cores evenly busy
_IN_FLIGHT_PER_WORKER = 4  # chunks queued per worker: bounds memory, hides result latency
_MIN_PARALLEL = 8  # fewer pages than this are cheaper in-process than starting workers

Task = tuple[bytes | str, str | None, str | None, Callable[[bytes], bytes] | None]
Result = Extracted | ExtractionError


def _extract_safely(task: Task) -> Result:
    html, url, charset, unpack = task
    try:
        if unpack is not None and isinstance(html, bytes):
            try:
                html = unpack(html)
            except Exception as exc:
                return ExtractionError(f"stored page is unreadable: {exc}")
        return extract(html, url, charset=charset)
    except ExtractionError as exc:
        return exc
    except Exception as exc:
        return ExtractionError(f"extraction failed: {type(exc).__name__}: {exc}")


def _extract_chunk(chunk: list[Task]) -> tuple[list[Result], ExtractStats]:
    """Extract a chunk and measure it: the stats travel back with the results."""
    CLOCK.trafilatura = CLOCK.parse = 0.0
    start = time.thread_time()
    results = [_extract_safely(task) for task in chunk]
    stats = ExtractStats(len(chunk), time.thread_time() - start, CLOCK.trafilatura, CLOCK.parse)
    return results, stats


_reported = 0.0  # a worker's process CPU time already reported with an earlier chunk


def _extract_chunk_in_worker(chunk: list[Task]) -> tuple[list[Result], ExtractStats]:
    """As _extract_chunk, plus this worker's CPU since its last report (its start, at first)."""
    global _reported
    results, stats = _extract_chunk(chunk)
    used = time.process_time()  # a new process's clock starts at zero, imports included
    stats.workers_s, _reported = used - _reported, used
    return results, stats


def _init_worker() -> None:
    """Import the heavy modules once per worker, not per task; die with the pool's owner."""
    import signal

    import trafilatura  # noqa: F401

    from pipeline.proc import worker_initializer

    worker_initializer()

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and shuts down


def workers_can_start() -> bool:
    """Whether this process can start extraction workers that survive their start.

    With one thread they are forked. Once threads exist they come from a forkserver (or are
    spawned), and each re-runs the parent's main module first. That is safe for a module run
    with ``-m``, a ``.py`` script and newsagg's own entry point, not for a host program's: an
    Airflow task's main is Airflow's CLI, which sets Airflow up on import and fails there, so
    every worker would die. Such a caller extracts in its own process (as a Celery task does);
    its parallelism comes from running several tasks at once."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return True
    main = sys.modules.get("__main__")
    if main is None or getattr(main, "__spec__", None) is not None:
        return True
    path = getattr(main, "__file__", None)
    if path is None or str(path).endswith(".py"):
        return True
    entry = getattr(main, "main", None)
    return str(getattr(entry, "__module__", "")).startswith("pipeline.")


def _mp_context() -> multiprocessing.context.BaseContext:
    """fork is cheapest (workers inherit the imports) but unsafe once threads exist."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _new_pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(workers, mp_context=_mp_context(), initializer=_init_worker)


def _tasks(
    items: Iterable[Sequence[Any]], unpack: Callable[[bytes], bytes] | None
) -> Iterator[tuple[Any, Task]]:
    for item in items:
        if len(item) == 3:
            key, html, url = item
            yield key, (html, url, None, unpack)
        else:
            key, html, url, charset = item
            yield key, (html, url, charset, unpack)


def extract_many(
    items: Iterable[tuple[K, bytes, str | None] | tuple[K, bytes, str | None, str | None]],
    workers: int = 0,
    stats: ExtractStats | None = None,
    unpack: Callable[[bytes], bytes] | None = None,
) -> Iterator[tuple[K, Extracted | ExtractionError]]:
    """Extract pages in parallel processes, yielding ``(key, result)`` in input order.

    Items are ``(key, html, url)`` or ``(key, html, url, charset)``; keys stay in this process,
    so they need not be picklable. Failures come back as ExtractionError values, never raised,
    so one bad page never stops a batch. ``workers=0`` means one per CPU; ``workers=1``, fewer
    than 8 items or a daemonic caller run in this process, where starting workers costs more
    than it saves. Pages go out in chunks of 4 and at most ``workers * 4`` chunks are in flight,
    so a generator input is read lazily and memory stays bounded. ``stats``, when given, is
    added the CPU time of every page (in whichever process extracted it). ``unpack`` (a
    module-level function, so workers can receive it) turns each stored blob into the page, in
    the worker: the caller then never holds or ships inflated pages.
    """
    workers = workers or os.cpu_count() or 1
    if multiprocessing.current_process().daemon:
        workers = 1  # daemonic processes (pool workers, celery) may not have children
    elif workers > 1 and not workers_can_start():
        workers = 1
    iterator = _tasks(items, unpack)
    head: list[tuple[Any, Task]] = []
    for pair in iterator:
        head.append(pair)
        if len(head) >= _MIN_PARALLEL:
            break
    if workers <= 1 or len(head) < _MIN_PARALLEL:
        for key, task in itertools.chain(head, iterator):
            [result], measured = _extract_chunk([task])
            if stats is not None:
                stats.add(measured)
            yield key, result
        return
    yield from _parallel(head, iterator, workers, stats)


def _chunks(
    head: list[tuple[Any, Task]], rest: Iterator[tuple[Any, Task]]
) -> Iterator[list[tuple[Any, Task]]]:
    chunk: list[tuple[Any, Task]] = []
    for pair in itertools.chain(head, rest):
        chunk.append(pair)
        if len(chunk) == _CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _parallel(
    head: list[tuple[Any, Task]], rest: Iterator[tuple[Any, Task]], workers: int, stats: ExtractStats | None
) -> Iterator[tuple[Any, Result]]:
    chunks = _chunks(head, rest)
    limit = workers * _IN_FLIGHT_PER_WORKER
    pool = _new_pool(workers)
    pending: deque[tuple[list[tuple[Any, Task]], Future[tuple[list[Result], ExtractStats]]]] = deque()
    try:
        while True:
            while len(pending) < limit and (chunk := next(chunks, None)) is not None:
                pending.append((chunk, pool.submit(_extract_chunk_in_worker, [t for _, t in chunk])))
            if not pending:
                return
            chunk, future = pending.popleft()
            try:
                results, measured = future.result()
            except BrokenProcessPool:
                # a worker died (segfault, OOM kill) and took every queued chunk with it: redo
                # them one page per task in a fresh pool so only the culprit page fails
                pool.shutdown(wait=False, cancel_futures=True)
                redo = [pair for c in (chunk, *(c for c, _ in pending)) for pair in c]
                pending.clear()
                LOGGER.warning("an extraction worker died; redoing %d pages one by one", len(redo))
                pool = _new_pool(workers)
                for key, task in redo:
                    try:
                        [result], measured = pool.submit(_extract_chunk_in_worker, [task]).result()
                        if stats is not None:
                            stats.add(measured)
                    except BrokenProcessPool:
                        LOGGER.warning("extraction worker died on %s", task[1] or key)
                        result = ExtractionError("extraction failed: the worker process died on this page")
                        pool.shutdown(wait=False, cancel_futures=True)
                        pool = _new_pool(workers)
                    yield key, result
                continue
            if stats is not None:
                stats.add(measured)
            for (key, _), result in zip(chunk, results, strict=True):
                yield key, result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
