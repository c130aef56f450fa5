"""A generated news web on 127.0.0.1 for the end-to-end benchmark (benchmarks/e2e.py).

``NewsWeb(articles=N, outlets=M, days=D)`` builds, in memory and deterministically (seeded):

* ``M`` outlets, each its own threaded stdlib HTTP server on 127.0.0.1 (its own port, so its own
  host to the fetcher), ``request_queue_size`` 128;
* one of 4 HTML layouts per outlet, each with boilerplate (navigation, cookie banner, related
  links, newsletter box, footer) around the article, a byline, and the date in meta tags or
  JSON-LD;
* an RSS 2.0 or Atom feed per feed outlet, and a Google News sitemap (plus a robots.txt) for every
  fourth outlet instead;
* many events, each reported by several outlets with varied text (sentences sampled, reordered,
  an outlet-specific lead and figures), and wire copies: about one report in eight is another
  outlet's report with light edits.

Article text comes from the ECB+ dev set (``/work/shared/data/events/ecbplus-dev.jsonl``,
``--shared``) when present: each generated event borrows the sentences of one ECB+ event. Without
the file a small built-in generator writes the sentences instead.

Every response carries an ETag and a Last-Modified; ``If-None-Match`` / ``If-Modified-Since``
get a 304. The request log records, per request, the outlet, the kind of resource (feed,
sitemap, robots, article, other), whether it was conditional and the status.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DEFAULT_ECB = Path("/work/shared/data/events/ecbplus-dev.jsonl")
SITEMAP_EVERY = 4  # every fourth outlet publishes a news sitemap instead of a feed
WIRE_SHARE = 0.125


@dataclass(frozen=True)
class Hit:
    outlet: str
    path: str
    kind: str  # feed | sitemap | robots | article | other
    conditional: bool
    status: int


@dataclass
class Resource:
    body: bytes
    content_type: str
    etag: str
    last_modified: datetime


@dataclass
class Outlet:
    name: str
    kind: str  # rss | atom | sitemap
    layout: int
    server: ThreadingHTTPServer | None = None

    @property
    def base(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def registry_kind(self) -> str:
        return "sitemap" if self.kind == "sitemap" else "rss"

    @property
    def entry_url(self) -> str:
        return self.base + ("/news-sitemap.xml" if self.kind == "sitemap" else
                            "/feed.xml" if self.kind == "rss" else "/atom.xml")


class _Server(ThreadingHTTPServer):
    request_queue_size = 128
    daemon_threads = True


# -- text --------------------------------------------------------------------------------------

_PLACES = ["Harbourton", "Eastvale", "Port Miren", "Kelsby", "Northgate", "Allendale", "Rivermouth"]
_WHO = ["the mayor", "a police spokesperson", "the regional council", "fire officials",
        "the health ministry", "union leaders", "witnesses", "the company"]
_WHAT = ["a fire broke out at a warehouse", "workers walked out in a strike", "a bridge was closed",
         "a storm cut power to homes", "a ferry ran aground", "a factory announced layoffs",
         "a train derailed near the station", "protesters gathered outside parliament"]


def _builtin_events(count: int, rng: random.Random) -> list[list[str]]:
    events = []
    for i in range(count):
        place, what = rng.choice(_PLACES), rng.choice(_WHAT)
        n = rng.randint(3, 900)
        sentences = [f"In {place}, {what} on day {i}, {rng.choice(_WHO)} said.",
                     f"About {n} people were affected, according to {rng.choice(_WHO)}.",
                     f"Officials in {place} said the cause of the incident number {i} was under review.",
                     f"{rng.choice(_WHO).capitalize()} urged residents of {place} to stay informed.",
                     f"Further details about the {place} incident are expected later, "
                     f"{rng.choice(_WHO)} said.",
                     f"Local businesses in {place} reported disruption lasting {rng.randint(2, 48)} hours.",
                     f"It was the {rng.randint(2, 9)}th such incident in {place} this year."]
        events.append(sentences)
    return events


def _ecb_events(path: Path) -> list[list[str]]:
    by_event: dict[str, list[str]] = defaultdict(list)
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            sentences = [s.strip() for s in doc["text"].split("\n") if len(s.split()) >= 5]
            by_event[str(doc["event"])].extend(sentences)
    return [s for _, s in sorted(by_event.items()) if len(s) >= 4]


# -- markup ------------------------------------------------------------------------------------

_NAV = "".join(f'<li><a href="/section/{s}/">{s.title()}</a></li>'
               for s in ("world", "politics", "business", "science", "sport", "culture", "opinion"))
_FOOTER = ('<footer><p>© {site} Media Group. All rights reserved.</p><ul><li><a href="/about/">About us'
           '</a></li><li><a href="/privacy/">Privacy policy</a></li><li><a href="/terms/">Terms of use'
           '</a></li><li><a href="/contact/">Contact</a></li></ul></footer>')
_COOKIE = ('<div class="cookie-banner">We use cookies to improve your experience. '
           '<button>Accept all</button> <button>Manage settings</button></div>')
_NEWSLETTER = ('<aside class="newsletter"><h3>Get the morning briefing</h3><p>Sign up for our free '
               'newsletter and never miss a story.</p><form><input type="email"></form></aside>')


def _related(site: str, titles: list[str]) -> str:
    items = "".join(f'<li><a href="/related/{i}">{escape(t)}</a></li>' for i, t in enumerate(titles))
    return f'<aside class="related"><h3>More from {site}</h3><ul>{items}</ul></aside>'


def render_article(layout: int, site: str, title: str, author: str, when: datetime,
                   paragraphs: list[str], related: list[str]) -> str:
    iso = when.isoformat()
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    head_meta = (f'<meta property="og:title" content="{escape(title)}">'
                 f'<meta property="og:site_name" content="{site}">')
    if layout == 0:  # classic: meta tags, article element
        return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)} | {site}'
                f'</title>{head_meta}<meta property="article:published_time" content="{iso}">'
                f'<meta name="author" content="{escape(author)}"></head><body>{_COOKIE}<header><a href="/">'
                f'{site}</a><nav><ul>{_NAV}</ul></nav></header><main><article><h1>{escape(title)}</h1>'
                f'<p class="byline">By {escape(author)} · <time datetime="{iso}">{when:%d %B %Y}</time></p>'
                f'<div class="article-body">{body}</div></article>{_related(site, related)}</main>'
                f'{_NEWSLETTER}{_FOOTER.format(site=site)}</body></html>')
    if layout == 1:  # JSON-LD NewsArticle, div soup
        ld = json.dumps({"@context": "https://schema.org", "@type": "NewsArticle", "headline": title,
                         "datePublished": iso, "author": [{"@type": "Person", "name": author}],
                         "publisher": {"@type": "Organization", "name": site}})
        return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)} - {site}'
                f'</title>{head_meta}<script type="application/ld+json">{ld}</script></head><body>'
                f'<div id="top">{_COOKIE}<div class="masthead">{site}</div><div class="menu"><ul>{_NAV}</ul>'
                f'</div></div><div class="content"><div class="story"><h1 class="headline">{escape(title)}'
                f'</h1><div class="meta"><span class="author">{escape(author)}</span></div><div class="text">'
                f'{body}</div></div><div class="sidebar">{_related(site, related)}{_NEWSLETTER}</div></div>'
                f'{_FOOTER.format(site=site)}</body></html>')
    if layout == 2:  # section with share bar and inline ads
        ad = '<div class="ad">Advertisement</div>'
        half = len(paragraphs) // 2
        body = ("".join(f"<p>{escape(p)}</p>" for p in paragraphs[:half]) + ad
                + "".join(f"<p>{escape(p)}</p>" for p in paragraphs[half:]))
        return (f'<!DOCTYPE html><html lang="en-GB"><head><meta charset="utf-8">'
                f'<title>{escape(title)}</title>{head_meta}<meta name="date" content="{iso}">'
                f'<meta name="byl" content="By {escape(author)}">'
                f'</head><body><nav class="top"><ul>{_NAV}</ul></nav>{_COOKIE}<section class="main">'
                f'<header><h1>{escape(title)}</h1><div class="share"><a>Share on X</a><a>Email</a>'
                '<a>Print</a>'
                f'</div><address>{escape(author)}</address></header><div itemprop="articleBody">{body}</div>'
                f'</section>{_related(site, related)}{_FOOTER.format(site=site)}</body></html>')
    # layout 3: minimal wire-style page, comments block
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{escape(title)} — {site}</title>'
            f'{head_meta}<meta property="article:published_time" content="{iso}"></head><body>'
            f'<div class="wrap"><div class="hdr">{site} <ul>{_NAV}</ul></div><article class="post">'
            f'<h2 class="entry-title">{escape(title)}</h2><div class="entry-meta">{escape(author)} — '
            f'{when:%Y-%m-%d %H:%M} UTC</div><div class="entry-content">{body}</div></article>'
            f'<div id="comments"><h3>3 comments</h3><p>Great reporting!</p><p>First!</p></div>'
            f'{_related(site, related)}</div>{_FOOTER.format(site=site)}</body></html>')


def _rss(outlet: Outlet, items: list[dict[str, Any]]) -> bytes:
    entries = "".join(
        f"<item><title>{escape(i['title'])}</title><link>{outlet.base}{i['path']}</link>"
        f"<guid>{outlet.base}{i['path']}</guid><pubDate>{format_datetime(i['when'], usegmt=True)}</pubDate>"
        f"<description>{escape(i['lead'])}</description></item>" for i in items)
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{outlet.name}</title>'
            f"<link>{outlet.base}/</link><description>News</description>{entries}</channel></rss>").encode()


def _atom(outlet: Outlet, items: list[dict[str, Any]], updated: datetime) -> bytes:
    entries = "".join(
        f'<entry><title>{escape(i["title"])}</title><link href="{outlet.base}{i["path"]}"/>'
        f"<id>{outlet.base}{i['path']}</id><published>{i['when'].isoformat()}</published>"
        f"<updated>{i['when'].isoformat()}</updated><summary>{escape(i['lead'])}</summary></entry>"
        for i in items)
    return ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>{outlet.name}</title><id>{outlet.base}/</id><updated>{updated.isoformat()}</updated>"
            f"{entries}</feed>").encode()


def _news_sitemap(outlet: Outlet, items: list[dict[str, Any]]) -> bytes:
    entries = "".join(
        f"<url><loc>{outlet.base}{i['path']}</loc><lastmod>{i['when'].isoformat()}</lastmod><news:news>"
        f"<news:publication><news:name>{outlet.name}</news:name><news:language>en</news:language>"
        f"</news:publication><news:publication_date>{i['when'].isoformat()}</news:publication_date>"
        f"<news:title>{escape(i['title'])}</news:title></news:news></url>" for i in items)
    return ('<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
            ' xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">' + entries + "</urlset>").encode()


# -- the web -----------------------------------------------------------------------------------


class NewsWeb:
    def __init__(self, articles: int, outlets: int, days: int, seed: int = 7,
                 ecb_path: Path | None = DEFAULT_ECB, now: datetime | None = None) -> None:
        self.n_articles, self.n_outlets, self.days = articles, outlets, days
        self.rng = random.Random(seed)
        self.now = (now or datetime.now(UTC)).replace(microsecond=0)
        self.text_source = "builtin"
        self.events_pool: list[list[str]] = []
        if ecb_path is not None and ecb_path.is_file():
            self.events_pool = _ecb_events(ecb_path)
            self.text_source = f"ECB+ dev ({ecb_path})"
        if not self.events_pool:
            self.events_pool = _builtin_events(60, self.rng)
        self.outlets = [Outlet(name=f"outlet{i:02d}",
                               kind="sitemap" if i % SITEMAP_EVERY == SITEMAP_EVERY - 1
                               else ("rss" if i % 2 == 0 else "atom"),
                               layout=i % 4) for i in range(outlets)]
        self.resources: dict[str, dict[str, Resource]] = {o.name: {} for o in self.outlets}
        self.items: dict[str, list[dict[str, Any]]] = {o.name: [] for o in self.outlets}
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self.wire_copies = 0
        self.events = 0

    # building needs the ports (absolute URLs in feeds), so servers start first
    def __enter__(self) -> NewsWeb:
        for outlet in self.outlets:
            outlet.server = _Server(("127.0.0.1", 0), self._handler(outlet.name))
            threading.Thread(target=outlet.server.serve_forever, daemon=True,
                             name=f"newsweb-{outlet.name}").start()
        self._build()
        return self

    def __exit__(self, *exc: object) -> None:
        for outlet in self.outlets:
            if outlet.server is not None:
                outlet.server.shutdown()
                outlet.server.server_close()

    def _add(self, outlet: str, path: str, body: bytes, ctype: str, when: datetime) -> None:
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        self.resources[outlet][path] = Resource(body, ctype, etag, when)

    def _build(self) -> None:
        rng = self.rng
        start = self.now - timedelta(days=self.days)
        span = self.days * 86400
        per_event = 4  # reports per event on average (2..6)
        produced = 0
        reports: list[tuple[Outlet, dict[str, Any]]] = []
        event_no = 0
        while produced < self.n_articles:
            base = self.events_pool[event_no % len(self.events_pool)]
            event_no += 1
            when0 = start + timedelta(seconds=rng.randrange(max(1, span - 6 * 3600)))
            # a figure that varies per event, so recycled ECB+ events still differ
            figure = rng.randint(2, 5000)
            k = min(rng.randint(2, 2 * per_event - 2), self.n_articles - produced)
            outlets = rng.sample(self.outlets, min(k, len(self.outlets)))
            first: dict[str, Any] | None = None
            for j, outlet in enumerate(outlets):
                when = when0 + timedelta(minutes=rng.randint(0, 360))
                if first is not None and rng.random() < WIRE_SHARE / 0.75:
                    paragraphs = list(first["paragraphs"])  # wire copy, light edits
                    paragraphs[-1] = paragraphs[-1] + f" ({outlet.name} contributed to this report.)"
                    title = first["title"]
                    self.wire_copies += 1
                else:
                    picked = rng.sample(base, min(len(base), rng.randint(4, 9)))
                    lead = (f"{outlet.name.title()} reporting, event {event_no}: at least {figure} "
                            f"people were affected, officials said on {when:%A}.")
                    paragraphs = [lead, *picked]
                    title = f"{picked[0][:70].rstrip()} ({figure})"
                item = {"path": f"/news/{when:%Y/%m/%d}/story-{event_no}-{j}.html", "title": title,
                        "when": when, "paragraphs": paragraphs, "lead": paragraphs[0][:200]}
                if first is None:
                    first = item
                reports.append((outlet, item))
                produced += 1
        self.events = event_no
        for outlet, item in reports:
            self.items[outlet.name].append(item)
        for outlet in self.outlets:
            items = sorted(self.items[outlet.name], key=lambda i: i["when"], reverse=True)
            titles = [i["title"] for i in items[:5]]
            for item in items:
                html = render_article(outlet.layout, outlet.name.title(), item["title"],
                                      f"Reporter {rng.randint(1, 40)}", item["when"],
                                      item["paragraphs"], titles)
                self._add(outlet.name, item["path"], html.encode(), "text/html; charset=utf-8",
                          item["when"])
            updated = items[0]["when"] if items else self.now
            if outlet.kind == "rss":
                self._add(outlet.name, "/feed.xml", _rss(outlet, items), "application/rss+xml", updated)
            elif outlet.kind == "atom":
                self._add(outlet.name, "/atom.xml", _atom(outlet, items, updated),
                          "application/atom+xml", updated)
            else:
                self._add(outlet.name, "/news-sitemap.xml", _news_sitemap(outlet, items),
                          "application/xml", updated)
                self._add(outlet.name, "/robots.txt",
                          f"User-agent: *\nAllow: /\nSitemap: {outlet.base}/news-sitemap.xml\n".encode(),
                          "text/plain", start)

    def _handler(self, outlet_name: str) -> type[BaseHTTPRequestHandler]:
        web = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                res = web.resources[outlet_name].get(path)
                inm = self.headers.get("If-None-Match")
                ims = self.headers.get("If-Modified-Since")
                kind = ("feed" if path in ("/feed.xml", "/atom.xml") else
                        "sitemap" if path.endswith("sitemap.xml") else
                        "robots" if path == "/robots.txt" else
                        "article" if path.startswith("/news/") else "other")
                status = 200
                if res is None:
                    status = 404
                elif inm is not None:
                    if res.etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*":
                        status = 304
                elif ims is not None:
                    try:
                        if res.last_modified <= parsedate_to_datetime(ims):
                            status = 304
                    except (TypeError, ValueError):
                        pass
                with web._lock:
                    web.hits.append(Hit(outlet_name, path, kind, inm is not None or ims is not None,
                                        status))
                if res is None:
                    body = b"not found"
                    self.send_response(404)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_response(status)
                self.send_header("ETag", res.etag)
                self.send_header("Last-Modified", format_datetime(res.last_modified, usegmt=True))
                if status == 304:
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_header("Content-Type", res.content_type)
                self.send_header("Content-Length", str(len(res.body)))
                self.end_headers()
                self.wfile.write(res.body)

        return Handler

    # -- what the benchmark needs --------------------------------------------------------------

    def sources_yaml(self) -> str:
        lines = ["sources:"]
        for o in self.outlets:
            lines += [f"  - name: {o.name}", f"    kind: {o.registry_kind}", f"    url: {o.entry_url}",
                      "    language: en", "    delay: 0"]
        return "\n".join(lines) + "\n"

    def request_counts(self, since: int = 0) -> dict[str, Any]:
        with self._lock:
            hits = self.hits[since:]
        by_kind = Counter(h.kind for h in hits)
        cond_by_kind = Counter(h.kind for h in hits if h.conditional)
        return {"requests": len(hits), "conditional": sum(cond_by_kind.values()),
                "not_modified": sum(1 for h in hits if h.status == 304),
                "by_kind": dict(by_kind), "conditional_by_kind": dict(cond_by_kind)}

    def describe(self) -> dict[str, Any]:
        kinds = Counter(o.kind for o in self.outlets)
        return {"articles": sum(len(v) for v in self.items.values()), "outlets": len(self.outlets),
                "days": self.days, "events": self.events, "wire_copies": self.wire_copies,
                "outlet_kinds": dict(kinds), "layouts": 4, "text": self.text_source}


class NewsWebProcess:
    """The same web served from a child process, so the process measured holds no server threads
    (and none of their GIL time): pipeline.extract forks its workers only from a process with
    one thread, and the CLI's ``newsagg run`` has no server in it either. Start it before any
    thread exists in the caller (it is forked)."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self._conn: Any = None
        self._proc: Any = None
        self._yaml = ""
        self._describe: dict[str, Any] = {}

    @staticmethod
    def _serve(conn: Any, kwargs: dict[str, Any]) -> None:
        with NewsWeb(**kwargs) as web:
            conn.send((web.sources_yaml(), web.describe()))
            while True:
                cmd, arg = conn.recv()
                if cmd == "stop":
                    conn.send(None)
                    return
                if cmd == "hits":
                    with web._lock:
                        conn.send(len(web.hits))
                elif cmd == "counts":
                    conn.send(web.request_counts(arg))

    def __enter__(self) -> NewsWebProcess:
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=self._serve, args=(child, self.kwargs), daemon=True)
        self._proc.start()
        self._yaml, self._describe = self._conn.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._conn.send(("stop", None))
            self._conn.recv()
        finally:
            self._proc.join(10)
            if self._proc.is_alive():
                self._proc.terminate()

    def sources_yaml(self) -> str:
        return self._yaml

    def describe(self) -> dict[str, Any]:
        return self._describe

    def hit_count(self) -> int:
        self._conn.send(("hits", None))
        return int(self._conn.recv())

    def request_counts(self, since: int = 0) -> dict[str, Any]:
        self._conn.send(("counts", since))
        return dict(self._conn.recv())


if __name__ == "__main__":  # serve one for a look: python benchmarks/newsweb.py
    import time

    with NewsWeb(articles=40, outlets=4, days=2) as web:
        print(web.sources_yaml())
        print(json.dumps(web.describe()))
        time.sleep(3600)
