"""A generated news web on 127.0.0.1 for the end-to-end benchmark (benchmarks/e2e.py).

``NewsWeb(articles=N, outlets=M, days=D)`` builds, in memory and deterministically (seeded):

* ``M`` outlets, each its own loopback server (``pipeline.sampleweb.loopback``) on 127.0.0.1 (its
  own port, so its own host to the fetcher), all writing to one request log;
* one of 4 HTML layouts per outlet, each with boilerplate (navigation, cookie banner, related
  links, newsletter box, footer) around the article, a byline, and the date in meta tags or
  JSON-LD, inside the outlet's heavy chrome (see "Page weight" and "Page structure" below);
* an RSS 2.0 or Atom feed per feed outlet, and a Google News sitemap (plus a robots.txt) for every
  fourth outlet instead;
* many events, each reported by several outlets with varied text (sentences sampled, reordered,
  an outlet-specific lead and figures), and wire copies: about one report in eight is another
  outlet's report with light edits.

Article text comes from the ECB+ dev set (``/work/shared/data/events/ecbplus-dev.jsonl``,
``--shared``) when present: each generated event borrows the sentences of one ECB+ event. Without
the file a small built-in generator writes the sentences instead.

Page weight. Real article pages are heavy: the 258 pages of the Fundus set
(``/work/shared/data/extraction/fundus/pages``) weigh median 255 KB, mean 328 KB, p10 89 KB,
p90 570 KB, and gzip to 15-25 % of that; the bytes are mostly scripts, styles and markup
around a few KB of article. So each outlet gets its own *chrome*, built once and deterministically
from the seed and the outlet: a big ``<head>`` (dozens of meta/link/preload tags, inline CSS,
inline webpack-style JS bundles, analytics and consent scripts with a vendor list, JSON-LD
Organization/WebSite), a consent dialog, a mega-menu with hundreds of links, an SVG logo and
icons, ad slots, a "most read" list of teasers with ``srcset`` pictures, a footer of link columns
and social icons, deferred script tags, and a JSON recommendations blob. It differs per layout:
classic CMS (0), Next.js-like with CSS-in-JS and a ``__NEXT_DATA__`` blob that also holds the
article (1), page builder with atomic inline CSS (2), WordPress-like with ``wp-block-library``
styles, jQuery and a reader-comment list (3). An outlet's target weight is lognormal (median
240 KB, sigma 0.7, clamped to 60-900 KB; outlets take evenly spread quantiles), each page varies
around it by about 8 % (teaser, recommendation and comment windows). The article itself
(headline, byline, date, paragraphs, related links, metadata) is exactly the bare page's, so
extraction gives the same result as on the ~4 KB pages. ``describe()["page_weight"]`` reports
the generated weights (median/mean/p10/p90, gzip ratio).

Page structure. Weight alone under-states extraction cost: script and style text is skipped
cheaply by the parser, while trafilatura's time grows with the elements it walks. So the chrome
is calibrated on structure too (``benchmarks/calibrate_newsweb.py`` prints both sets side by
side). The 258 real pages have median 1058 elements (``len(list(tree.iter()))``, mean 1152,
p10 517, p90 1898), nest 19 deep (p10 14, p90 25), keep 38 % of their bytes in
``<script>``/``<style>`` (mean 41 %, p10 7 %, p90 78 %), ~10 KB of visible text, and outside
the article about 168 ``<a>``, 168 ``<div>``, 109 ``<li>``, 55 ``<span>``, 8 ``<p>`` (mean 18)
and 19 SVG ``<path>``; ``pipeline.extract.extract`` takes median ~15 ms there on this machine
(10 ms inside trafilatura). The generated chrome therefore has: 5-10 nested layout ``<div>``
wrappers around the page; per-layout class styles (BEM modifiers, utility classes with
CSS-in-JS hashes, page-builder element classes); a hidden inline SVG sprite; a header bar with
trending links and a breaking ticker; a mega-menu whose columns are small trees (div, head
link, toggle button with icon, list); a consent dialog with purpose toggles and two ``<p>``;
teaser *cards* (picture with sources, kicker, headline, a standfirst sentence in ``<p>`` or
``<div>``, a meta row with icons and a save button, a JSON ``data-tracking`` attribute), shown
as a "most read" list and a "more stories" grid; a footer of link columns, social icons and
legal ``<p>``; hidden ``<template>``s. Markup scales with weight^0.6; the CSS/JS/JSON fillers
take the remaining bytes. Generated pages (300 articles, 12 outlets): median 1034 elements,
depth 20, 55 % script/style (mean 50 %), ~8 KB text, extract median ~19 ms (1.2 × real).
Extraction still returns exactly the article's paragraphs (tests/test_newsweb.py).

Article pages are not held as bytes (10,000 × 250 KB would be 2.5 GB): each is rendered on
request from its item's few fields and the outlet's shared chrome strings, the same bytes every
time; its ETag is a hash of those inputs, fixed at build time.

Every response carries an ETag and a Last-Modified; ``If-None-Match`` / ``If-Modified-Since``
get a 304. The request log records, per request, the outlet (``server``), the kind of resource
(feed, sitemap, robots, article, other), whether it was conditional and the status.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import json
import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from html import escape
from pathlib import Path
from typing import Any

from pipeline.sampleweb.loopback import Exchange, LoopbackServer, RequestLog, RequestRecord

DEFAULT_ECB = Path("/work/shared/data/events/ecbplus-dev.jsonl")
SITEMAP_EVERY = 4  # every fourth outlet publishes a news sitemap instead of a feed
WIRE_SHARE = 0.125


@dataclass
class Resource:
    body: bytes | None  # None: rendered on request by ``render`` (article pages)
    content_type: str
    etag: str
    last_modified: datetime
    render: Callable[[], bytes] | None = None

    def content(self) -> bytes:
        if self.body is not None:
            return self.body
        assert self.render is not None
        return self.render()


@dataclass
class Outlet:
    name: str
    kind: str  # rss | atom | sitemap
    layout: int
    server: LoopbackServer | None = None

    @property
    def base(self) -> str:
        assert self.server is not None
        return self.server.base_url

    @property
    def registry_kind(self) -> str:
        return "sitemap" if self.kind == "sitemap" else "rss"

    @property
    def entry_url(self) -> str:
        return self.base + (
            "/news-sitemap.xml"
            if self.kind == "sitemap"
            else "/feed.xml"
            if self.kind == "rss"
            else "/atom.xml"
        )


# -- text --------------------------------------------------------------------------------------

_PLACES = ["Harbourton", "Eastvale", "Port Miren", "Kelsby", "Northgate", "Allendale", "Rivermouth"]
_WHO = [
    "the mayor",
    "a police spokesperson",
    "the regional council",
    "fire officials",
    "the health ministry",
    "union leaders",
    "witnesses",
    "the company",
]
_WHAT = [
    "a fire broke out at a warehouse",
    "workers walked out in a strike",
    "a bridge was closed",
    "a storm cut power to homes",
    "a ferry ran aground",
    "a factory announced layoffs",
    "a train derailed near the station",
    "protesters gathered outside parliament",
]


def _builtin_events(count: int, rng: random.Random) -> list[list[str]]:
    events = []
    for i in range(count):
        place, what = rng.choice(_PLACES), rng.choice(_WHAT)
        n = rng.randint(3, 900)
        sentences = [
            f"In {place}, {what} on day {i}, {rng.choice(_WHO)} said.",
            f"About {n} people were affected, according to {rng.choice(_WHO)}.",
            f"Officials in {place} said the cause of the incident number {i} was under review.",
            f"{rng.choice(_WHO).capitalize()} urged residents of {place} to stay informed.",
            f"Further details about the {place} incident are expected later, {rng.choice(_WHO)} said.",
            f"Local businesses in {place} reported disruption lasting {rng.randint(2, 48)} hours.",
            f"It was the {rng.randint(2, 9)}th such incident in {place} this year.",
        ]
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

_NAV = "".join(
    f'<li><a href="/section/{s}/">{s.title()}</a></li>'
    for s in ("world", "politics", "business", "science", "sport", "culture", "opinion")
)
_FOOTER = (
    '<footer><p>© {site} Media Group. All rights reserved.</p><ul><li><a href="/about/">About us'
    '</a></li><li><a href="/privacy/">Privacy policy</a></li><li><a href="/terms/">Terms of use'
    '</a></li><li><a href="/contact/">Contact</a></li></ul></footer>'
)
_COOKIE = (
    '<div class="cookie-banner">We use cookies to improve your experience. '
    "<button>Accept all</button> <button>Manage settings</button></div>"
)
_NEWSLETTER = (
    '<aside class="newsletter"><h3>Get the morning briefing</h3><p>Sign up for our free '
    'newsletter and never miss a story.</p><form><input type="email"></form></aside>'
)


def _related(site: str, titles: list[str]) -> str:
    items = "".join(f'<li><a href="/related/{i}">{escape(t)}</a></li>' for i, t in enumerate(titles))
    return f'<aside class="related"><h3>More from {site}</h3><ul>{items}</ul></aside>'


# -- page weight: per-outlet chrome --------------------------------------------------------------

# Target weights of article pages, from the 258 real pages of the Fundus set
# (/work/shared/data/extraction/fundus/pages): median 255 KB, mean 328 KB, p10 89 KB, p90 570 KB.
WEIGHT_MEDIAN = 240_000  # bytes; an outlet's weight is lognormal around it
WEIGHT_SIGMA = 0.7  # p10 ≈ 0.41 × median, p90 ≈ 2.45 × median, as in the real set
WEIGHT_RANGE = (60_000, 900_000)
PAGE_SIGMA = 0.08  # page-to-page spread within an outlet (teasers, comments, ad config)
_GOLDEN = 0.6180339887498949

_SECTIONS = [
    "News",
    "World",
    "UK",
    "US",
    "Politics",
    "Business",
    "Markets",
    "Money",
    "Technology",
    "Science",
    "Health",
    "Education",
    "Environment",
    "Climate",
    "Sport",
    "Football",
    "Cricket",
    "Tennis",
    "Culture",
    "Film",
    "Music",
    "Books",
    "Television",
    "Travel",
    "Food",
    "Lifestyle",
    "Property",
    "Motoring",
    "Opinion",
    "Obituaries",
    "Weather",
    "Puzzles",
    "Podcasts",
    "Video",
    "Photography",
    "Local",
    "Crime",
    "Courts",
]
_TOPICS = [
    "Europe",
    "Americas",
    "Asia",
    "Africa",
    "Middle East",
    "Australia",
    "Economy",
    "Elections",
    "Parliament",
    "Companies",
    "Energy",
    "Banking",
    "Startups",
    "Retail",
    "Artificial intelligence",
    "Space",
    "Wildlife",
    "Mental health",
    "Universities",
    "Schools",
    "Transport",
    "Housing",
    "Premier League",
    "Champions League",
    "Formula 1",
    "Rugby",
    "Golf",
    "Cycling",
    "Reviews",
    "Interviews",
    "Recipes",
    "Restaurants",
    "Gardening",
    "Fashion",
    "Beauty",
    "Fitness",
    "Relationships",
    "Family",
    "Pensions",
    "Savings",
    "Tax",
    "Insurance",
    "Electric cars",
    "Gadgets",
    "Gaming",
    "Explainers",
    "Fact check",
    "Live blogs",
    "Investigations",
    "Letters",
    "Cartoons",
    "Editorials",
    "Crosswords",
]
_NOUNS = [
    "council",
    "minister",
    "startup",
    "museum",
    "coach",
    "airline",
    "charity",
    "hospital",
    "festival",
    "court",
    "regulator",
    "band",
    "chef",
    "league",
    "university",
    "bank",
    "rail operator",
    "mayor",
    "tenants",
    "farmers",
    "streaming service",
    "author",
    "senator",
    "striker",
    "insurer",
    "watchdog",
    "carmaker",
    "orchestra",
    "gallery",
    "pilot",
]
_VERBS = [
    "unveils",
    "scraps",
    "defends",
    "rethinks",
    "doubles down on",
    "delays",
    "celebrates",
    "questions",
    "backs",
    "warns over",
    "cuts",
    "launches",
    "wins",
    "loses",
    "tests",
    "reviews",
    "quietly drops",
    "bets on",
    "signs",
    "sues over",
]
_OBJECTS = [
    "summer timetable",
    "pay offer",
    "new stadium plan",
    "recipe for success",
    "five-year strategy",
    "ticket prices",
    "record season",
    "controversial tower",
    "budget shortfall",
    "holiday rules",
    "app redesign",
    "comeback tour",
    "winter menu",
    "training camp",
    "loyalty scheme",
    "garden makeover",
    "electric fleet",
    "debut novel",
    "late-night opening",
    "transfer window",
    "school run",
    "spending review",
]
_TAILS = [
    "",
    "",
    "",
    " – what it means for you",
    ": the verdict",
    " after years of talks",
    " in surprise move",
    ", reports say",
    " – live",
    ": five things to know",
    " amid backlash",
    " as costs soar",
    " – in pictures",
    " for the first time",
]
_FIRST = [
    "Alex",
    "Sam",
    "Jordan",
    "Priya",
    "Tom",
    "Maria",
    "Chen",
    "Fatima",
    "Lukas",
    "Noor",
    "Grace",
    "Oliver",
    "Aisha",
    "Jonas",
    "Mia",
    "Kofi",
    "Elena",
    "Ravi",
    "Hannah",
    "Diego",
]
_LAST = [
    "Wright",
    "Okafor",
    "Lindqvist",
    "Patel",
    "Moreau",
    "Kowalski",
    "Haddad",
    "Brennan",
    "Nakamura",
    "Silva",
    "Fischer",
    "Osei",
    "Romano",
    "Clarke",
    "Ahmed",
    "Jensen",
]
_REMARKS = [
    "Completely agree with this.",
    "Has anyone actually read the report?",
    "This has been going on for years and nobody listens.",
    "Well said.",
    "I live nearby and can confirm the queues are terrible.",
    "Interesting piece, but it misses the bigger picture.",
    "Not again!",
    "Who is going to pay for all of this?",
    "The photos are stunning.",
    "My parents remember the last time this happened.",
    "Thanks for the balanced coverage.",
    "Typical. Promises before, excuses after.",
    "Can we get a follow-up on this please?",
    "Sorry, but the headline is misleading.",
    "Brilliant news for the town.",
]
_PROPS = [
    "display",
    "margin",
    "padding",
    "color",
    "background-color",
    "font-size",
    "line-height",
    "font-weight",
    "border-bottom",
    "border-radius",
    "width",
    "max-width",
    "height",
    "flex-direction",
    "align-items",
    "justify-content",
    "gap",
    "position",
    "top",
    "left",
    "z-index",
    "opacity",
    "transition",
    "text-transform",
    "letter-spacing",
    "overflow",
    "grid-template-columns",
    "box-shadow",
    "font-family",
    "text-decoration",
]
_BLOCKS = [
    "header",
    "nav",
    "mega-menu",
    "teaser",
    "card",
    "article",
    "byline",
    "footer",
    "newsletter",
    "ad-slot",
    "share",
    "comments",
    "most-read",
    "breaking",
    "search",
    "topic-list",
    "video",
    "gallery",
    "paywall",
    "consent",
    "button",
    "badge",
    "live",
]
_ELEMS = [
    "inner",
    "title",
    "link",
    "image",
    "caption",
    "list",
    "item",
    "label",
    "icon",
    "meta",
    "wrapper",
    "kicker",
    "summary",
    "close",
    "toggle",
    "grid",
    "column",
    "row",
]
_JS_PROPS = [
    "articleId",
    "sectionName",
    "pageType",
    "isPremium",
    "contentType",
    "adUnitPath",
    "userStatus",
    "consentState",
    "viewportWidth",
    "scrollDepth",
    "experimentId",
    "variant",
    "referrer",
    "sessionId",
    "lazyLoadOffset",
    "refreshInterval",
    "targeting",
    "keywords",
    "pageViewId",
    "subscriberTier",
    "videoId",
    "autoplay",
    "locale",
    "timezone",
    "publishedDate",
    "wordCount",
    "trackingId",
    "sourcepoint",
    "bidTimeout",
    "prebidConfig",
    "slotName",
    "sizeMapping",
    "collapseEmpty",
    "fetchPriority",
]
_JS_EVENTS = [
    "click",
    "scroll",
    "visibilitychange",
    "resize",
    "load",
    "DOMContentLoaded",
    "consentUpdated",
    "adRendered",
    "articleView",
    "paywallShown",
    "videoStart",
    "newsletterSignup",
    "shareClick",
    "readMore",
    "menuOpen",
]
_JS_METHODS = [
    "push",
    "addEventListener",
    "setAttribute",
    "querySelectorAll",
    "getItem",
    "setItem",
    "dispatchEvent",
    "then",
    "catch",
    "forEach",
    "map",
    "filter",
    "assign",
    "observe",
    "disconnect",
    "defineSlot",
    "enableServices",
    "refresh",
    "display",
]
_JS_WORDS = [
    "slot",
    "config",
    "state",
    "payload",
    "handler",
    "tracker",
    "queue",
    "options",
    "observer",
    "consent",
    "vendor",
    "bidder",
    "store",
    "context",
    "element",
    "target",
]
_COMPANIES = [
    "Adform",
    "Criteo",
    "Taboola",
    "Outbrain",
    "Index Exchange",
    "Magnite",
    "PubMatic",
    "OpenX",
    "Xandr",
    "Teads",
    "Quantcast",
    "Comscore",
    "Chartbeat",
    "Parse.ly",
    "Permutive",
    "Lotame",
    "LiveRamp",
    "TheTradeDesk",
    "Smart AdServer",
    "Seedtag",
    "GumGum",
    "Nielsen",
]
_SUFFIXES = ["Ltd", "GmbH", "Inc.", "S.A.", "B.V.", "LLC", "AB", "SAS"]
_WIDTHS = (320, 480, 640, 800, 1024, 1280, 1600)


def _headline(rng: random.Random) -> str:
    noun = rng.choice(_NOUNS)
    return (
        f"{rng.choice(['The', 'Local', 'City', 'Star', 'Rival', 'New'])} {noun} "
        f"{rng.choice(_VERBS)} {rng.choice(_OBJECTS)}{rng.choice(_TAILS)}"
    )


def _slug(text: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


def _hexid(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _b36(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdefghijklmnopqrstuvwxyz") for _ in range(n))


def _css(rng: random.Random, prefix: str, palette: list[str], budget: int, atomic: bool) -> str:
    """Stylesheet text: BEM rules (classic, WordPress) or hashed atomic classes (CSS-in-JS)."""
    out: list[str] = []
    size = 0
    while size < budget:
        if atomic:
            sel = f".css-{_b36(rng, 7)}"
        else:
            sel = f".{prefix}-{rng.choice(_BLOCKS)}__{rng.choice(_ELEMS)}"
            if rng.random() < 0.3:
                sel += f"--{rng.choice(['active', 'large', 'compact', 'dark', 'sticky', 'open'])}"
            if rng.random() < 0.2:
                sel += rng.choice([":hover", ":focus-visible", "::before", ":first-child"])
        decls = []
        for prop in rng.sample(_PROPS, rng.randint(2, 7)):
            if "color" in prop:
                value = rng.choice(palette)
            elif prop in ("display",):
                value = rng.choice(["flex", "block", "grid", "none", "inline-block"])
            elif prop == "font-family":
                value = rng.choice(['"Source Serif",Georgia,serif', "Inter,Helvetica,Arial,sans-serif"])
            elif prop in ("transition", "box-shadow", "border-bottom", "grid-template-columns"):
                value = rng.choice(
                    [
                        "opacity .2s ease-in-out",
                        "0 1px 3px rgba(0,0,0,.12)",
                        f"1px solid {rng.choice(palette)}",
                        "repeat(12,minmax(0,1fr))",
                        "transform .3s cubic-bezier(.4,0,.2,1)",
                    ]
                )
            else:
                value = rng.choice(
                    [
                        "0",
                        "auto",
                        "100%",
                        "1rem",
                        ".5rem",
                        "2px",
                        "4px",
                        "8px",
                        "12px",
                        "16px",
                        "24px",
                        "32px",
                        "1.25",
                        "1.5",
                        "600",
                        "700",
                        "uppercase",
                        "hidden",
                        "relative",
                        "absolute",
                        "center",
                        "column",
                        "10",
                    ]
                )
            decls.append(f"{prop}:{value}")
        rule = f"{sel}{{{';'.join(decls)}}}"
        if rng.random() < 0.12:
            rule = f"@media (min-width:{rng.choice([480, 768, 1024, 1280])}px){{{rule}}}"
        out.append(rule)
        size += len(rule)
    return "".join(out)


def _js(rng: random.Random, budget: int, chunk: str) -> str:
    """A minified webpack-style bundle: modules of plausible statements."""
    out = [f"(self.webpackChunk_{chunk}=self.webpackChunk_{chunk}||[]).push([[{rng.randint(100, 999)}],{{"]
    size = len(out[0])
    while size < budget:
        p, q = rng.sample(_JS_PROPS, 2)
        w = rng.choice(_JS_WORDS)
        stmts = []
        for _ in range(rng.randint(3, 8)):
            kind = rng.randrange(7)
            if kind == 0:
                stmts.append(
                    f"var {rng.choice('abcdeoir')}=n({rng.randint(1000, 99999)}),"
                    f"{rng.choice('stuvxyz')}=n.n({rng.choice('abcdeoir')})"
                )
            elif kind == 1:
                stmts.append(
                    f"function {w}{p[0].upper()}{p[1:]}(e,t){{if(!e)return null;var n=e.{p}||"
                    f'"{rng.choice(_JS_WORDS)}";return t.{rng.choice(_JS_METHODS)}(n,'
                    f"{rng.randint(0, 5000)})}}"
                )
            elif kind == 2:
                stmts.append(
                    f'window.addEventListener("{rng.choice(_JS_EVENTS)}",function(e){{'
                    f'{w}.{rng.choice(_JS_METHODS)}({{event:"{rng.choice(_JS_EVENTS)}",'
                    f"{p}:e.{q},ts:Date.now()}})}},{{passive:!0}})"
                )
            elif kind == 3:
                stmts.append(
                    f"if(window.__{w}__&&window.__{w}__.{p}){{var r=Object.assign({{}},"
                    f'window.__{w}__,{{{q}:"{rng.choice(_SECTIONS).lower()}"}});'
                    f"{w}.{rng.choice(_JS_METHODS)}(r)}}"
                )
            elif kind == 4:
                stmts.append(
                    f'const {w}{rng.randint(0, 99)}={{{p}:"{_hexid(rng, 8)}",{q}:'
                    f"{rng.randint(0, 100000)},enabled:!{rng.randint(0, 1)}}}"
                )
            elif kind == 5:
                stmts.append(
                    f'console.warn("[{rng.choice(_COMPANIES)}] {rng.choice(_JS_WORDS)} '
                    f"{rng.choice(['not ready', 'timed out', 'failed to load', 'skipped'])}"
                    f', retrying in "+{rng.randint(50, 3000)}+"ms")'
                )
            else:
                stmts.append(
                    f'return e.createElement("{rng.choice(["div", "span", "a", "button"])}",'
                    f'{{className:"{rng.choice(_BLOCKS)}__{rng.choice(_ELEMS)}","data-testid":'
                    f'"{rng.choice(_BLOCKS)}-{rng.choice(_ELEMS)}",{p}:t.{q}}})'
                )
        module = f'{rng.randint(1000, 99999)}:function(e,t,n){{"use strict";{";".join(stmts)}}},'
        out.append(module)
        size += len(module)
    out.append("}]);")
    return "".join(out)


def _vendors(rng: random.Random, count: int) -> str:
    """A consent-management vendor list, as the consent scripts inline it."""
    vendors = [
        {
            "id": rng.randint(1, 1200),
            "name": f"{rng.choice(_COMPANIES)} {rng.choice(_SUFFIXES)}",
            "purposes": sorted(rng.sample(range(1, 11), rng.randint(1, 6))),
            "legIntPurposes": sorted(rng.sample(range(2, 11), rng.randint(0, 3))),
            "specialFeatures": [1] if rng.random() < 0.2 else [],
            "cookieMaxAgeSeconds": rng.choice([86400, 2592000, 31536000, 63072000]),
            "policyUrl": f"https://www.{_slug(rng.choice(_COMPANIES))}.com/privacy-policy/",
        }
        for _ in range(count)
    ]
    return json.dumps({"gvlVersion": rng.randint(40, 90), "vendors": vendors}, separators=(",", ":"))


def _image(rng: random.Random, cdn: str, alt: str, css: str) -> str:
    stem = f"{cdn}/images/2024/{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/{_hexid(rng, 12)}"
    widths = rng.sample(_WIDTHS, rng.randint(3, 6))
    srcset = ", ".join(f"{stem}.jpg?width={w}&amp;quality=75&amp;crop=16:9 {w}w" for w in sorted(widths))
    webp = ", ".join(f"{stem}.webp?width={w} {w}w" for w in sorted(widths))
    return (
        f'<picture><source type="image/webp" srcset="{webp}" sizes="(min-width: 1024px) 300px, 50vw">'
        f'<img class="{css}" src="{stem}.jpg?width=640" srcset="{srcset}" alt="{escape(alt)}" '
        f'loading="lazy" decoding="async" width="640" height="360"></picture>'
    )


def _svg(rng: random.Random, name: str, points: int) -> str:
    coords = " ".join(
        f"{rng.choice('MLCQ')}{rng.uniform(0, 48):.2f} {rng.uniform(0, 48):.2f}" for _ in range(points)
    )
    return (
        f'<svg class="icon icon--{name}" viewBox="0 0 48 48" aria-hidden="true" focusable="false">'
        f'<path fill="currentColor" d="{coords}Z"/></svg>'
    )


_SUMMARY_OPEN = [
    "What began as a local row has become a test for",
    "Residents say the change caught",
    "The decision, announced late on Thursday, leaves",
    "Critics warn the plan could cost",
    "After months of delays,",
    "Supporters hope the move will help",
    "Insiders say",
    "Our correspondent looks at why",
    "Figures seen by this newspaper suggest",
]
_SUMMARY_REST = [
    "the whole region",
    "them by surprise",
    "hundreds of families uncertain",
    "taxpayers millions",
    "a compromise is finally in sight",
    "smaller firms survive",
    "the talks stalled over pay",
    "the issue keeps returning",
    "costs have doubled",
]
_TW = [
    "flex",
    "items-center",
    "justify-between",
    "gap-2",
    "gap-4",
    "px-4",
    "py-2",
    "md:px-6",
    "lg:grid",
    "lg:grid-cols-12",
    "text-sm",
    "md:text-base",
    "font-semibold",
    "leading-tight",
    "text-neutral-900",
    "dark:text-neutral-100",
    "hover:underline",
    "focus-visible:outline",
    "rounded-md",
    "border-b",
    "border-neutral-200",
    "shadow-sm",
    "relative",
    "overflow-hidden",
    "w-full",
    "max-w-screen-xl",
    "mx-auto",
    "hidden",
    "md:block",
    "line-clamp-3",
    "aspect-video",
    "object-cover",
    "transition-colors",
    "duration-200",
    "sr-only",
    "col-span-12",
    "lg:col-span-8",
]


def _summary(rng: random.Random) -> str:
    """A teaser's standfirst: one or two sentences of plausible copy."""
    out = (
        f"{rng.choice(_SUMMARY_OPEN)} {rng.choice(_SUMMARY_REST)}, as the {rng.choice(_NOUNS)} "
        f"{rng.choice(_VERBS)} its {rng.choice(_OBJECTS)}."
    )
    if rng.random() < 0.6:
        out += (
            f" {rng.choice(_FIRST)} {rng.choice(_LAST)} reports from {rng.choice(_PLACES)} on "
            f"what the {rng.choice(_NOUNS)} {rng.choice(['said', 'wants', 'fears', 'plans next'])}."
        )
    return out


class _Classes:
    """Class attributes in an outlet's style: BEM (classic CMS, WordPress), utility classes plus
    CSS-in-JS hashes (Next.js), page-builder element classes with ids (page builder)."""

    def __init__(self, rng: random.Random, prefix: str, layout: int) -> None:
        self.rng, self.prefix, self.layout = rng, prefix, layout

    def __call__(self, block: str, elem: str = "") -> str:
        rng, p = self.rng, self.prefix
        if self.layout == 1:
            return f"{block}_{elem or 'root'}__{_b36(rng, 5)} css-{_b36(rng, 7)} " + " ".join(
                rng.sample(_TW, rng.randint(1, 4))
            )
        if self.layout == 2:
            return (
                f"pb-element pb-element-{_hexid(rng, 7)} pb-widget-{block}"
                + (f" pb-{elem}" if elem else "")
                + f" pb-col-{rng.choice([25, 33, 50, 66, 100])}"
            )
        name = f"{p}-{block}__{elem}" if elem else f"{p}-{block}"
        mods = " ".join(
            f"{name}--{m}"
            for m in rng.sample(
                ["compact", "large", "dark", "sticky", "open", "wide", "news"], rng.randint(0, 2)
            )
        )
        return f"{name} {mods}".strip() if self.layout == 0 else f"wp-block-{block} {name} {mods}".strip()


def _tracking(module: str, position: int, extra: str) -> str:
    """A data-attribute JSON blob, HTML-escaped as templates emit it."""
    return escape(
        json.dumps(
            {"module": module, "position": position, "component": extra, "action": "click"},
            separators=(",", ":"),
        )
    )


def _sprite(rng: random.Random, symbols: int) -> str:
    """An inline SVG icon sprite (hidden): symbols with one to three long paths each."""
    out = []
    for k in range(symbols):
        paths = "".join(
            '<path d="'
            + " ".join(
                f"{rng.choice('MLCQSA')}{rng.uniform(0, 24):.3f},{rng.uniform(0, 24):.3f}"
                for _ in range(rng.randint(12, 50))
            )
            + 'Z"/>'
            for _ in range(rng.randint(1, 2))
        )
        out.append(f'<symbol id="icon-{rng.choice(_ELEMS)}-{k}" viewBox="0 0 24 24">{paths}</symbol>')
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" style="position:absolute;width:0;height:0;'
        'overflow:hidden" aria-hidden="true">' + "".join(out) + "</svg>"
    )


@dataclass(frozen=True)
class Chrome:
    """An outlet's page furniture: built once per outlet, shared by all its article pages."""

    prefix: str  # CSS class prefix
    weight: int  # the outlet's target page weight, bytes
    head: str  # extra <head> content: meta/link/preload tags, inline CSS and JS, JSON-LD
    consent: str  # consent dialog
    menu: str  # mega-menu (hundreds of links) and logo
    rail: str  # ad slots and newsletter promo beside/after the article
    footer: str  # footer with link columns, social icons, legal text
    tail: str  # scripts at the end of <body>
    teasers: tuple[str, ...]  # teaser cards (picture, kicker, headline, standfirst, meta row, icons);
    # a page shows a window of them: a "most read" list, then a grid
    recs: tuple[str, ...]  # JSON recommendation records; a page embeds a window of them
    comments: tuple[str, ...]  # reader comments (layout 3 shows a window of them)
    next_static: str  # layout 1: the outlet-wide part of __NEXT_DATA__ (JSON members)
    wrap_open: str  # nested layout <div>s around the page content (real pages nest 15-25 deep)
    wrap_close: str
    cards: int  # teaser cards in a page's "more stories" grid, on average
    digest: str  # hash of all of the above, for article ETags


def outlet_weight(seed: int, index: int) -> int:
    """An outlet's target weight: quantile ``u`` of the lognormal, ``u`` from a golden-ratio
    sequence over outlet indices (so any number of outlets spans the distribution)."""
    from statistics import NormalDist

    u = (random.Random(f"{seed}:weights").random() + (index + 1) * _GOLDEN) % 1.0
    u = min(max(u, 0.03), 0.97)
    weight = WEIGHT_MEDIAN * math.exp(WEIGHT_SIGMA * NormalDist().inv_cdf(u))
    return int(min(max(weight, WEIGHT_RANGE[0]), WEIGHT_RANGE[1]))


def build_chrome(seed: int, index: int, name: str, layout: int) -> Chrome:
    rng = random.Random(f"{seed}:chrome:{name}")
    weight = outlet_weight(seed, index)
    site = name.title()
    domain = f"www.{name}.example"
    cdn = f"https://cdn.{name}.example"
    prefix = rng.choice(["o", "gs", "nw", "ds", "st", "ui", "c", "pb"]) + str(rng.randint(1, 9))
    palette = [f"#{_hexid(rng, 6)}" for _ in range(6)] + ["#fff", "#000", "#121212", "transparent"]
    scale = weight / WEIGHT_MEDIAN

    # markup scales sublinearly with weight (element counts vs weight, real pages: r ≈ 0.5)
    ms = min(max(scale**0.6, 0.4), 1.8)
    k = _Classes(rng, prefix, layout)

    def icon(name_: str) -> str:
        return (
            f'<svg class="icon icon--{name_}" aria-hidden="true" focusable="false">'
            f'<use href="#icon-{name_}"></use></svg>'
        )

    # page wrappers: real pages nest their content 15-25 elements deep
    n_wrap = {0: 5, 1: 6, 2: 8, 3: 6}[layout] + rng.randint(0, 2)
    wraps = [
        ("page", "wrapper"),
        ("page", "inner"),
        ("layout", "container"),
        ("layout", "row"),
        ("layout", "main"),
        ("region", "content"),
        ("region", "inner"),
        ("grid", "cell"),
        ("grid", "inner"),
        ("section", "body"),
    ][:n_wrap]
    wrap_open = "".join(f'<div class="{k(b, e)}" data-region="{b}-{e}">' for b, e in wraps)
    wrap_close = "</div>" * n_wrap

    # mega-menu: sections × topics, each column a small tree of divs, buttons and icons
    sections = rng.sample(_SECTIONS, rng.randint(10, 18))
    n_topics = max(2, round(rng.randint(3, 5) * ms))
    cols = []
    for section in sections:
        topics = rng.sample(_TOPICS, n_topics)
        links = "".join(
            f'<li class="{k("mega-menu", "item")}"><a class="{k("mega-menu", "link")}" '
            f'href="/{_slug(section)}/{_slug(t)}/" data-link-name="nav : {section.lower()} : '
            f'{t.lower()}">{t}</a></li>'
            for t in topics
        )
        cols.append(
            f'<div class="{k("mega-menu", "column")}" data-section="{_slug(section)}">'
            f'<div class="{k("mega-menu", "head")}"><a class="{k("mega-menu", "title")}" '
            f'href="/{_slug(section)}/">'
            f'<span>{section}</span></a><button class="{k("mega-menu", "toggle")}" aria-expanded='
            f'"false" aria-label="Show {section} topics">{icon("chevron")}</button></div>'
            f'<ul class="{k("mega-menu", "list")}">{links}</ul></div>'
        )
    icons = "".join(
        _svg(rng, n, rng.randint(20, 60))
        for n in ("search", "menu", "close", "account", "bookmark", "chevron")
    )
    logo = _svg(rng, "logo", int(rng.randint(150, 400) * min(scale, 2.0)))
    trending = "".join(
        f'<li class="{k("trending", "item")}"><a class="{k("trending", "link")}" href="/topic/'
        f'{_slug(t)}/">{t}</a></li>'
        for t in rng.sample(_TOPICS, rng.randint(5, 9))
    )
    breaking = "".join(
        f'<div class="{k("breaking", "item")}"><a href="/live/{_hexid(rng, 8)}"><span class="'
        f'{k("breaking", "label")}">Live</span><span>{escape(_headline(rng))}</span></a></div>'
        for _ in range(rng.randint(2, 4))
    )
    sprite = _sprite(rng, max(4, round(rng.randint(6, 12) * ms)))
    menu = (
        f'{sprite}<div class="{k("header", "bar")}"><div class="{k("header", "inner")}"><a class="'
        f'{k("header", "logo")}" href="/" aria-label="{site} home">{logo}</a><div class="'
        f'{k("header", "actions")}"><button class="{k("header", "toggle")}" aria-expanded="false">{icons}'
        f'<span class="{k("visually-hidden")}">Menu</span></button><a class="{k("header", "account")}" '
        f'href="/account/">{icon("account")}<span>Sign in</span></a><a class="{k("button")}" href="/'
        f'subscribe/?ref=header">Subscribe</a></div></div><div class="{k("trending")}"><span class="'
        f'{k("trending", "title")}">Trending</span><ul class="{k("trending", "list")}">{trending}</ul>'
        f'</div><div class="{k("breaking")}" role="region" aria-label="Breaking news">{breaking}'
        f'</div></div><nav class="{k("mega-menu")}" aria-label="All sections" hidden><div class="'
        f'{k("mega-menu", "inner")}"><div class="{k("mega-menu", "grid")}">{"".join(cols)}</div></div>'
        "</nav>"
    )

    purposes = [
        "Store and/or access information on a device",
        "Use limited data to select advertising",
        "Create profiles for personalised advertising",
        "Measure advertising performance",
        "Measure content performance",
        "Understand audiences through statistics",
        "Develop and improve services",
        "Use limited data to select content",
    ]
    toggles = "".join(
        f'<div class="{k("consent", "purpose")}"><div class="{k("consent", "row")}"><label class="'
        f'{k("consent", "label")}" for="purpose-{j}"><span>{p}</span></label><span class="'
        f'{k("consent", "switch")}"><input type="checkbox" id="purpose-{j}" role="switch"><span class="'
        f'{k("consent", "slider")}"></span></span></div><span class="{k("consent", "desc")}">{site} and its '
        f"partners may {p.lower()} for purpose {j + 1} of the framework.</span></div>"
        for j, p in enumerate(purposes[: max(4, round(8 * min(ms, 1.0)))])
    )
    consent = (
        f'<div id="sp_message_container_{rng.randint(100000, 999999)}" class="{k("consent")}" '
        f'role="dialog" aria-modal="true" hidden><div class="{k("consent", "inner")}"><div class="'
        f'{k("consent", "header")}"><span class="{k("consent", "title")}">We value your privacy</span>'
        f'<button class="{k("consent", "close")}" aria-label="Close">{icon("close")}</button></div>'
        f'<div class="{k("consent", "body")}"><p>{site} and our {rng.randint(120, 900)} partners '
        "store and access information on your device, such as cookies, and process personal "
        "data, such as unique identifiers, for personalised advertising and content, "
        "advertising and content measurement, audience research and services development.</p>"
        "<p>You can accept or reject, or change your choices at any time from the privacy link "
        f'at the bottom of every page.</p><div class="{k("consent", "purposes")}">{toggles}</div>'
        "</div>"
        f'<div class="{k("consent", "footer")}">'
        f'<button class="{k("button")}" data-choice="accept">Accept all</button>'
        f'<button class="{k("button")}" data-choice="reject">Reject all</button>'
        f'<button class="{k("button")}" data-choice="options">More options</button></div></div></div>'
    )

    summary_tag = "p" if layout in (0, 3) else "div"

    def teaser(pos: int) -> str:
        headline, section = _headline(rng), rng.choice(sections)
        href = f"/{_slug(section)}/{_slug(headline)[:60]}-{rng.randint(10**6, 10**7)}.html"
        badge = f'<span class="{k("card", "badge")}">{icon("play")}Video</span>' if rng.random() < 0.2 else ""
        summary = (
            f'<{summary_tag} class="{k("card", "summary")}">{escape(_summary(rng))}</{summary_tag}>'
            if rng.random() < 0.85
            else ""
        )
        return (
            f'<div class="{k("card")}" data-component="card" data-content-id="{_hexid(rng, 24)}" '
            f'data-tracking="{_tracking("teaser", pos, rng.choice(_BLOCKS))}"><div class="'
            f'{k("card", "inner")}"><div class="{k("card", "media")}"><a href="{href}" tabindex="-1" '
            'aria-hidden="true">'
            f'{_image(rng, cdn, headline, k("card", "image"))}</a>{badge}</div><div class="'
            f'{k("card", "content")}"><a class="{k("card", "kicker")}" href="/{_slug(section)}/">'
            f"{section}</a>"
            f'<h3 class="{k("card", "headline")}"><a class="'
            f'{k("card", "link")}" href="{href}" data-link-name="teaser"><span class="'
            f'{prefix}-teaser__title">{escape(headline)}</span></a></h3>{summary}<div class="'
            f'{k("card", "meta")}"><span class="'
            f'{k("card", "time")}">{icon("clock")}{rng.randint(1, 23)} hours ago</span><button '
            f'class="{k("card", "save")}" aria-label="Save this article" data-action="bookmark">'
            f"{icon('bookmark')}</button></div></div></div></div>"
        )

    teasers = tuple(teaser(j) for j in range(max(30, int(40 * ms))))
    cards = max(4, round(rng.uniform(7, 11) * ms))  # grid cards a page shows, besides "most read"

    def rec() -> str:
        headline = _headline(rng)
        return json.dumps(
            {
                "id": _hexid(rng, 24),
                "headline": headline,
                "section": rng.choice(sections),
                "url": f"https://{domain}/{_slug(rng.choice(sections))}/{_slug(headline)[:60]}",
                "image": {
                    "src": f"{cdn}/images/{_hexid(rng, 16)}.jpg",
                    "width": 1200,
                    "height": 675,
                    "alt": headline,
                    "credit": f"{rng.choice(_FIRST)} {rng.choice(_LAST)}/Agency",
                },
                "score": round(rng.random(), 4),
                "algorithm": rng.choice(["collab-v3", "popular-24h", "section-recent", "semantic-v2"]),
            },
            separators=(",", ":"),
        )

    recs = tuple(rec() for _ in range(max(40, int(180 * scale))))

    def comment() -> str:
        who = f"{rng.choice(_FIRST)}{rng.choice(_LAST)}{rng.randint(1, 99)}"
        remark = " ".join(rng.sample(_REMARKS, rng.randint(1, 3)))
        return (
            f'<li class="comment" id="comment-{rng.randint(10**6, 10**7)}"><div class="comment-body">'
            f'<img class="avatar" src="https://secure.gravatar.com/avatar/{_hexid(rng, 32)}'
            '?s=48&amp;d=mm" '
            f'alt="" width="48" height="48"><span class="comment__name">{who}</span> '
            f'<span class="comment__when">{rng.randint(1, 23)} hours ago</span><p>{escape(remark)}</p>'
            f'<a class="comment-reply-link" href="#respond">Reply</a></div></li>'
        )

    comments = tuple(comment() for _ in range(60)) if layout == 3 else ()

    ads = "".join(
        f'<div class="{k("ad-slot", "container")}" data-label="Advertisement"><div class="'
        f'{k("ad-slot")}" id="div-gpt-ad-{rng.randint(10**12, 10**13)}-{j}" '
        f'data-ad-unit="/{rng.randint(1000, 99999)}/{name}/article/{slot}" data-sizes='
        f'"[[300,250],[300,600],[728,90],[970,250]]" data-refresh="{rng.choice([30, 60])}">'
        f"</div></div>"
        for j, slot in enumerate(("top", "mpu1", "mpu2", "sticky", "bottom"))
    )
    rail = (
        f'<div class="{k("rail")}">{ads}<div class="{k("promo")}"><span class="'
        f'{k("promo", "title")}">Subscribe to {site}</span><a class="{k("button")}" '
        f'href="/subscribe/?ref=rail">Try 1 month free</a></div></div>'
    )

    footer_cols = "".join(
        f'<div class="{k("footer", "col")}"><span class="{k("footer", "title")}">{s}</span><ul class="'
        f'{k("footer", "list")}">'
        + "".join(
            f'<li class="{k("footer", "item")}"><a href="/{_slug(s)}/{_slug(t)}/">{t}</a></li>'
            for t in rng.sample(_TOPICS, max(3, round(rng.randint(4, 8) * ms)))
        )
        + "</ul></div>"
        for s in rng.sample(sections, min(len(sections), 6))
    )
    social = "".join(
        f'<a class="{k("social")}" href="https://{net}.com/{name}" aria-label="{site} on '
        f'{net}">{_svg(rng, net, rng.randint(30, 90))}</a>'
        for net in ("facebook", "x", "instagram", "youtube", "linkedin", "tiktok")
    )
    legal_links = "".join(
        f'<li><a href="/{_slug(t)}/">{t}</a></li>'
        for t in (
            "Terms and conditions",
            "Privacy notice",
            "Cookie settings",
            "Accessibility",
            "Complaints",
            "Advertise with us",
        )
    )
    footer = (
        f'<div class="{k("footer")}" role="contentinfo"><div class="{k("footer", "inner")}">'
        f'<div class="{k("footer", "columns")}">{footer_cols}</div><div class="'
        f'{k("footer", "social")}">{social}</div>'
        f'<div class="{k("footer", "legal")}"><p>{site} is part of the {site} Media Group. Registered '
        f"office: {rng.randint(1, 200)} {rng.choice(_LAST)} Street, {rng.choice(_PLACES)}. Company "
        f"number {rng.randint(10**6, 10**7)}. Regulated by the Independent Press Standards "
        f"Organisation.</p><p>Copyright {site} Media Group. Reproduction of any part of this site "
        f'without written permission is prohibited.</p><ul class="{k("footer", "links")}">{legal_links}'
        f"</ul></div></div></div>"
    )
    templates = "".join(
        f'<template id="tpl-{t}"><div class="{k(t)}" role="status"><div class="{k(t, "inner")}"><span class="'
        f'{k(t, "text")}">{msg}</span><button class="{k("button")}" data-action="{t}">{cta}</button>'
        f'<button class="{k(t, "close")}" aria-label="Close">{icon("close")}</button></div></div></template>'
        for t, msg, cta in (
            ("toast", "Saved to your reading list", "View list"),
            ("paywall", f"You have read all your free articles this month on {site}", "Subscribe"),
            ("app-banner", f"Read {site} in the app", "Open app"),
        )
    )

    # <head>: tags, JSON-LD (not an article type), inline CSS and scripts
    tags = [
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        '<meta name="robots" content="max-image-preview:large,max-snippet:-1">',
        f'<meta name="theme-color" content="{palette[0]}">',
        f'<meta property="fb:app_id" content="{rng.randint(10**14, 10**15)}">',
        f'<meta name="twitter:site" content="@{name}">',
        '<meta name="twitter:card" content="summary_large_image">',
        f'<meta name="google-site-verification" content="{_b36(rng, 43)}">',
        f'<link rel="alternate" type="application/rss+xml" title="{site}" href="/feed.xml">',
        '<link rel="manifest" href="/manifest.json">',
    ]
    tags += [
        f'<link rel="preconnect" href="https://{h}" crossorigin>'
        for h in rng.sample(
            [
                "securepubads.g.doubleclick.net",
                "www.googletagmanager.com",
                "cdn.cookielaw.org",
                "c.amazon-adsystem.com",
                "static.chartbeat.com",
                "cdn.permutive.com",
                "fonts.gstatic.com",
                "connect.facebook.net",
                "cdn.taboola.com",
            ],
            6,
        )
    ]
    tags += [
        f'<link rel="preload" as="font" type="font/woff2" href="{cdn}/fonts/{f}-{_hexid(rng, 8)}.woff2" '
        "crossorigin>"
        for f in ("serif-regular", "serif-bold", "sans-regular", "sans-bold")
    ]
    tags += [f'<link rel="icon" sizes="{s}x{s}" href="{cdn}/icons/favicon-{s}.png">' for s in (16, 32, 192)]
    n_js = rng.randint(8, 24)
    chunks = [
        f"{cdn}/static/chunks/{rng.choice(['framework', 'main', 'pages', 'vendor', 'commons', 'app'])}-"
        f"{_hexid(rng, 16)}.js"
        for _ in range(n_js)
    ]
    tags += [f'<link rel="preload" as="script" href="{c}">' for c in chunks[: n_js // 2]]
    tags += [
        f'<link rel="stylesheet" href="{cdn}/css/{_slug(x)}.{_hexid(rng, 10)}.css">'
        for x in rng.sample(_BLOCKS, rng.randint(2, 6))
    ]
    ld = json.dumps(
        {
            "@context": "https://schema.org",
            "@graph": [
                {
                    "@type": "Organization",
                    "@id": f"https://{domain}/#org",
                    "name": site,
                    "url": f"https://{domain}/",
                    "logo": {"@type": "ImageObject", "url": f"{cdn}/logo.png", "width": 600, "height": 60},
                    "sameAs": [f"https://{n}.com/{name}" for n in ("facebook", "x", "instagram", "youtube")],
                },
                {
                    "@type": "WebSite",
                    "@id": f"https://{domain}/#website",
                    "name": site,
                    "url": f"https://{domain}/",
                    "potentialAction": {
                        "@type": "SearchAction",
                        "target": f"https://{domain}/search?q={{q}}",
                        "query-input": "required name=q",
                    },
                },
            ],
        },
        separators=(",", ":"),
    )
    script_tags = "".join(f'<script src="{c}" defer></script>' for c in chunks)
    # what a page carries besides the fillers (CSS, JS, data): sized exactly, the fillers take the rest
    mean_teaser = sum(map(len, teasers)) / len(teasers)
    base = (
        sum(map(len, (menu, consent, rail, footer, *tags, ld, script_tags, templates, wrap_open)))
        + int((6.5 + cards) * mean_teaser)
        + int(0.08 * weight)
        + (9 * len(comments[0]) if comments else 0)
        + 8000
    )
    free = max(20_000, weight - base)
    shares = {0: (0.30, 0.55, 0.15), 1: (0.20, 0.45, 0.35), 2: (0.55, 0.35, 0.10), 3: (0.45, 0.45, 0.10)}[
        layout
    ]
    css = _css(rng, prefix, palette, int(free * shares[0]), atomic=layout in (1, 2))
    vendors = _vendors(rng, max(10, int(free * shares[2]) // 330)) if layout != 1 else ""
    data_layer = json.dumps(
        {
            "site": site,
            "platform": ["cms", "nextjs", "pagebuilder", "wordpress"][layout],
            "gtm": f"GTM-{_b36(rng, 7).upper()}",
            "ga4": f"G-{_b36(rng, 10).upper()}",
            "sections": sections,
        },
        separators=(",", ":"),
    )
    analytics = (
        "<script>window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments)}"
        f'gtag("js",new Date());gtag("config","G-{_b36(rng, 10).upper()}");'
        f"window.__SITE__={data_layer};</script>"
    )
    consent_js = (
        f"<script>window._sp_queue=[];window._sp_={{config:{{accountId:{rng.randint(100, 9999)},"
        f'baseEndpoint:"https://cdn.privacy-mgmt.com",propertyHref:"https://{domain}"}}}};'
        f"window.__tcfapi_gvl={vendors or 'null'};</script>"
    )
    js_main = _js(rng, int(free * shares[1] * 0.6), ["N_E", "app", "pb", "wp"][layout])
    js_tail = _js(rng, int(free * shares[1] * 0.4), ["N_E", "app", "pb", "wp"][layout])
    next_static = ""
    if layout == 1:  # Next.js: CSS-in-JS in the head, the data in __NEXT_DATA__, chunks at the end
        nav = [
            {
                "title": s,
                "href": f"/{_slug(s)}/",
                "children": [
                    {"title": t, "href": f"/{_slug(s)}/{_slug(t)}/"} for t in rng.sample(_TOPICS, 8)
                ],
            }
            for s in sections
        ]
        blobs = [rec() for _ in range(max(10, int(free * shares[2]) // 600))]
        next_static = (
            '"navigation":'
            + json.dumps(nav, separators=(",", ":"))
            + ',"ads":{"network":'
            + str(rng.randint(1000, 99999))
            + ',"slots":'
            + json.dumps(
                [
                    {
                        "id": _hexid(rng, 8),
                        "sizes": [[300, 250], [728, 90]],
                        "targeting": {"pos": str(k), "sec": rng.choice(sections)},
                    }
                    for k in range(12)
                ],
                separators=(",", ":"),
            )
            + '},"trending":['
            + ",".join(blobs)
            + "]"
        )
        head = (
            "".join(tags) + f'<style data-emotion="css" data-s="">{css}</style>'
            f'<script type="application/ld+json">{ld}</script>{analytics}{consent_js}'
        )
        tail = (
            f"<script>{js_main}</script>{script_tags}<script>{js_tail}</script>"
            f"<script>self.__next_f=self.__next_f||[];</script>{templates}"
        )
    elif layout == 3:  # WordPress: wp-block-library and global styles inline, jQuery and plugins
        head = (
            "".join(tags) + f'<link rel="https://api.w.org/" href="https://{domain}/wp-json/">'
            f"<style id='wp-block-library-inline-css'>{css[: len(css) // 2]}</style>"
            f"<style id='global-styles-inline-css'>{css[len(css) // 2 :]}</style>"
            f'<script type="application/ld+json" class="yoast-schema-graph">{ld}</script>{analytics}'
            f"{consent_js}<script src='https://{domain}/wp-includes/js/jquery/jquery.min.js?ver=3.7.1'>"
            f"</script><script id='wp-plugins-js'>{js_main}</script>"
        )
        tail = (
            script_tags.replace("static/chunks", "wp-content/plugins")
            + f"<script id='theme-js'>{js_tail}</script>{templates}"
        )
    else:  # classic CMS (0) and page builder (2)
        head = (
            "".join(tags) + f'<style>{css}</style><script type="application/ld+json">{ld}</script>'
            f"{consent_js}{analytics}<script>{js_main}</script>"
        )
        tail = f"{templates}{script_tags}<script>{js_tail}</script>"
    parts = (
        prefix,
        head,
        consent,
        menu,
        rail,
        footer,
        tail,
        *teasers,
        *recs,
        *comments,
        next_static,
        wrap_open,
        wrap_close,
        str(cards),
    )
    digest = hashlib.sha1("\x00".join(parts).encode()).hexdigest()
    return Chrome(
        prefix,
        weight,
        head,
        consent,
        menu,
        rail,
        footer,
        tail,
        teasers,
        recs,
        comments,
        next_static,
        wrap_open,
        wrap_close,
        cards,
        digest,
    )


@dataclass(frozen=True)
class PageChrome:
    """One article page's share of its outlet's chrome: windows into the teaser, recommendation
    and comment pools (small ints, drawn per page)."""

    teaser_start: int
    teasers: int
    rec_start: int
    recs: int
    comments: int
    cards: int = 0


def page_chrome(chrome: Chrome, seed: int, path: str) -> PageChrome:
    rng = random.Random(f"{seed}:page:{path}")
    factor = min(max(math.exp(rng.gauss(0.0, PAGE_SIGMA)), 0.85), 1.3)
    # the recommendation blob carries the page-to-page spread: ~8% of the weight on average
    rec_len = len(chrome.recs[0]) + 1
    recs = max(0, int((0.08 + factor - 1.0) * chrome.weight / rec_len))
    return PageChrome(
        rng.randrange(len(chrome.teasers)),
        rng.randint(5, 8),
        rng.randrange(len(chrome.recs)),
        recs,
        rng.randint(2, 10) if chrome.comments else 0,
        max(3, round(chrome.cards * rng.uniform(0.8, 1.2))),
    )


def _window(pool: tuple[str, ...], start: int, count: int) -> list[str]:
    return [pool[(start + k) % len(pool)] for k in range(count)]


def render_article(
    layout: int,
    site: str,
    title: str,
    author: str,
    when: datetime,
    paragraphs: list[str],
    related: list[str],
    chrome: Chrome | None = None,
    page: PageChrome | None = None,
) -> str:
    """One article page. Without ``chrome`` the bare page (~4 KB); with it the outlet's chrome
    around the same article, metadata and related links."""
    iso = when.isoformat()
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    head_meta = (
        f'<meta property="og:title" content="{escape(title)}"><meta property="og:site_name" content="{site}">'
    )
    c = chrome
    pc = page or PageChrome(0, 0, 0, 0, 0)
    head = menu = consent = rail = footer = tail = teasers = recs = wo = wc = ""
    if c is not None:
        head, menu, consent, rail, footer, tail = c.head, c.menu, c.consent, c.rail, c.footer, c.tail
        wo, wc = c.wrap_open, c.wrap_close
        p_ = c.prefix
        teasers = (
            f'<section class="{p_}-most-read" data-component="most-read"><h2 class="'
            f'{p_}-most-read__title">Most read</h2><ol class="{p_}-most-read__list">'
            + "".join(
                f'<li class="{p_}-most-read__item">{t}</li>'
                for t in _window(c.teasers, pc.teaser_start, pc.teasers)
            )
            + f'</ol></section><div class="{p_}-more" data-component="more-stories"><div class="'
            f'{p_}-more__header"><h2 class="{p_}-more__title">More stories</h2></div><div class="'
            f'{p_}-more__grid">'
            + "".join(_window(c.teasers, pc.teaser_start + pc.teasers, pc.cards))
            + "</div></div>"
        )
        rec_items = ",".join(_window(c.recs, pc.rec_start, pc.recs))
        if layout != 1:
            recs = f'<script type="application/json" id="recommendations">[{rec_items}]</script>'
    if layout == 0:  # classic: meta tags, article element
        return (
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)} | {site}'
            f'</title>{head_meta}<meta property="article:published_time" content="{iso}">'
            f'<meta name="author" content="{escape(author)}">{head}</head><body>{_COOKIE}{consent}{wo}'
            f'<header><a href="/">{site}</a><nav><ul>{_NAV}</ul></nav>{menu}</header><main><article>'
            f"<h1>{escape(title)}</h1>"
            f'<p class="byline">By {escape(author)} · <time datetime="{iso}">{when:%d %B %Y}</time></p>'
            f'<div class="article-body">{body}</div></article>{_related(site, related)}{rail}{teasers}'
            f"</main>{_NEWSLETTER}{_FOOTER.format(site=site)}{footer}{wc}{recs}{tail}</body></html>"
        )
    if layout == 1:  # JSON-LD NewsArticle, div soup
        ld = json.dumps(
            {
                "@context": "https://schema.org",
                "@type": "NewsArticle",
                "headline": title,
                "datePublished": iso,
                "author": [{"@type": "Person", "name": author}],
                "publisher": {"@type": "Organization", "name": site},
            }
        )
        next_data = ""
        if c is not None:  # Next.js: the page's data, article included, as JSON for hydration
            article = json.dumps(
                {
                    "headline": title,
                    "author": author,
                    "datePublished": iso,
                    "body": [{"type": "paragraph", "text": p} for p in paragraphs],
                    "related": related,
                },
                separators=(",", ":"),
            )
            payload = (
                '{"props":{"pageProps":{"article":'
                + article
                + ',"recommendations":['
                + rec_items
                + "],"
                + c.next_static
                + '},"__N_SSG":true},"page":'
                '"/[section]/[...slug]","buildId":"' + c.digest[:21] + '","isFallback":false,"gsp":true}'
            ).replace("</", "<\\/")
            next_data = f'<script id="__NEXT_DATA__" type="application/json">{payload}</script>'
        return (
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)} - {site}'
            f'</title>{head_meta}<script type="application/ld+json">{ld}</script>{head}</head><body>'
            f'<div id="__next">{wo}<div id="top">{_COOKIE}{consent}<div class="masthead">{site}</div>'
            f'<div class="menu"><ul>{_NAV}</ul>{menu}</div></div><div class="content"><div class="story">'
            f'<h1 class="headline">{escape(title)}'
            f'</h1><div class="meta"><span class="author">{escape(author)}</span></div><div class="text">'
            f'{body}</div></div><div class="sidebar">{_related(site, related)}{_NEWSLETTER}{rail}</div>'
            f"</div>{teasers}{_FOOTER.format(site=site)}{footer}{wc}</div>{next_data}{tail}</body></html>"
        )
    if layout == 2:  # section with share bar and inline ads
        ad = '<div class="ad">Advertisement</div>'
        half = len(paragraphs) // 2
        body = (
            "".join(f"<p>{escape(p)}</p>" for p in paragraphs[:half])
            + ad
            + "".join(f"<p>{escape(p)}</p>" for p in paragraphs[half:])
        )
        return (
            f'<!DOCTYPE html><html lang="en-GB"><head><meta charset="utf-8">'
            f'<title>{escape(title)}</title>{head_meta}<meta name="date" content="{iso}">'
            f'<meta name="byl" content="By {escape(author)}">{head}'
            f'</head><body>{wo}<nav class="top"><ul>{_NAV}</ul>{menu}</nav>{_COOKIE}{consent}'
            f'<section class="main"><header><h1>{escape(title)}</h1><div class="share"><a>Share on X</a>'
            "<a>Email</a><a>Print</a>"
            f'</div><address>{escape(author)}</address></header><div itemprop="articleBody">{body}</div>'
            f"</section>{_related(site, related)}{rail}{teasers}{_FOOTER.format(site=site)}{footer}"
            f"{wc}{recs}{tail}</body></html>"
        )
    # layout 3: minimal wire-style page, comments block
    comments = "".join(_window(c.comments, 0, pc.comments)) if c is not None and c.comments else ""
    if comments:
        comments = f'<ol class="comment-list">{comments}</ol>'
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{escape(title)} — {site}</title>'
        f'{head_meta}<meta property="article:published_time" content="{iso}">{head}</head><body>'
        f'{consent}{wo}<div class="wrap"><div class="hdr">{site} <ul>{_NAV}</ul>{menu}</div>'
        '<article class="post">'
        f'<h2 class="entry-title">{escape(title)}</h2><div class="entry-meta">{escape(author)} — '
        f'{when:%Y-%m-%d %H:%M} UTC</div><div class="entry-content">{body}</div></article>'
        f'<div id="comments"><h3>3 comments</h3><p>Great reporting!</p><p>First!</p>{comments}</div>'
        f"{_related(site, related)}{rail}{teasers}</div>{_FOOTER.format(site=site)}{footer}{wc}{recs}"
        f"{tail}</body></html>"
    )


def _rss(outlet: Outlet, items: list[dict[str, Any]]) -> bytes:
    entries = "".join(
        f"<item><title>{escape(i['title'])}</title><link>{outlet.base}{i['path']}</link>"
        f"<guid>{outlet.base}{i['path']}</guid><pubDate>{format_datetime(i['when'], usegmt=True)}</pubDate>"
        f"<description>{escape(i['lead'])}</description></item>"
        for i in items
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{outlet.name}</title>'
        f"<link>{outlet.base}/</link><description>News</description>{entries}</channel></rss>"
    ).encode()


def _atom(outlet: Outlet, items: list[dict[str, Any]], updated: datetime) -> bytes:
    entries = "".join(
        f'<entry><title>{escape(i["title"])}</title><link href="{outlet.base}{i["path"]}"/>'
        f"<id>{outlet.base}{i['path']}</id><published>{i['when'].isoformat()}</published>"
        f"<updated>{i['when'].isoformat()}</updated><summary>{escape(i['lead'])}</summary></entry>"
        for i in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>{outlet.name}</title><id>{outlet.base}/</id><updated>{updated.isoformat()}</updated>"
        f"{entries}</feed>"
    ).encode()


def _news_sitemap(outlet: Outlet, items: list[dict[str, Any]]) -> bytes:
    entries = "".join(
        f"<url><loc>{outlet.base}{i['path']}</loc><lastmod>{i['when'].isoformat()}</lastmod><news:news>"
        f"<news:publication><news:name>{outlet.name}</news:name><news:language>en</news:language>"
        f"</news:publication><news:publication_date>{i['when'].isoformat()}</news:publication_date>"
        f"<news:title>{escape(i['title'])}</news:title></news:news></url>"
        for i in items
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
        ' xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">' + entries + "</urlset>"
    ).encode()


# -- the web -----------------------------------------------------------------------------------


class NewsWeb:
    def __init__(
        self,
        articles: int,
        outlets: int,
        days: int,
        seed: int = 7,
        ecb_path: Path | None = DEFAULT_ECB,
        now: datetime | None = None,
    ) -> None:
        self.n_articles, self.n_outlets, self.days = articles, outlets, days
        self.seed = seed
        self.rng = random.Random(seed)
        self.now = (now or datetime.now(UTC)).replace(microsecond=0)
        self.text_source = "builtin"
        self.events_pool: list[list[str]] = []
        if ecb_path is not None and ecb_path.is_file():
            self.events_pool = _ecb_events(ecb_path)
            self.text_source = f"ECB+ dev ({ecb_path})"
        if not self.events_pool:
            self.events_pool = _builtin_events(60, self.rng)
        self.outlets = [
            Outlet(
                name=f"outlet{i:02d}",
                kind="sitemap"
                if i % SITEMAP_EVERY == SITEMAP_EVERY - 1
                else ("rss" if i % 2 == 0 else "atom"),
                layout=i % 4,
            )
            for i in range(outlets)
        ]
        self.resources: dict[str, dict[str, Resource]] = {o.name: {} for o in self.outlets}
        self.chrome: dict[str, Chrome] = {}
        self._weights: dict[str, Any] | None = None
        self.items: dict[str, list[dict[str, Any]]] = {o.name: [] for o in self.outlets}
        self.log = RequestLog()  # every outlet's requests, in one order
        self.wire_copies = 0
        self.events = 0

    # building needs the ports (absolute URLs in feeds), so servers start first
    def __enter__(self) -> NewsWeb:
        for outlet in self.outlets:
            outlet.server = LoopbackServer(
                functools.partial(self._answer, outlet.name), name=outlet.name, log=self.log
            ).start()
        self._build()
        return self

    def __exit__(self, *exc: object) -> None:
        for outlet in self.outlets:
            if outlet.server is not None:
                outlet.server.stop()

    @property
    def hits(self) -> list[RequestRecord]:
        """Every request to every outlet, oldest first (``server`` is the outlet)."""
        return self.log.records()

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
                    lead = (
                        f"{outlet.name.title()} reporting, event {event_no}: at least {figure} "
                        f"people were affected, officials said on {when:%A}."
                    )
                    paragraphs = [lead, *picked]
                    title = f"{picked[0][:70].rstrip()} ({figure})"
                item = {
                    "path": f"/news/{when:%Y/%m/%d}/story-{event_no}-{j}.html",
                    "title": title,
                    "when": when,
                    "paragraphs": paragraphs,
                    "lead": paragraphs[0][:200],
                }
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
            chrome = self.chrome[outlet.name] = build_chrome(
                self.seed, self.outlets.index(outlet), outlet.name, outlet.layout
            )
            for item in items:
                # pages are rendered on request from these few fields and the outlet's chrome; the
                # ETag hashes the same inputs, so it names exactly the bytes a request gets
                item["author"] = f"Reporter {rng.randint(1, 40)}"
                item["related"] = titles
                item["page"] = page_chrome(chrome, self.seed, item["path"])
                inputs = json.dumps(
                    [
                        chrome.digest,
                        outlet.layout,
                        outlet.name,
                        item["title"],
                        item["author"],
                        item["when"].isoformat(),
                        item["paragraphs"],
                        titles,
                        dataclasses.astuple(item["page"]),
                    ]
                )
                etag = '"' + hashlib.sha1(inputs.encode()).hexdigest()[:16] + '"'
                self.resources[outlet.name][item["path"]] = Resource(
                    None,
                    "text/html; charset=utf-8",
                    etag,
                    item["when"],
                    functools.partial(self.render_page, outlet, item),
                )
            updated = items[0]["when"] if items else self.now
            if outlet.kind == "rss":
                self._add(outlet.name, "/feed.xml", _rss(outlet, items), "application/rss+xml", updated)
            elif outlet.kind == "atom":
                self._add(
                    outlet.name, "/atom.xml", _atom(outlet, items, updated), "application/atom+xml", updated
                )
            else:
                self._add(
                    outlet.name, "/news-sitemap.xml", _news_sitemap(outlet, items), "application/xml", updated
                )
                self._add(
                    outlet.name,
                    "/robots.txt",
                    f"User-agent: *\nAllow: /\nSitemap: {outlet.base}/news-sitemap.xml\n".encode(),
                    "text/plain",
                    start,
                )

    def render_page(self, outlet: Outlet, item: dict[str, Any]) -> bytes:
        return render_article(
            outlet.layout,
            outlet.name.title(),
            item["title"],
            item["author"],
            item["when"],
            item["paragraphs"],
            item["related"],
            self.chrome[outlet.name],
            item["page"],
        ).encode()

    def page_weights(self, sample: int = 1000, gzip_sample: int = 40) -> dict[str, Any]:
        """Article HTML bytes: median, mean, p10, p90 over all pages (an evenly spaced sample of
        ``sample`` when there are more), and the gzip ratio over ``gzip_sample`` of them."""
        if self._weights is not None:
            return self._weights
        pages = [(o, i) for o in self.outlets for i in self.items[o.name]]
        step = max(1, math.ceil(len(pages) / sample))
        picked = pages[::step]
        sizes: list[int] = []
        raw = packed = 0
        gz_every = max(1, math.ceil(len(picked) / gzip_sample))
        for k, (outlet, item) in enumerate(picked):
            body = self.render_page(outlet, item)
            sizes.append(len(body))
            if k % gz_every == 0:
                raw += len(body)
                packed += len(gzip.compress(body, 6))
        sizes.sort()

        def q(p: float) -> int:
            return sizes[min(len(sizes) - 1, int(p * len(sizes)))] if sizes else 0

        self._weights = {
            "pages": len(sizes),
            "of": len(pages),
            "median_kb": round(q(0.5) / 1000, 1),
            "mean_kb": round(sum(sizes) / max(1, len(sizes)) / 1000, 1),
            "p10_kb": round(q(0.1) / 1000, 1),
            "p90_kb": round(q(0.9) / 1000, 1),
            "min_kb": round(sizes[0] / 1000, 1) if sizes else 0,
            "max_kb": round(sizes[-1] / 1000, 1) if sizes else 0,
            "gzip_ratio": round(packed / raw, 3) if raw else None,
            "target": "Fundus real pages: median 255 KB, mean 328 KB, p10 89 KB, p90 570 KB",
        }
        return self._weights

    def _answer(self, outlet_name: str, ex: Exchange) -> None:
        path = ex.url_path
        res = self.resources[outlet_name].get(path)
        ex.record.kind = (
            "feed"
            if path in ("/feed.xml", "/atom.xml")
            else "sitemap"
            if path.endswith("sitemap.xml")
            else "robots"
            if path == "/robots.txt"
            else "article"
            if path.startswith("/news/")
            else "other"
        )
        if res is None:
            ex.respond(404, b"not found", content_type="text/plain")
            return
        inm = ex.headers.get("If-None-Match")
        ims = ex.headers.get("If-Modified-Since")
        status = 200
        if inm is not None:
            if res.etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*":
                status = 304
        elif ims is not None:
            try:
                if res.last_modified <= parsedate_to_datetime(ims):
                    status = 304
            except (TypeError, ValueError):
                pass
        validators = {"ETag": res.etag, "Last-Modified": format_datetime(res.last_modified, usegmt=True)}
        if status == 304:
            ex.head(304, validators, length=0)
        else:
            ex.respond(200, res.content(), content_type=res.content_type, headers=validators)

    # -- what the benchmark needs --------------------------------------------------------------

    def sources_yaml(self) -> str:
        lines = ["sources:"]
        for o in self.outlets:
            lines += [
                f"  - name: {o.name}",
                f"    kind: {o.registry_kind}",
                f"    url: {o.entry_url}",
                "    language: en",
                "    delay: 0",
            ]
        return "\n".join(lines) + "\n"

    def request_counts(self, since: int = 0) -> dict[str, Any]:
        hits = self.log.records(since)
        by_kind = Counter(h.kind for h in hits)
        cond_by_kind = Counter(h.kind for h in hits if h.conditional)
        return {
            "requests": len(hits),
            "by_outlet": dict(Counter(h.server for h in hits)),
            "conditional": sum(cond_by_kind.values()),
            "not_modified": sum(1 for h in hits if h.status == 304),
            "by_kind": dict(by_kind),
            "conditional_by_kind": dict(cond_by_kind),
        }

    def describe(self) -> dict[str, Any]:
        kinds = Counter(o.kind for o in self.outlets)
        return {
            "articles": sum(len(v) for v in self.items.values()),
            "outlets": len(self.outlets),
            "days": self.days,
            "events": self.events,
            "wire_copies": self.wire_copies,
            "outlet_kinds": dict(kinds),
            "layouts": 4,
            "text": self.text_source,
            "page_weight": self.page_weights(),
        }


class NewsWebProcess:
    """The same web served from a child process, so the process measured holds no server threads
    (and none of their GIL time): pipeline.extract.pool forks its workers only from a process with
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
                    conn.send(len(web.log))
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

    @property
    def pid(self) -> int:
        return int(self._proc.pid)

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
