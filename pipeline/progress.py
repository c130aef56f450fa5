"""Progress per stage: bars on a terminal, plain log lines otherwise (cron, Airflow, CI)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

log = logging.getLogger("newsagg")


class Stage(Protocol):
    def advance(self, n: int = 1) -> None: ...
    def total(self, n: int) -> None: ...


class _LogStage:
    def __init__(self, name: str) -> None:
        self.name, self.done, self._total, self._last = name, 0, 0, -1

    def total(self, n: int) -> None:
        self._total = n

    def advance(self, n: int = 1) -> None:
        if n <= 0:
            return
        self.done += n
        step = max(1, self._total // 10) if self._total else 100
        if self.done // step != self._last:
            self._last = self.done // step
            log.info("%s: %d/%s", self.name, self.done, self._total or "?")


class Progress:
    """``with progress.stage("fetch", total) as s: s.advance()``; rich only on a TTY."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled

    @contextmanager
    def stage(self, name: str, total: int | None = None) -> Iterator[Stage]:
        if not self.enabled:
            stage = _LogStage(name)
            stage.total(total or 0)
            log.info("%s: started", name)
            yield stage
            log.info("%s: done (%d)", name, stage.done)
            return
        from rich.progress import BarColumn, MofNCompleteColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        with RichProgress(
            "[bold]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            transient=False,
        ) as bar:
            task = bar.add_task(name, total=total)
            done = [0]

            class _RichStage:
                def advance(self, n: int = 1) -> None:
                    if n > 0:
                        done[0] += n
                        bar.advance(task, n)

                def total(self, n: int) -> None:
                    bar.update(task, total=n)

            yield _RichStage()
            # A stage whose size was never known ends as what it did, not as a full bar of "0/?".
            if bar.tasks[0].total is None or (done[0] == 0 and not bar.tasks[0].total):
                if done[0]:
                    bar.update(task, total=done[0], completed=done[0])
                else:
                    bar.update(task, description=f"{name}: nothing to do", total=1, completed=0)
                    bar.columns = ("[bold]{task.description}",)
