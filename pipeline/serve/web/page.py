"""Render the latest stories as one self-contained HTML page with inline SVG figure charts.

Everything a reader sees comes from the store, so all of it is escaped; the page has no script,
so the Content-Security-Policy the API sends can forbid scripts outright.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

from pipeline.models import Figure, Story

NUMERIC_KINDS = ("killed", "injured", "missiles", "drones", "intercepted")
PALETTE = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#7f7f7f",
    "#bcbd22",
)

CSS = """
:root { color-scheme: light; --ink: #1d232b; --muted: #5b6570; --line: #d9dee4; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--ink); background: #f4f6f8; }
header { background: #1d232b; color: #fff; padding: 14px 24px; }
header h1 { margin: 0; font-size: 20px; } header p { margin: 2px 0 0; color: #c8d0d8; }
main { max-width: 980px; margin: 0 auto; padding: 16px; }
.story { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px;
         margin: 0 0 16px; }
.story h2 { margin: 0 0 4px; font-size: 21px; line-height: 1.3; }
.meta { color: var(--muted); font-size: 14px; margin: 0 0 8px; }
.outlets { list-style: none; padding: 0; margin: 8px 0; display: flex; flex-wrap: wrap; gap: 6px; }
.outlets li { font-size: 13px; border: 1px solid var(--line); border-radius: 999px;
               padding: 1px 10px; }
.outlets a { color: inherit; text-decoration: none; }
.outlet-dot { display: inline-block; width: 9px; height: 9px; border-radius: 50%;
               margin-right: 5px; }
.summary { margin: 8px 0; }
details { font-size: 14px; margin: 6px 0; } details ul { margin: 4px 0; padding-left: 18px; }
.places { font-size: 14px; color: var(--muted); }
table.figs { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
table.figs th, table.figs td { border-bottom: 1px solid var(--line); padding: 2px 10px 2px 0;
                               text-align: left; vertical-align: top; }
svg.chart { max-width: 100%; height: auto; display: block; margin: 8px 0; }
svg.chart text { font: 11px system-ui, sans-serif; fill: #39424c; }
.empty, .login { background: #fff; border: 1px solid var(--line); border-radius: 8px;
                 padding: 24px; }
.login input[type=password] { width: 28em; max-width: 100%; padding: 6px; }
"""


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else ""


def _human(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%d %b %Y %H:%M UTC") if value else "unknown time"


def _short(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%d %b %H:%M")


def outlet_colours(story: Story) -> dict[str, str]:
    outlets = sorted({a.source for a in story.articles} | {f.source for f in story.figures})
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(outlets)}


def figures_chart(story: Story, colours: dict[str, str], width: int = 640) -> str:
    """Small multiples, one row per kind of count: each outlet's reported values over time.

    Outlets disagree and revise, so each outlet is its own step line rather than one merged
    series; the spread between them is the information.
    """
    points: dict[str, dict[str, list[tuple[datetime, int]]]] = defaultdict(lambda: defaultdict(list))
    for fig in story.figures:
        if fig.kind in NUMERIC_KINDS and fig.value.isdigit() and fig.reported_at is not None:
            points[fig.kind][fig.source].append((fig.reported_at, int(fig.value)))
    kinds = [k for k in NUMERIC_KINDS if k in points]
    if not kinds:
        return ""
    times = [t for k in kinds for series in points[k].values() for t, _ in series]
    start, end = min(times), max(times)
    span = max((end - start).total_seconds(), 1.0)
    left, right, row_h, top = 92, 34, 58, 26
    plot_w = width - left - right
    height = top + row_h * len(kinds) + 22

    def x(t: datetime) -> float:
        if start == end:
            return left + plot_w / 2
        return left + plot_w * (t - start).total_seconds() / span

    title = f"Figures reported over time for: {story.title or story.story_id}"
    out = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    legend_x = left
    for name, colour in colours.items():
        if not any(name in points[k] for k in kinds):
            continue
        out.append(
            f'<circle cx="{legend_x + 5}" cy="12" r="5" fill="{colour}"/>'
            f'<text x="{legend_x + 14}" y="16">{escape(name)}</text>'
        )
        legend_x += 22 + 7 * len(name)
    for row, kind in enumerate(kinds):
        y0 = top + row * row_h
        base = y0 + row_h - 12
        peak = max(v for series in points[kind].values() for _, v in series) or 1

        def y(v: int, base: float = base, peak: int = peak) -> float:
            return base - (row_h - 22) * v / peak

        out.append(
            f'<g class="kind" data-kind="{kind}">'
            f'<text x="{left - 10}" y="{base - (row_h - 22) / 2 + 4:.1f}" '
            f'text-anchor="end" font-weight="600">{kind}</text>'
            f'<line x1="{left}" x2="{width - right}" y1="{base}" y2="{base}" '
            f'stroke="#d9dee4"/>'
        )
        for source, series in sorted(points[kind].items()):
            series.sort()
            colour = colours.get(source, PALETTE[0])
            path: list[str] = []
            for i, (t, v) in enumerate(series):
                if i:
                    path.append(f"H{x(t):.1f}")
                    path.append(f"V{y(v):.1f}")
                else:
                    path.append(f"M{x(t):.1f},{y(v):.1f}")
            if len(series) > 1:
                path.append(f"H{width - right:.1f}")
                out.append(
                    f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" '
                    f'stroke-width="1.6" opacity="0.7"/>'
                )
            for t, v in series:
                label = f"{source}: {v} {kind} ({_short(t)})"
                out.append(
                    f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="3.6" fill="{colour}">'
                    f"<title>{escape(label)}</title></circle>"
                )
        out.extend(_value_labels(points[kind], x, y))
        out.append("</g>")
    axis_y = top + row_h * len(kinds) + 12
    out.append(f'<text x="{left}" y="{axis_y}">{escape(_short(start))}</text>')
    if end != start:
        out.append(
            f'<text x="{width - right}" y="{axis_y}" text-anchor="end">{escape(_short(end))} UTC</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _value_labels(series: dict[str, list[tuple[datetime, int]]], x: Any, y: Any) -> list[str]:
    """Label a point only where the reported value moves, and never on top of the last label:
    near-simultaneous reports would otherwise print as one unreadable number. Every value is
    still in the point's tooltip and in the table below the chart."""
    labels: list[str] = []
    last_x, last_v = -1e9, None
    for t, v in sorted((t, v) for points in series.values() for t, v in points):
        px = x(t)
        if px - last_x < 16 or (v == last_v and px - last_x < 60):
            continue
        labels.append(f'<text x="{px + 5:.1f}" y="{y(v) - 5:.1f}">{v}</text>')
        last_x, last_v = px, v
    return labels


def _figures_table(figures: Sequence[Figure]) -> str:
    by_kind: dict[str, list[Figure]] = defaultdict(list)
    for fig in figures:
        if fig.kind in NUMERIC_KINDS:
            by_kind[fig.kind].append(fig)
    if not by_kind:
        return ""
    rows = []
    for kind in NUMERIC_KINDS:
        if kind not in by_kind:
            continue
        cells = " → ".join(
            f"{escape(f.value)} <small>({escape(f.source)}"
            f"{', ' + escape(_short(f.reported_at)) if f.reported_at else ''})</small>"
            for f in sorted(
                by_kind[kind], key=lambda f: (f.reported_at or datetime.min.replace(tzinfo=UTC), f.source)
            )
        )
        rows.append(f"<tr><th>{kind}</th><td>{cells}</td></tr>")
    return f'<table class="figs">{"".join(rows)}</table>'


def story_card(story: Story) -> str:
    colours = outlet_colours(story)
    outlets = sorted({a.source for a in story.articles})
    first_link: dict[str, str] = {}
    for a in story.articles:
        first_link.setdefault(a.source, a.url)
    pills = "".join(
        f'<li class="outlet" data-outlet="{escape(o)}"><a href="{escape(first_link[o])}" '
        f'rel="noreferrer noopener"><span class="outlet-dot" style="background:{colours[o]}">'
        f"</span>{escape(o)}</a></li>"
        for o in outlets
    )
    reports = "".join(
        f'<li><b>{escape(a.source)}</b> · <a href="{escape(a.url)}" rel="noreferrer noopener">'
        f'{escape(a.title or a.url)}</a> · <time datetime="{_iso(a.published_at)}">'
        f"{escape(_human(a.published_at))}</time>"
        f"{' · copy' if a.copy_of else ''}</li>"
        for a in story.articles
    )
    places = sorted({f.value for f in story.figures if f.kind == "place"})
    return (
        f'<article class="story" id="story-{escape(story.story_id)}" '
        f'data-story-id="{escape(story.story_id)}">'
        f"<h2>{escape(story.title or '(untitled story)')}</h2>"
        f'<p class="meta">{len(story.articles)} reports from {len(outlets)} outlets · first '
        f'<time datetime="{_iso(story.first_seen)}">{escape(_human(story.first_seen))}</time> · '
        f'updated <time datetime="{_iso(story.last_updated)}">'
        f"{escape(_human(story.last_updated))}</time></p>"
        f'<ul class="outlets" aria-label="Outlets that reported it">{pills}</ul>'
        + (f'<p class="summary">{escape(story.summary)}</p>' if story.summary else "")
        + figures_chart(story, colours)
        + _figures_table(story.figures)
        + (f'<p class="places">Places: {escape(", ".join(places))}</p>' if places else "")
        + f"<details><summary>All {len(story.articles)} reports</summary><ul>{reports}</ul>"
        "</details></article>"
    )


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        "<header><h1>newsagg</h1><p>Latest stories, one per real-world event</p></header>"
        f"<main>{body}</main></body></html>"
    )


def stories_page(stories: Sequence[Story], generated: datetime | None = None) -> str:
    generated = generated or datetime.now(UTC)
    if not stories:
        body = '<p class="empty">No stories in the store yet.</p>'
    else:
        body = "".join(story_card(s) for s in stories)
    body += f'<p class="meta">Rendered {escape(_human(generated))}.</p>'
    return _page("newsagg — latest stories", body)


def login_page(message: str) -> str:
    return _page(
        "newsagg — token needed",
        (
            f'<form class="login" method="get" action="/"><p>{escape(message)}</p>'
            '<p><label>API token <input type="password" name="token" autocomplete="off" '
            'required></label> <button type="submit">Open</button></p>'
            '<p class="meta">Make one with <code>newsagg token create NAME</code>. It is kept in '
            "an HttpOnly cookie for this site only.</p></form>"
        ),
    )
