"""A local HTTP server for the bundled sample news web (standard library only).

Eight fictional outlets live under ``site/``: ``wire`` (RSS), ``ledger`` (Atom), ``herald`` (RSS with
``content:encoded``), ``courier`` (RSS, some articles in Ukrainian), ``vestnik`` (RSS, in Russian),
``tagesblatt`` (RSS, in German), ``monitor`` (no feed: a gzipped Google News sitemap inside a
sitemap index) and ``gazette`` (no feed: a paginated HTML section). ``site/manifest.json`` is the
ground truth the tests check against.

Serving rules:

* Text files (html, xml, rss, atom, txt, json) have ``{{BASE}}`` replaced with :attr:`base_url`.
* ``/x.xml.gz`` is produced from the template ``x.xml`` (substituted, then gzipped).
* ``/dir/`` serves ``dir/index.html``; an extensionless path serves ``path.html``.
* Editions: after :meth:`SampleWeb.set_edition` ``(n)``, a file ``name.vK.ext`` (highest K <= n)
  is served instead of ``name.ext`` at the same URL. Variant files are never served directly.
* Every 200 carries a strong ETag (hash of the served bytes) and a fixed Last-Modified (from the
  manifest for articles, otherwise a constant per edition); a matching If-None-Match, or an
  If-Modified-Since not older than Last-Modified, gets 304 with no body.
* ``/faults/garbage-feed.xml`` (200, not a feed), ``/faults/500`` (always 500),
  ``/faults/not-html`` (200, ``application/pdf``) and the feed ``/faults/feed.xml`` that links to
  one good article, the 500 and the PDF.
* ``/robots.txt`` disallows ``/private/`` (one page exists there, linked from the gazette section).
* Anything else is 404. Nothing is printed; :attr:`SampleWeb.requests` is the request log.

The server itself is :class:`pipeline.sampleweb.loopback.LoopbackServer`; this module only decides
what to answer.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

from pipeline.sampleweb.loopback import Exchange, LoopbackServer, RequestRecord

PACKAGE_DIR = Path(__file__).resolve().parent
SITE_DIR = PACKAGE_DIR / "site"
SOURCES_TEMPLATE = PACKAGE_DIR / "sources.yaml"
PLACEHOLDER = "{{BASE}}"

# Fault routes and the feed that leads to them (not part of sources_yaml()).
FAULTS_FEED_PATH = "/faults/feed.xml"
FAULT_GOOD_ARTICLE_PATH = "/faults/articles/lviv-library-reopens.html"
FAULT_GARBAGE_FEED_PATH = "/faults/garbage-feed.xml"
FAULT_500_PATH = "/faults/500"
FAULT_NOT_HTML_PATH = "/faults/not-html"
PRIVATE_PAGE_PATH = "/private/embargoed-casualty-report.html"

TEXT_TYPES = {
    ".html": "text/html",
    ".htm": "text/html",
    ".xml": "application/xml",
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".txt": "text/plain",
    ".json": "application/json",
}
GZIP_TYPE = "application/gzip"

# Last-Modified of files that are not articles (feeds, sitemaps, section pages, robots.txt),
# by the edition of the variant served.
SITE_LAST_MODIFIED = {
    1: datetime(2026, 11, 20, 16, 0, tzinfo=UTC),
    2: datetime(2026, 11, 20, 17, 0, tzinfo=UTC),
}

_VARIANT_RE = re.compile(r"\.v\d+\.[^./]+$")
_HIDDEN = {"manifest.json"}

_GARBAGE_FEED = (
    b"\x00\x01\x02GARBAGE\xff\xfe{not: a feed} <<<<< ]]> &&& \x1b[31m\n" * 8
    + b"Service temporarily unavailable; please retry later.\n"
)
_FAKE_PDF = (
    b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
    + bytes(range(256))
    + b"\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
)


def load_manifest(site_dir: Path | None = None) -> list[dict[str, Any]]:
    """The ground-truth list of articles (see the package docstring for the fields)."""
    path = (site_dir or SITE_DIR) / "manifest.json"
    data: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return data


def sources_yaml(base_url: str) -> str:
    """The source registry (YAML text) for a sample web served at ``base_url``."""
    base = base_url.rstrip("/")
    lines = SOURCES_TEMPLATE.read_text(encoding="utf-8").splitlines()
    while lines and (lines[0].startswith("#") or not lines[0].strip()):
        lines.pop(0)
    text = "\n".join(lines) + "\n"
    text = re.sub(r'"\{\{BASE\}\}([^"]*)"', lambda m: base + m.group(1), text)
    text = text.replace(PLACEHOLDER, base)
    return f"# newsagg sample news web at {base}\n{text}"


def _parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    body: bytes = b""
    content_type: str | None = None
    last_modified: datetime | None = None
    location: str | None = None


class SampleWeb:
    """The sample news web on a local port; a context manager.

    >>> with SampleWeb() as web:
    ...     registry = sources_yaml(web.base_url)
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, site_dir: Path | None = None):
        self.host = host
        self.port = port
        self.site_dir = (site_dir or SITE_DIR).resolve()
        self._edition = 1
        self._base_url: str | None = None
        self._lock = threading.Lock()
        self._server = LoopbackServer(
            self._answer,
            host=host,
            port=port,
            name="sampleweb",
            methods=("GET", "HEAD"),
            timeout=30,
            server_version="newsagg-sampleweb/1.0",
        )
        self._last_modified = self._article_dates()

    # ------------------------------------------------------------------ public API

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("SampleWeb is not started; call start() first")
        return self._base_url

    def url(self, path: str) -> str:
        """Absolute URL of a path on this server."""
        return self.base_url + "/" + path.lstrip("/")

    def sources_yaml(self) -> str:
        return sources_yaml(self.base_url)

    @property
    def edition(self) -> int:
        return self._edition

    def set_edition(self, n: int) -> None:
        if n < 1:
            raise ValueError("edition numbers start at 1")
        with self._lock:
            self._edition = n

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of the request log, oldest first."""
        return self._server.requests

    def clear_requests(self) -> None:
        self._server.clear_requests()

    def start(self) -> SampleWeb:
        if not self._server.running:
            self._server.start()
            self._base_url = self._server.base_url
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> SampleWeb:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ internals

    def _article_dates(self) -> dict[str, datetime]:
        """Last-Modified of article files, keyed by path relative to the site directory."""
        dates: dict[str, datetime] = {}
        manifest = self.site_dir / "manifest.json"
        if not manifest.is_file():
            return dates
        for entry in load_manifest(self.site_dir):
            dates[entry["path"]] = _parse_iso(entry.get("modified_at") or entry["published_at"])
            for edition in entry.get("editions", []):
                dates[edition["path"]] = _parse_iso(edition["modified_at"])
        return dates

    def _variants(self, rel: str) -> Iterator[tuple[str, int]]:
        """Candidate files for ``rel`` under the current edition, best first."""
        stem, dot, ext = rel.rpartition(".")
        if dot and "/" not in ext:
            for k in range(self._edition, 1, -1):
                yield f"{stem}.v{k}.{ext}", k
        yield rel, 1

    def _file(self, rel: str) -> tuple[Path, int] | None:
        for candidate, edition in self._variants(rel):
            path = (self.site_dir / candidate).resolve()
            if not path.is_relative_to(self.site_dir):
                return None
            if path.is_file():
                return path, edition
        return None

    def _text(self, path: Path) -> bytes:
        text = path.read_text(encoding="utf-8")
        return text.replace(PLACEHOLDER, self.base_url).encode("utf-8")

    def _last_modified_for(self, path: Path, edition: int) -> datetime:
        rel = path.relative_to(self.site_dir).as_posix()
        return self._last_modified.get(rel) or SITE_LAST_MODIFIED.get(
            edition, SITE_LAST_MODIFIED[max(SITE_LAST_MODIFIED)]
        )

    def _fault(self, path: str) -> _Response | None:
        fixed = SITE_LAST_MODIFIED[1]
        if path == FAULT_500_PATH:
            return _Response(500, b"Internal Server Error\n", "text/plain; charset=utf-8")
        if path == FAULT_GARBAGE_FEED_PATH:
            return _Response(200, _GARBAGE_FEED, "application/rss+xml", fixed)
        if path == FAULT_NOT_HTML_PATH:
            return _Response(200, _FAKE_PDF, "application/pdf", fixed)
        return None

    def _resolve(self, raw_path: str) -> _Response:
        path = unquote(urlsplit(raw_path).path)
        if "\x00" in path or not path.startswith("/") or ".." in path.split("/"):
            return _Response(404)
        fault = self._fault(path)
        if fault is not None:
            return fault
        rel = path.lstrip("/")
        if rel == "" or rel.endswith("/"):
            rel += "index.html"
        name = rel.rsplit("/", 1)[-1]
        if rel in _HIDDEN or _VARIANT_RE.search(name):
            return _Response(404)
        if (self.site_dir / rel).is_dir():
            return _Response(301, location=self.base_url + path + "/")
        candidates = [rel]
        if "." not in name:
            candidates.append(rel + ".html")
        for candidate in candidates:
            found = self._file(candidate)
            if found is not None:
                file, edition = found
                suffix = file.suffix.lower()
                if suffix in TEXT_TYPES:
                    body = self._text(file)
                    ctype = f"{TEXT_TYPES[suffix]}; charset=utf-8"
                else:
                    body, ctype = file.read_bytes(), "application/octet-stream"
                return _Response(200, body, ctype, self._last_modified_for(file, edition))
        if rel.endswith(".gz"):
            found = self._file(rel[:-3])
            if found is not None:
                file, edition = found
                body = gzip.compress(self._text(file), mtime=0)
                return _Response(200, body, GZIP_TYPE, self._last_modified_for(file, edition))
        return _Response(404)

    def _answer(self, ex: Exchange) -> None:
        try:
            response = self._resolve(ex.path)
        except Exception:  # a bug in the sample web answers 500 like a real server, and says so
            logging.getLogger(__name__).exception("sample web: %s failed", ex.path)
            response = _Response(500, b"Internal Server Error\n", "text/plain; charset=utf-8")
        status = response.status
        headers: dict[str, str] = {}
        if status == 200:
            headers["ETag"] = etag = _etag(response.body)
            if _not_modified(ex.headers, etag, response.last_modified):
                status = 304
        if response.last_modified is not None and status in (200, 304):
            headers["Last-Modified"] = format_datetime(response.last_modified, usegmt=True)
        if response.location is not None:
            headers["Location"] = response.location
        body = response.body
        if status == 404:
            body = b"Not Found\n"
        elif status in (301, 304):
            body = b""
        if status == 304:
            ex.respond(304, content_type=None, headers=headers, length=False)
        else:
            ex.respond(
                status,
                body,
                content_type=response.content_type or "text/plain; charset=utf-8",
                headers=headers,
            )


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _not_modified(headers: Any, etag: str, last_modified: datetime | None) -> bool:
    inm = headers.get("If-None-Match")
    if inm is not None:
        tags = [t.strip() for t in inm.split(",")]
        return "*" in tags or any(t.removeprefix("W/") == etag for t in tags)
    ims = headers.get("If-Modified-Since")
    if ims and last_modified is not None:
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError, IndexError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return since >= last_modified
    return False
