"""The source-health repository: per-run figures of each source (table ``source_runs``).

SQLAlchemy Core on the Store's engine. The figures are read back from the tables the stages
already write (urls, pages, articles, drops) between a run's start and end, so every fetcher,
the feed path and the Scrapy crawl alike, is counted the same way.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select

from pipeline.store.core import unpack
from pipeline.store.schema import articles, drops, pages, source_runs, urls
from pipeline.timeutil import utc

INT_MAX = 2**31 - 1  # INTEGER on PostgreSQL; SQLite would take more, so both are cut here
JSON_MAX = 4000  # drop_reasons and flags columns
STATUSES_MAX = 1000
REASON_MAX = 200
PAGE_SAMPLE = 40  # pages per source and run looked at for wall markers
PAGE_HEAD = 64 * 1024  # bytes of each sampled page that are searched


@dataclass(frozen=True, slots=True)
class SourceRun:
    """One source in one run, as stored."""

    run_id: str
    source: str
    started_at: datetime
    finished_at: datetime
    discovered: int = 0
    fetched: int = 0
    cleaned: int = 0
    dropped: int = 0
    no_body: int = 0
    drop_reasons: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    median_body: int | None = None
    last_article_at: datetime | None = None
    challenge_pages: int = 0
    state: str = "ok"
    flags: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PageSample:
    url: str
    body_sha256: str
    head: bytes  # the first PAGE_HEAD bytes of the unpacked body
    size: int  # the unpacked size


def _int(n: int | None) -> int:
    return max(0, min(int(n or 0), INT_MAX))


def bounded_json(value: dict[str, int] | list[dict[str, str]], limit: int) -> str:
    """JSON of ``value`` within ``limit`` characters: long strings cut, then the smallest
    entries left out until it fits (a marker says how many)."""
    if isinstance(value, dict):
        items = sorted(((k[:REASON_MAX], _int(v)) for k, v in value.items()), key=lambda kv: -kv[1])
        while items:
            text = json.dumps(dict(items), ensure_ascii=False)
            if len(text) <= limit:
                return text
            items = items[: max(0, len(items) - max(1, len(items) // 4))]
        return "{}"
    flags = [{k: str(v)[:REASON_MAX] for k, v in f.items()} for f in value]
    while flags:
        text = json.dumps(flags, ensure_ascii=False)
        if len(text) <= limit:
            return text
        flags = flags[:-1]
    return "[]"


class HealthRepo:
    """Reads the run's figures and keeps each source's history."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- this run's figures --------------------------------------------------------------------

    def drops_since(
        self, since: datetime, names: Sequence[str] | None = None, stages: Sequence[str] | None = None
    ) -> list[tuple[str, str, str]]:
        """(source, url, reason) of the drops recorded at or after ``since``."""
        query = select(drops.c.source, drops.c.url, drops.c.reason).where(drops.c.at >= since)
        if names is not None:
            query = query.where(drops.c.source.in_(list(names)))
        if stages is not None:
            query = query.where(drops.c.stage.in_(list(stages)))
        with self.engine.connect() as conn:
            return [(r.source, r.url, r.reason) for r in conn.execute(query.order_by(drops.c.url))]

    def counts_since(self, since: datetime) -> dict[str, dict[str, int]]:
        """{source: {"discovered", "fetched", "cleaned"}} for rows written since ``since``."""
        out: dict[str, dict[str, int]] = {}
        queries = (
            ("discovered", urls.c.source, urls.c.discovered_at),
            ("fetched", pages.c.source, pages.c.fetched_at),
            ("cleaned", articles.c.source, articles.c.updated_at),
        )
        with self.engine.connect() as conn:
            for name, source_col, at_col in queries:
                rows = conn.execute(
                    select(source_col, func.count()).where(at_col >= since).group_by(source_col)
                )
                for source, count in rows:
                    out.setdefault(source, {})[name] = int(count)
        return out

    def articles_since(self, since: datetime) -> dict[str, list[tuple[str, int]]]:
        """{source: [(url, text length)]} of the articles new or changed since ``since``."""
        out: dict[str, list[tuple[str, int]]] = {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(articles.c.source, articles.c.url, func.length(articles.c.text)).where(
                    articles.c.updated_at >= since
                )
            )
            for source, url, length in rows:
                out.setdefault(source, []).append((url, int(length or 0)))
        return out

    def last_article_at(self, names: Sequence[str]) -> dict[str, datetime | None]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(articles.c.source, func.max(articles.c.fetched_at))
                .where(articles.c.source.in_(list(names)))
                .group_by(articles.c.source)
            )
            return {source: utc(at) for source, at in rows}

    def pages_since(self, since: datetime, per_source: int = PAGE_SAMPLE) -> dict[str, list[PageSample]]:
        """Up to ``per_source`` pages of each source stored since ``since``, heads unpacked: the
        sample is chosen from the cheap columns first, so only its bodies are read."""
        chosen: dict[str, list[tuple[str, str]]] = {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(pages.c.source, pages.c.url, pages.c.body_sha256)
                .where(pages.c.fetched_at >= since)
                .order_by(pages.c.source, pages.c.url)
            )
            for source, url, sha in rows:
                picked = chosen.setdefault(source, [])
                if len(picked) < per_source:
                    picked.append((url, sha))
            wanted = [url for picked in chosen.values() for url, _ in picked]
            bodies: dict[str, bytes] = {}
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                for url, blob in conn.execute(
                    select(pages.c.url, pages.c.body_gz).where(pages.c.url.in_(chunk))
                ):
                    bodies[url] = blob
        out: dict[str, list[PageSample]] = {}
        for source, picked in chosen.items():
            samples = out.setdefault(source, [])
            for url, sha in picked:
                try:
                    body = unpack(bodies[url])
                except Exception:  # a damaged or vanished blob is not this module's finding
                    continue
                samples.append(PageSample(url, sha, body[:PAGE_HEAD], len(body)))
        return out

    # -- history -------------------------------------------------------------------------------

    def save(self, runs: Iterable[SourceRun]) -> None:
        rows = [
            {
                "run_id": r.run_id[:32],
                "source": r.source[:64],
                "started_at": r.started_at,
                "finished_at": r.finished_at,
                "discovered": _int(r.discovered),
                "fetched": _int(r.fetched),
                "cleaned": _int(r.cleaned),
                "dropped": _int(r.dropped),
                "no_body": _int(r.no_body),
                "drop_reasons": bounded_json(r.drop_reasons, JSON_MAX),
                "statuses": bounded_json(r.statuses, STATUSES_MAX),
                "median_body": None if r.median_body is None else _int(r.median_body),
                "last_article_at": r.last_article_at,
                "challenge_pages": _int(r.challenge_pages),
                "state": r.state[:16],
                "flags": bounded_json(r.flags, JSON_MAX),
            }
            for r in runs
        ]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(source_runs.insert(), rows)

    def history(self, source: str, limit: int = 50) -> list[SourceRun]:
        """The source's last ``limit`` runs, oldest first."""
        query = (
            select(source_runs)
            .where(source_runs.c.source == source)
            .order_by(source_runs.c.started_at.desc(), source_runs.c.run_id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [_run(dict(r)) for r in reversed(rows)]

    def sources(self) -> list[str]:
        with self.engine.connect() as conn:
            return [
                r[0]
                for r in conn.execute(select(source_runs.c.source).distinct().order_by(source_runs.c.source))
            ]

    def last_good(self, source: str) -> SourceRun | None:
        query = (
            select(source_runs)
            .where(source_runs.c.source == source, source_runs.c.state == "ok")
            .order_by(source_runs.c.started_at.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return _run(dict(row)) if row is not None else None


def _run(row: dict[str, Any]) -> SourceRun:
    return SourceRun(
        run_id=row["run_id"],
        source=row["source"],
        started_at=utc(row["started_at"]) or row["started_at"],
        finished_at=utc(row["finished_at"]) or row["finished_at"],
        discovered=row["discovered"],
        fetched=row["fetched"],
        cleaned=row["cleaned"],
        dropped=row["dropped"],
        no_body=row["no_body"],
        drop_reasons=json.loads(row["drop_reasons"] or "{}"),
        statuses=json.loads(row["statuses"] or "{}"),
        median_body=row["median_body"],
        last_article_at=utc(row["last_article_at"]),
        challenge_pages=row["challenge_pages"],
        state=row["state"],
        flags=json.loads(row["flags"] or "[]"),
    )


def median(values: Sequence[int]) -> int | None:
    return int(statistics.median(values)) if values else None
