"""Child processes die with their parent.

When the OOM killer (or ``kill -9``) takes only a run's main process, its Scrapy child would go on
writing to the store outside the run lock, and its extraction workers would wait for work forever.
A child calls :func:`die_with_parent` first thing: on Linux the kernel signals it when its parent
ends (``prctl(PR_SET_PDEATHSIG)``); elsewhere a thread watches the parent id. The child removes
the paths it was given (the parent's temporary directory, which the killed parent cannot) and
exits at once, without running anything else.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import FrameType
from typing import Any

PR_SET_PDEATHSIG = 1
# Neither Scrapy nor Twisted handles SIGUSR1, so the handler below stays in place in the crawl.
DEATH_SIGNAL = signal.SIGUSR1
_POLL_S = 0.5


def _prctl_death_signal(sig: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _die(paths: list[Path], status: int) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
    os._exit(status)


def die_with_parent(parent_pid: int | None = None, cleanup: Iterable[str | Path] = ()) -> None:
    """Make this process exit (removing ``cleanup``) as soon as its parent is gone.

    ``parent_pid``: the parent that started this process, as it said itself; if it already died
    before this call (this process then has another parent), exit now. Call it from the main
    thread (it sets a signal handler). In a pool worker, the parent is the pool's own process
    (the forkserver), which exits when the main process does.
    """
    expected = os.getppid() if parent_pid is None else parent_pid
    paths = [Path(p) for p in cleanup]
    sig = DEATH_SIGNAL

    def on_death(signum: int, _frame: FrameType | None) -> None:
        _die(paths, 128 + signum)

    if threading.current_thread() is threading.main_thread():
        signal.signal(sig, on_death)
    else:
        sig = signal.SIGKILL  # no handler possible: no cleanup either
    if not _prctl_death_signal(sig):
        threading.Thread(
            target=_watch_parent, args=(expected, paths), daemon=True, name="parent-watch"
        ).start()
    if os.getppid() != expected:  # the parent died before the kernel was told to watch it
        _die(paths, 1)


def _watch_parent(expected: int, paths: list[Path]) -> None:
    while os.getppid() == expected:
        time.sleep(_POLL_S)
    _die(paths, 1)


def worker_initializer() -> None:
    """For ``ProcessPoolExecutor(initializer=...)``: a worker dies with the process that owns
    the pool. Under fork that is its OS parent; under forkserver or spawn its OS parent is the
    fork server, which outlives a killed owner, so a thread also waits on the owner's sentinel
    (a pipe that the kernel closes when the owner dies)."""
    import multiprocessing

    die_with_parent()
    owner = multiprocessing.parent_process()
    if owner is not None and owner.pid != os.getppid():
        threading.Thread(target=_wait_owner, args=(owner,), daemon=True, name="owner-watch").start()


def _wait_owner(owner: Any) -> None:
    owner.join()
    _die([], 1)


__all__ = ["DEATH_SIGNAL", "die_with_parent", "worker_initializer"]
