"""The crawl of sitemap and section-page sources, minus Scrapy.

Twisted's reactor cannot be restarted, so :func:`run_crawl` runs the spiders (``spiders/``) in a
child process and reads back each source's outcome and Scrapy's stats as JSON. The rules the
spiders follow live here, testable without a crawl: the sitemap parser (strict, no entities, no
network, bounded gunzip) and the choice of which discovered URLs are worth a request.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import lxml.etree

from pipeline.config import ENV_PREFIX, Settings
from pipeline.errors import NewsaggError
from pipeline.extract import parse_date
from pipeline.models import Source
from pipeline.parse.urls import canonicalize
from pipeline.store.core import Discovered
from pipeline.timeutil import utc

log = logging.getLogger(__name__)

RUNNER = "spiders.run"  # the child's module (python -m)
STDERR_TAIL_LINES = 30
_CHILD_PROBLEM = re.compile(r"\] (WARNING|ERROR|CRITICAL): ")
_CHILD_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[([^\]]+)\] [A-Z]+: ")  # Scrapy's log format


# -- launcher ------------------------------------------------------------------------------------


@dataclass
class CrawlResult:
    ok: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # source name -> why
    discovered: int = 0  # URLs new to the frontier or re-queued because their lastmod moved
    stats: dict[str, Any] = field(default_factory=dict)  # Scrapy's stats, summed over sources


def settings_env(settings: Settings) -> dict[str, str]:
    """The resolved settings as the ``NEWSAGG_*`` variables ``load_settings`` reads, so the child
    sees exactly what the parent was given (CLI flags included), not just the parent's env."""
    env: dict[str, str] = {}
    for f in dataclasses.fields(settings):
        value = settings.resolved_store_url if f.name == "store_url" else getattr(settings, f.name)
        env[ENV_PREFIX + f.name.upper()] = ("1" if value else "0") if isinstance(value, bool) else str(value)
    return env


def run_crawl(
    settings: Settings,
    sources: Sequence[Source],
    since: datetime | None,
    *,
    scrapy_settings: Mapping[str, Any] | None = None,
    run_lock_token: int | None = None,
) -> CrawlResult:
    """Crawl ``sources`` (kinds sitemap and html) in a child process.

    A source's own faults land in ``failed``; only the child dying raises
    :class:`NewsaggError`, with the end of its log. ``scrapy_settings`` overrides pinned Scrapy
    settings for benchmarks and tests; production runs leave it empty. ``run_lock_token``: the
    run lock the caller holds (``Store.run_lock_token``); the child's writes check it, so a run
    that lost its lock stops crawling into the store too.
    """
    sources = list(sources)
    if not sources:
        return CrawlResult()
    with tempfile.TemporaryDirectory(prefix="newsagg-crawl-", ignore_cleanup_errors=True) as tmp:
        job, out = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job.write_text(
            json.dumps(
                {
                    "sources": [dataclasses.asdict(s) for s in sources],
                    "since": since.isoformat() if since else None,
                    "scrapy_settings": dict(scrapy_settings or {}),
                    # the child dies with this process and then removes tmp (pipeline.proc)
                    "parent_pid": os.getpid(),
                    "cleanup": [tmp],
                    "run_lock_token": run_lock_token,
                }
            ),
            encoding="utf-8",
        )
        command = [sys.executable, "-m", RUNNER, str(job), str(out)]
        returncode, tail = _run_child(command, {**os.environ, **settings_env(settings)})
        if returncode != 0 or not out.is_file():
            raise NewsaggError(f"crawl process failed (exit status {returncode}):\n" + "\n".join(tail))
        data = json.loads(out.read_text(encoding="utf-8"))
    result = CrawlResult(stats=data.get("stats", {}))
    outcomes: dict[str, dict[str, Any]] = data.get("sources", {})
    for source in sources:
        outcome = outcomes.get(source.name)
        if outcome is None:
            result.failed[source.name] = "the crawl process reported nothing for this source"
            continue
        result.discovered += int(outcome.get("discovered", 0))
        if outcome.get("error"):
            result.failed[source.name] = str(outcome["error"])
        else:
            result.ok.append(source.name)
    return result


def _run_child(command: list[str], env: dict[str, str]) -> tuple[int, list[str]]:
    """Run the crawl, passing its warnings on to our log; keep the tail for a crash report."""
    tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
    with subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as proc:
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.rstrip("\n")
                tail.append(line)
                level = logging.WARNING if _CHILD_PROBLEM.search(line) else logging.DEBUG
                log.log(level, "crawl [%s] %s", *_child_parts(line))
            return proc.wait(), list(tail)
        except BaseException:  # interrupted: do not leave a crawler running on its own
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise


def _child_parts(line: str) -> tuple[str, str]:
    """A child log line as (logger, message): its own time and level would nest in ours."""
    m = _CHILD_LINE.match(line)
    return (m.group(1), line[m.end() :]) if m else ("scrapy", line)


# -- sitemaps ------------------------------------------------------------------------------------


class SitemapError(NewsaggError):
    """A sitemap that cannot be used: malformed, not a sitemap, too big, or hostile."""


@dataclass(frozen=True, slots=True)
class SitemapEntry:
    loc: str  # absolute http(s) URL, as the sitemap spells it
    lastmod: datetime | None = None
    title: str | None = None  # Google News <news:title>
    published_at: datetime | None = None  # Google News <news:publication_date>


@dataclass(frozen=True, slots=True)
class Sitemap:
    kind: str  # "urlset" or "sitemapindex"
    entries: tuple[SitemapEntry, ...]


GZIP_MAGIC = b"\x1f\x8b"
SITEMAP_KINDS = ("urlset", "sitemapindex")
# No entity substitution, no DTD loading, no network, libxml2's size limits on, no recovery:
# a hostile or broken document fails fast and says why instead of half-parsing.
_SAFE_PARSE = {
    "resolve_entities": False,
    "load_dtd": False,
    "no_network": True,
    "huge_tree": False,
    "recover": False,
    "remove_comments": True,
    "remove_pis": True,
}
_ENTITY_REFUSAL = (
    "declares XML entities; refused (sitemaps need none, and entities are how "
    "expansion bombs and external-entity reads work)"
)


def gunzip_bounded(body: bytes, max_bytes: int) -> bytes:
    """Inflate at most ``max_bytes``: a gzip bomb stops at the cap, never in memory."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = bytearray()
    data = body
    try:
        while data and not inflater.eof:
            out += inflater.decompress(data, max_bytes + 1 - len(out))
            if len(out) > max_bytes:
                raise SitemapError(f"gzipped sitemap inflates beyond {max_bytes} bytes")
            data = inflater.unconsumed_tail
    except zlib.error as exc:
        raise SitemapError(f"corrupt gzip data: {exc}") from None
    if not inflater.eof:
        raise SitemapError("gzipped sitemap is truncated")
    return bytes(out)


def _local(element: Any) -> str:
    tag = element.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _text(element: Any) -> str | None:
    text = " ".join("".join(element.itertext()).split())
    return text or None


def _entry(element: Any, base_url: str) -> SitemapEntry | None:
    loc = lastmod = title = published = None
    for child in element:
        name = _local(child)
        if name == "loc":
            loc = _text(child)
        elif name == "lastmod":
            lastmod = parse_date(_text(child))
        elif name == "news":  # <news:news> nests publication, publication_date, title
            for part in child.iter():
                part_name = _local(part)
                if part_name == "publication_date":
                    published = parse_date(_text(part))
                elif part_name == "title":
                    title = _text(part)
    if not loc:
        return None
    absolute = urljoin(base_url, loc)
    if urlsplit(absolute).scheme not in ("http", "https"):
        return None
    return SitemapEntry(absolute, lastmod, title, published)


def parse_sitemap(body: bytes, *, base_url: str = "", max_bytes: int = 50 * 1024 * 1024) -> Sitemap:
    """Parse a sitemap or sitemap index, gzipped or not, Google News fields included.

    Raises :class:`SitemapError` saying why for anything else. Memory stays near the document
    size: each entry is dropped from the tree once read.
    """
    if body[:2] == GZIP_MAGIC:
        body = gunzip_bounded(body, max_bytes)
    if len(body) > max_bytes:
        raise SitemapError(f"sitemap is larger than {max_bytes} bytes")
    if not body.strip():
        raise SitemapError("empty document")
    root: Any = None
    entries: list[SitemapEntry] = []
    try:
        for event, element in lxml.etree.iterparse(BytesIO(body), events=("start", "end"), **_SAFE_PARSE):
            if root is None:
                root = element
                dtd = element.getroottree().docinfo.internalDTD
                if dtd is not None and any(True for _ in dtd.iterentities()):
                    raise SitemapError(_ENTITY_REFUSAL)
                if _local(root) not in SITEMAP_KINDS:
                    raise SitemapError(f"not a sitemap: the root element is <{_local(root)}>")
            if event != "end" or element.getparent() is not root:
                continue
            if _local(element) in ("url", "sitemap"):
                entry = _entry(element, base_url)
                if entry is not None:
                    entries.append(entry)
            element.clear()
            while element.getprevious() is not None:
                del root[0]
    except lxml.etree.XMLSyntaxError as exc:
        message = str(exc)
        if "entit" in message.lower():
            raise SitemapError(f"{_ENTITY_REFUSAL}: {message}") from None
        raise SitemapError(f"malformed XML: {message}") from None
    if root is None:
        raise SitemapError("no XML element found")
    return Sitemap(_local(root), tuple(entries))


# -- what to fetch -------------------------------------------------------------------------------


def article_url(href: str | None, base_url: str) -> str | None:
    """The canonical absolute URL of a link, or None when it is not an http(s) page."""
    if not href or not href.strip():
        return None
    absolute = urljoin(base_url, href.strip())
    if urlsplit(absolute).scheme not in ("http", "https"):
        return None
    return canonicalize(absolute)


def is_recent(when: datetime | None, since: datetime | None) -> bool:
    """Undated things are kept: a missing date is no evidence of age."""
    when_utc, since_utc = utc(when), utc(since)
    return when_utc is None or since_utc is None or when_utc >= since_utc


def sitemap_discoveries(
    entries: Iterable[SitemapEntry], source: str, since: datetime | None
) -> list[Discovered]:
    """Frontier records for a urlset's entries published (or, undated, modified) since
    ``since``, keeping the Google News title and date as hints."""
    found: list[Discovered] = []
    for entry in entries:
        url = article_url(entry.loc, entry.loc)
        if url is None or not is_recent(entry.published_at or entry.lastmod, since):
            continue
        found.append(
            Discovered(
                url=url,
                source=source,
                title=entry.title,
                published_at=entry.published_at,
                lastmod=entry.lastmod or entry.published_at,
            )
        )
    return found


def worth_fetching(found: Iterable[Discovered], known: Mapping[str, datetime | None]) -> list[Discovered]:
    """URLs the store does not hold yet, or whose lastmod moved past the stored one."""
    wanted: dict[str, Discovered] = {}
    for item in found:
        if item.url not in known:
            wanted[item.url] = item
            continue
        old, new = utc(known[item.url]), utc(item.lastmod)
        if new is not None and (old is None or new > old):
            wanted[item.url] = item
    return list(wanted.values())
