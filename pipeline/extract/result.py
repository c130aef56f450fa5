"""What extraction gives back, and the CPU clocks it keeps while doing it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Extracted:
    """One cleaned article."""

    title: str | None
    text: str  # body text, paragraphs separated by "\n"
    authors: tuple[str, ...]
    published_at: datetime | None  # timezone-aware, in the page's own UTC offset when it states one
    language: str | None  # ISO 639-1 like "en", "uk"
    live_blog: bool = False  # a live blog: ``text`` holds every entry the page gives


@dataclass(slots=True)
class ExtractStats:
    """CPU seconds spent extracting, summed over every process that did it.

    ``trafilatura_s`` is the time inside trafilatura's and htmldate's own calls; ``parse_s`` the
    HTML parse whose tree they work on; the rest of ``cpu_s`` is this module's own work (decoding,
    metadata, body clean-up). Lets a run tell how much of cleaning is the extractor itself.
    """

    pages: int = 0
    cpu_s: float = 0.0
    trafilatura_s: float = 0.0
    parse_s: float = 0.0
    # whole CPU time of the worker processes (start-up, unpickling, idle polling included);
    # 0 when extraction ran in the caller's process
    workers_s: float = 0.0

    def add(self, other: ExtractStats) -> None:
        self.pages += other.pages
        self.cpu_s += other.cpu_s
        self.trafilatura_s += other.trafilatura_s
        self.parse_s += other.parse_s
        self.workers_s += other.workers_s


# per-thread CPU clocks of the current thread's extractions (reset per chunk in workers)
CLOCK = threading.local()


def charge(key: str, since: float) -> None:
    setattr(CLOCK, key, getattr(CLOCK, key, 0.0) + time.thread_time() - since)
