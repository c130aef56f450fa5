"""``newsagg export``: stories (or articles) changed after a cursor, as JSON lines or Parquet.

An export covers ``since_seq < change_seq <= upto``, where ``upto`` is the newest committed
change when the export starts; it reports ``upto`` as the cursor to continue from. A row changed
while the export runs gets a number above ``upto`` and lands in the next export, so repeated
exports from the reported cursor miss nothing. Each row carries its current state (a row changed
twice between exports appears once); deletions are only in the change feed
(``newsagg_v1_changes``). Output is written to a temporary file and renamed, so an interrupted
export leaves neither a partial file nor a moved cursor.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

from pipeline.dedup import story_to_json, with_evidence
from pipeline.errors import ConfigError
from pipeline.progress import Progress
from pipeline.store.core import Store
from pipeline.store.limits import json_text
from pipeline.timeutil import iso as _iso
from pipeline.timeutil import utc

Format = Literal["jsonl", "parquet"]
Kind = Literal["stories", "articles"]
BATCH = 500

ARTICLE_COLUMNS = (
    "article_id",
    "url",
    "source",
    "title",
    "authors",
    "published_at",
    "language",
    "text",
    "content_hash",
    "fetched_at",
    "updated_at",
    "story_id",
    "copy_of",
    "change_seq",
    "live_blog",  # last, as in the view (migration 0008)
)


@dataclass(frozen=True, slots=True)
class ExportResult:
    rows: int
    since_seq: int
    last_seq: int  # continue with --since-seq last_seq
    output: str


def read_cursor(path: Path) -> int:
    try:
        return int(json.loads(path.read_text(encoding="utf-8"))["last_seq"])
    except FileNotFoundError:
        return 0
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cursor file {path}: unreadable ({exc})") from None


def write_cursor(path: Path, result: ExportResult) -> None:
    _atomic_write_text(
        path,
        json.dumps(
            {
                "last_seq": result.last_seq,
                "rows": result.rows,
                "output": result.output,
                "at": _iso(datetime.now(UTC)),
            }
        )
        + "\n",
    )


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _story_batches(store: Store, since: int, upto: int) -> Iterator[list[dict[str, Any]]]:
    cursor = since
    while rows := store.changed_stories(cursor, upto, BATCH):
        seqs = dict(rows)
        found = {s.story_id: s for s in with_evidence(store, store.stories(story_ids=list(seqs)))}
        batch = []
        for story_id, seq in seqs.items():
            if story_id in found:  # deleted since the id query: the change feed says so
                batch.append({**story_to_json(found[story_id]), "change_seq": seq})
        cursor = rows[-1][1]
        yield batch


def _article_batches(store: Store, since: int, upto: int) -> Iterator[list[dict[str, Any]]]:
    cursor = since
    while rows := store.changed_articles(cursor, upto, BATCH):
        # asked apart: the view of a store not migrated yet has no live_blog to read with the rest
        live = store.live_blog_ids([row["article_id"] for row in rows])
        batch = []
        for row in rows:
            item = {c: row[c] for c in ARTICLE_COLUMNS if c != "live_blog"}
            item["live_blog"] = row["article_id"] in live
            item["authors"] = json.loads(item["authors"] or "[]")
            for key in ("published_at", "fetched_at", "updated_at"):
                item[key] = _iso(utc(item[key]))
            batch.append(item)
        cursor = rows[-1]["change_seq"]
        yield batch


def _parquet_schema(kind: Kind) -> Any:
    import pyarrow as pa

    ts = pa.timestamp("us", tz="UTC")
    if kind == "articles":
        return pa.schema(
            [
                ("article_id", pa.string()),
                ("url", pa.string()),
                ("source", pa.string()),
                ("title", pa.string()),
                ("authors", pa.list_(pa.string())),
                ("published_at", ts),
                ("language", pa.string()),
                ("text", pa.string()),
                ("content_hash", pa.string()),
                ("fetched_at", ts),
                ("updated_at", ts),
                ("story_id", pa.string()),
                ("copy_of", pa.string()),
                ("change_seq", pa.int64()),
                ("live_blog", pa.bool_()),
            ]
        )
    article = pa.struct(
        [
            ("article_id", pa.string()),
            ("url", pa.string()),
            ("source", pa.string()),
            ("title", pa.string()),
            ("published_at", ts),
            ("copy_of", pa.string()),
            ("live_blog", pa.bool_()),
        ]
    )
    figure = pa.struct(
        [
            ("kind", pa.string()),
            ("value", pa.string()),
            ("number", pa.int64()),
            ("source", pa.string()),
            ("url", pa.string()),
            ("reported_at", ts),
            ("source_claim", pa.string()),
        ]
    )
    return pa.schema(
        [
            ("story_id", pa.string()),
            ("title", pa.string()),
            ("summary", pa.string()),
            ("first_seen", ts),
            ("last_updated", ts),
            ("articles", pa.list_(article)),
            ("figures", pa.list_(figure)),
            ("change_seq", pa.int64()),
            ("evidence", pa.string()),  # JSON, as in newsagg_v1_stories
            ("live_blog", pa.bool_()),  # any of its articles is a live blog
        ]
    )


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _int64(value: Any) -> int | None:
    """A figure's count as Parquet's int64, or None when it is not a count or does not fit (the
    exact value stays in ``value``)."""
    if isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63:
        return value
    return None


def _parquet_row(kind: Kind, item: dict[str, Any]) -> dict[str, Any]:
    """Parquet wants one type per column: timestamps as timestamps, a figure's value as text
    with its count (if it is one) beside it."""
    if kind == "articles":
        return {**item, **{k: _ts(item[k]) for k in ("published_at", "fetched_at", "updated_at")}}
    return {
        **item,
        "first_seen": _ts(item["first_seen"]),
        "last_updated": _ts(item["last_updated"]),
        "articles": [{**a, "published_at": _ts(a["published_at"])} for a in item["articles"]],
        "figures": [
            {
                **f,
                "value": str(f["value"]),
                "number": _int64(f["value"]),
                "reported_at": _ts(f["reported_at"]),
            }
            for f in item["figures"]
        ],
        "evidence": None if item.get("evidence") is None else json_text(item["evidence"]),
    }


def export(
    store: Store,
    fmt: Format,
    output: Path | None,
    since_seq: int = 0,
    kind: Kind = "stories",
    progress: Progress | None = None,
    stdout: IO[str] | None = None,
) -> ExportResult:
    """Write the rows changed after ``since_seq``; ``output`` None means stdout (JSON lines)."""
    if fmt not in ("jsonl", "parquet"):
        raise ConfigError(f"--format: jsonl or parquet, not {fmt!r}")
    if fmt == "parquet" and output is None:
        raise ConfigError("--format parquet needs --output FILE")
    if since_seq < 0:
        raise ConfigError("--since-seq must be 0 or more")
    progress = progress or Progress()
    upto = max(store.last_change_seq(), since_seq)
    total = store.count_changed(kind, since_seq, upto)
    batches = (_story_batches if kind == "stories" else _article_batches)(store, since_seq, upto)
    rows = 0
    with progress.stage(f"export {kind}", total) as stage:
        if output is None:
            out = stdout or sys.stdout
            for batch in batches:
                for item in batch:
                    out.write(json.dumps(item, ensure_ascii=False) + "\n")
                rows += len(batch)
                stage.advance(len(batch))
            out.flush()
        else:
            output.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.")
            os.close(fd)
            tmp = Path(tmp_name)
            try:
                if fmt == "jsonl":
                    with tmp.open("w", encoding="utf-8") as handle:
                        for batch in batches:
                            for item in batch:
                                handle.write(json.dumps(item, ensure_ascii=False) + "\n")
                            rows += len(batch)
                            stage.advance(len(batch))
                else:
                    import pyarrow as pa
                    import pyarrow.parquet as pq

                    schema = _parquet_schema(kind)
                    with pq.ParquetWriter(tmp, schema) as writer:
                        for batch in batches:
                            writer.write_table(
                                pa.Table.from_pylist(
                                    [_parquet_row(kind, item) for item in batch], schema=schema
                                )
                            )
                            rows += len(batch)
                            stage.advance(len(batch))
                os.chmod(tmp, 0o666 & ~_umask())  # mkstemp made it 0600
                os.replace(tmp, output)
            except BaseException:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise
    return ExportResult(rows=rows, since_seq=since_seq, last_seq=upto, output=str(output) if output else "-")
