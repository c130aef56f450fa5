"""Real article pages vs. the generated news web (benchmarks/newsweb.py): structure and cost.

Run ``python benchmarks/calibrate_newsweb.py [--shared DIR] [--articles N] [--outlets M]``.
For every real page of the Fundus set (``<shared>/extraction/fundus/pages/**.html.gz``) and every
generated article page (``NewsWeb(articles=300, outlets=12, days=3)``, ECB+ text when present) it
measures:

* ``kb``: HTML bytes; ``gzip``: gzip -6 ratio;
* ``elements``: ``len(list(tree.iter()))`` after ``lxml.html`` parsing; ``depth``: deepest element;
* ``script_style``: share of the bytes inside ``<script>``/``<style>``;
* ``a``/``div``/``p``/``li``/``span``/``svg_path``: elements of that tag outside the article, the
  article being the parent of the biggest run of sibling ``<p>`` (the same rule on both sets);
* ``text_kb``: visible text outside script/style, KB;
* ``extract_ms``: ``pipeline.extract.extract`` per page (``time.process_time``, after a warm-up),
  ``trafilatura_ms``/``parse_ms``: the parts of it that extract's own clocks charge to
  trafilatura/htmldate and to the HTML parse.

and prints median and mean of each, real next to generated, with the generated/real ratio of the
medians. A benchmark helper, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import lxml.html
from newsweb import NewsWeb

from pipeline.extract import extract
from pipeline.extract.result import CLOCK

DEFAULT_SHARED = Path("/work/shared/data")
COUNTED = ("a", "div", "p", "li", "span", "path")
METRICS = (
    "kb",
    "gzip",
    "elements",
    "depth",
    "script_style",
    "text_kb",
    "a",
    "div",
    "p",
    "li",
    "span",
    "path",
    "extract_ms",
    "trafilatura_ms",
    "parse_ms",
)


def real_pages(shared: Path) -> list[tuple[bytes, str | None]]:
    root = shared / "extraction" / "fundus"
    urls = {}
    mapping = root / "mapping.json"
    if mapping.is_file():
        urls = {m["html"]: m.get("url") for m in json.loads(mapping.read_text())}
    pages = []
    for path in sorted((root / "pages").glob("**/*.html.gz")):
        rel = str(path.relative_to(root / "pages"))
        pages.append((gzip.decompress(path.read_bytes()), urls.get(rel)))
    return pages


def structure(html: bytes) -> dict[str, float]:
    tree = lxml.html.document_fromstring(html)
    elements = list(tree.iter())
    code = sum(len((e.text or "").encode()) for e in tree.iter("script", "style"))
    # the article: parent of the biggest run of sibling <p>
    blocks: dict[Any, int] = {}
    for p in tree.iter("p"):
        parent = p.getparent()
        blocks[parent] = blocks.get(parent, 0) + len(p.text_content())
    article = max(blocks, key=blocks.__getitem__) if blocks else None
    inside = set(article.iter()) if article is not None else set()
    depth = 0
    stack = [(tree, 1)]
    while stack:
        node, d = stack.pop()
        depth = max(depth, d)
        stack.extend((child, d + 1) for child in node if isinstance(child.tag, str))
    counts = dict.fromkeys(COUNTED, 0)
    text = 0
    for e in elements:
        tag = e.tag if isinstance(e.tag, str) else ""
        tag = tag.rsplit("}", 1)[-1]  # svg namespaces, if any
        if tag in counts and e not in inside:
            counts[tag] += 1
        if tag not in ("script", "style") and e.text:
            text += len(e.text.strip())
        if e.tail:
            text += len(e.tail.strip())
    return {
        "kb": len(html) / 1000,
        "gzip": len(gzip.compress(html, 6)) / len(html),
        "elements": len(elements),
        "depth": depth,
        "script_style": code / len(html),
        "text_kb": text / 1000,
        **counts,
    }


def timing(html: bytes, url: str | None) -> dict[str, float]:
    clock = CLOCK
    for key in ("trafilatura", "parse"):
        setattr(clock, key, 0.0)
    start = time.process_time()
    with contextlib.suppress(Exception):  # a page without an article still costs its time
        extract(html, url)
    spent = time.process_time() - start
    return {
        "extract_ms": spent * 1000,
        "trafilatura_ms": getattr(clock, "trafilatura", 0.0) * 1000,
        "parse_ms": getattr(clock, "parse", 0.0) * 1000,
    }


def measure(pages: list[tuple[bytes, str | None]]) -> dict[str, list[float]]:
    for html, url in pages[:5]:  # warm-up: imports, caches
        timing(html, url)
    rows: dict[str, list[float]] = {m: [] for m in METRICS}
    for html, url in pages:
        for key, value in {**structure(html), **timing(html, url)}.items():
            rows[key].append(value)
    return rows


def generated_pages(
    articles: int, outlets: int, days: int, ecb: Path | None
) -> tuple[list[tuple[bytes, str | None]], list[int], dict[str, Any]]:
    with NewsWeb(articles=articles, outlets=outlets, days=days, ecb_path=ecb) as web:
        pages = [(web.render_page(o, i), o.base + i["path"]) for o in web.outlets for i in web.items[o.name]]
        layouts = [o.layout for o in web.outlets for _ in web.items[o.name]]
        return pages, layouts, web.describe()


def _fmt(value: float) -> str:
    return f"{value:.3f}" if abs(value) < 1 else f"{value:.1f}" if abs(value) < 100 else f"{value:.0f}"


def table(real: dict[str, list[float]], gen: dict[str, list[float]]) -> str:
    lines = [
        f"{'metric':<15}{'real median':>12}{'real mean':>11}{'gen median':>12}{'gen mean':>10}"
        f"{'gen/real med':>14}"
    ]
    for m in METRICS:
        rm, ra = statistics.median(real[m]), statistics.fmean(real[m])
        gm, ga = statistics.median(gen[m]), statistics.fmean(gen[m])
        ratio = f"{gm / rm:.2f}" if rm else "-"
        lines.append(f"{m:<15}{_fmt(rm):>12}{_fmt(ra):>11}{_fmt(gm):>12}{_fmt(ga):>10}{ratio:>14}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    ap.add_argument("--articles", type=int, default=300)
    ap.add_argument("--outlets", type=int, default=12)
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--per-layout", action="store_true", help="also a table per generated layout")
    args = ap.parse_args(argv)
    real = real_pages(args.shared)
    if not real:
        print(f"no real pages under {args.shared}/extraction/fundus/pages", file=sys.stderr)
        return 1
    ecb = args.shared / "events" / "ecbplus-dev.jsonl"
    gen, layouts, described = generated_pages(
        args.articles, args.outlets, args.days, ecb if ecb.is_file() else None
    )
    real_rows = measure(real)
    gen_rows = measure(gen)
    print(
        f"real: {len(real)} Fundus pages; generated: {len(gen)} pages "
        f"({args.articles} articles, {args.outlets} outlets, text {described['text']})"
    )
    print(table(real_rows, gen_rows))
    if args.per_layout:
        for layout in range(4):
            sub = {
                m: [v for v, lay in zip(vals, layouts, strict=True) if lay == layout]
                for m, vals in gen_rows.items()
            }
            if sub["kb"]:
                print(f"\nlayout {layout} ({len(sub['kb'])} pages)")
                print(table(real_rows, sub))
    return 0


if __name__ == "__main__":
    sys.exit(main())
