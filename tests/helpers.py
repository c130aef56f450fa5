"""Small helpers shared by the end-to-end tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, select

from pipeline.store.core import normalise_url
from pipeline.store.schema import RUN_LOGS, metadata

__all__ = ["RUN_LOGS", "dump_store"]


def dump_store(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every newsagg table, ordered: two equal dumps mean no row changed."""
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            return {
                table.name: sorted(
                    (tuple(str(v) for v in row) for row in conn.execute(select(table))),
                )
                for table in metadata.sorted_tables
                if table.name not in RUN_LOGS
            }
    finally:
        engine.dispose()
