"""What every stage needs: settings, the store and the HTTP client, opened once per run or task."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.config import Settings
from pipeline.store.core import Store

if TYPE_CHECKING:
    from pipeline.net.client import HttpClient


@dataclass
class Context:
    settings: Settings
    store: Store
    _http: HttpClient | None = None

    @property
    def http(self) -> HttpClient:
        """Created on first use so store-only stages (clean, dedup) never open sockets."""
        if self._http is None:
            from pipeline.net.client import HttpClient

            self._http = HttpClient(self.settings)
        return self._http

    def close_http(self) -> None:
        """Close the HTTP client (a later use opens a new one).

        Called before the store-only stages: its watchdog thread gone, the process has no
        other thread and the clean stage can fork its extraction workers, which then inherit
        the loaded extractor instead of importing it again each.
        """
        if self._http is not None:
            self._http.close()
            self._http = None

    def close(self) -> None:
        self.close_http()
        self.store.close()


@contextlib.contextmanager
def open_context(settings: Settings, migrate: bool = True) -> Iterator[Context]:
    store = Store(settings.resolved_store_url)
    ctx = Context(settings, store)
    try:
        if migrate:
            store.migrate()
        yield ctx
    finally:
        ctx.close()
