"""The story pages: a list with filters, and one page per story with its figures timeline.

Everything a reader sees comes from the store, so all of it is escaped; the page has no script,
so the Content-Security-Policy the API sends can forbid scripts outright.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime
from html import escape
from urllib.parse import quote, urlencode

from pipeline.cluster.explain import describe_evidence
from pipeline.models import Story, StoryArticle
from pipeline.serve.web.filters import Filters
from pipeline.timeutil import iso

NUMERIC_KINDS = ("killed", "injured", "missiles", "drones", "intercepted")

CSS = """
:root { color-scheme: light; --ink: #1d232b; --muted: #56606b; --line: #d9dee4; --bg: #f4f6f8; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--ink); background: var(--bg); }
header { background: #1d232b; color: #fff; padding: 12px 20px; }
header h1 { margin: 0; font-size: 20px; } header p { margin: 2px 0 0; color: #c8d0d8; font-size: 14px; }
header a { color: #fff; }
main { max-width: 980px; margin: 0 auto; padding: 16px; }
a { color: #0b57a4; }
.story, .panel { background: #fff; border: 1px solid var(--line); border-radius: 8px;
                 padding: 14px 18px; margin: 0 0 14px; }
.story h2 { margin: 0 0 4px; font-size: 20px; line-height: 1.3; }
.story h2 a { color: inherit; text-decoration: none; } .story h2 a:hover { text-decoration: underline; }
h1.title { font-size: 26px; line-height: 1.25; margin: 4px 0 6px; }
h2.section { font-size: 17px; margin: 18px 0 6px; }
.meta { color: var(--muted); font-size: 14px; margin: 0 0 8px; }
.outlets { list-style: none; padding: 0; margin: 8px 0; display: flex; flex-wrap: wrap; gap: 6px; }
.outlets li { font-size: 13px; border: 1px solid var(--line); border-radius: 999px; padding: 1px 10px; }
.outlets a { color: inherit; text-decoration: none; }
.dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 5px;
       vertical-align: -1px; }
.summary { margin: 8px 0; }
.keyfigs { font-size: 14px; margin: 6px 0 0; } .keyfigs b { font-weight: 600; }
.places { font-size: 14px; color: var(--muted); margin: 4px 0 0; }
.scroll { overflow-x: auto; }
table.figs { border-collapse: collapse; font-size: 14px; margin: 6px 0; min-width: 100%; }
table.figs th, table.figs td { border-bottom: 1px solid var(--line); padding: 4px 12px 4px 0;
                               text-align: left; vertical-align: top; white-space: nowrap; }
table.figs td.num, table.figs th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.figs tr.changed td.num.moved { font-weight: 700; }
table.figs td.claimed { white-space: normal; min-width: 9em; }
.claim { color: var(--muted); font-size: 12px; }
svg.chart { width: 100%; max-width: 520px; height: auto; display: block; margin: 8px 0; }
svg.chart text { font: 11px system-ui, sans-serif; fill: #39424c; }
ol.reports { padding-left: 20px; margin: 6px 0; } ol.reports li { margin: 0 0 6px; }
.badge { font-size: 12px; border-radius: 4px; padding: 0 6px; background: #eef1f4; color: var(--muted); }
.badge.live { background: #fdecea; color: #a4262c; font-weight: 600; }
ul.evidence { margin: 4px 0; padding-left: 18px; font-size: 14px; }
form.filters { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 8px 12px;
               align-items: end; }
form.filters label { display: flex; flex-direction: column; font-size: 13px; color: var(--muted); }
form.filters input, form.filters select, form.filters button { font: inherit; padding: 5px 6px;
               border: 1px solid #b8c0c8; border-radius: 5px; background: #fff; color: var(--ink); }
form.filters button { background: #1d232b; color: #fff; border-color: #1d232b; cursor: pointer; }
.problems { color: #8a1c1c; font-size: 14px; }
.pager { display: flex; justify-content: space-between; font-size: 15px; }
.empty, .login { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 24px; }
.login input[type=password] { width: 28em; max-width: 100%; padding: 6px; }
@media (max-width: 480px) {
  main { padding: 10px; } .story, .panel { padding: 12px; } h1.title { font-size: 22px; }
  header { padding: 10px 12px; }
}
"""


def _iso(value: datetime | None) -> str:
    return iso(value) or ""


def _human(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%d %b %Y %H:%M UTC") if value else "unknown time"


def _short(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%d %b %H:%M")


PALETTE = (  # Tableau 10 and two dark ones: every pair tells apart, on white, as dots and lines
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
    "#393b79",
    "#00594f",
)


def _slot(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:4], "big") % len(PALETTE)


def outlet_colour(name: str) -> str:
    """An outlet's colour from a hash of its name alone (see :func:`outlet_palette`)."""
    return PALETTE[_slot(name)]


def outlet_palette(outlets: Sequence[str]) -> dict[str, str]:
    """Colours for all the store's outlets: each takes the palette slot its name hashes to, or
    the next free one when another outlet (earlier by name) holds it. Every card and page uses
    this one map, so an outlet keeps its colour everywhere, and up to ``len(PALETTE)`` outlets
    never share one."""
    taken: dict[int, str] = {}
    colours: dict[str, str] = {}
    for name in sorted(set(outlets)):
        slot = _slot(name)
        for step in range(len(PALETTE)):
            if (slot + step) % len(PALETTE) not in taken:
                slot = (slot + step) % len(PALETTE)
                break
        taken.setdefault(slot, name)
        colours[name] = PALETTE[slot]
    return colours


def outlet_colours(story: Story, palette: dict[str, str] | None = None) -> dict[str, str]:
    outlets = sorted({a.source for a in story.articles} | {f.source for f in story.figures})
    palette = palette if palette is not None else outlet_palette(outlets)
    return {name: palette.get(name) or outlet_colour(name) for name in outlets}


def _numeric(story: Story) -> dict[str, dict[str, list[tuple[datetime, int]]]]:
    points: dict[str, dict[str, list[tuple[datetime, int]]]] = defaultdict(lambda: defaultdict(list))
    for fig in story.figures:
        if fig.kind in NUMERIC_KINDS and fig.value.isdigit() and fig.reported_at is not None:
            points[fig.kind][fig.source].append((fig.reported_at, int(fig.value)))
    return points


def _ticks(start: datetime, end: datetime, count: int = 3) -> list[datetime]:
    if start == end:
        return [start]
    step = (end - start) / (count - 1)
    return [start + step * i for i in range(count)]


def _tick_label(t: datetime, start: datetime, end: datetime) -> str:
    t = t.astimezone(UTC)
    return t.strftime("%H:%M") if start.date() == end.date() else t.strftime("%d %b %H:%M")


def figures_chart(story: Story, colours: dict[str, str], width: int = 360) -> str:
    """Small multiples, one row per kind of count: each outlet's reported values over time.

    Drawn 360 units wide so that on a 390 px phone the text is at its natural size; on a desktop
    it is capped at 560 px. Outlets disagree and revise, so each outlet is its own step line;
    reports at the same time and value are spread a little so no marker hides another.
    """
    points = _numeric(story)
    kinds = [k for k in NUMERIC_KINDS if k in points]
    if not kinds:
        return ""
    times = [t for k in kinds for series in points[k].values() for t, _ in series]
    start, end = min(times), max(times)
    span = max((end - start).total_seconds(), 1.0)
    left, right, row_h, top = 70, 26, 54, 8
    plot_w = width - left - right
    height = top + row_h * len(kinds) + 30

    def x(t: datetime) -> float:
        if start == end:
            return left + plot_w / 2
        return left + plot_w * (t - start).total_seconds() / span

    title = f"Figures reported over time for: {story.title or story.story_id}"
    out = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    ticks = _ticks(start, end)
    bottom = top + row_h * len(kinds)
    for t in ticks:
        out.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top}" y2="{bottom}" stroke="#eef1f4"/>')
    for row, kind in enumerate(kinds):
        y0 = top + row * row_h
        base = y0 + row_h - 14
        plot_h = row_h - 26
        peak = max(v for series in points[kind].values() for _, v in series) or 1

        def y(v: int, base: float = base, peak: int = peak, plot_h: int = plot_h) -> float:
            return base - plot_h * v / peak

        out.append(
            f'<g class="kind" data-kind="{kind}">'
            f'<text x="{left - 8}" y="{base - plot_h / 2 + 4:.1f}" text-anchor="end" '
            f'font-weight="600">{kind}</text>'
            f'<line x1="{left}" x2="{width - right}" y1="{base}" y2="{base}" stroke="#c9d0d7"/>'
        )
        placed: dict[tuple[int, int], int] = defaultdict(int)  # (x, value) -> markers already there
        labels: list[tuple[float, float, int]] = []
        for source, series in sorted(points[kind].items()):
            series.sort()
            claims = _claims(story, kind, source)
            colour = colours.get(source, outlet_colour(source))
            coords: list[tuple[float, float, datetime, int]] = []
            for t, v in series:
                key = (round(x(t) / 4), v)
                shift = 4.5 * placed[key]
                placed[key] += 1
                coords.append((x(t) + shift, y(v), t, v))
            if len(coords) > 1:
                path = [f"M{coords[0][0]:.1f},{coords[0][1]:.1f}"]
                for px, py, _, _ in coords[1:]:
                    path.append(f"H{px:.1f} V{py:.1f}")
                out.append(
                    f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" '
                    'stroke-width="1.6" opacity="0.8"/>'
                )
            for px, py, t, v in coords:
                claim = claims.get((t, v))
                label = f"{source}: {v} {kind}{f' according to {claim}' if claim else ''} ({_short(t)} UTC)"
                out.append(
                    f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" fill="{colour}" stroke="#fff" '
                    f'stroke-width="1"><title>{escape(label)}</title></circle>'
                )
                labels.append((px, py, v))
        out.extend(_value_labels(labels))
        out.append("</g>")
    for t in ticks:
        anchor = (
            "start" if t == start and len(ticks) > 1 else "end" if t == end and len(ticks) > 1 else "middle"
        )
        out.append(
            f'<text x="{x(t):.1f}" y="{bottom + 14}" text-anchor="{anchor}">'
            f"{escape(_tick_label(t, start, end))}</text>"
        )
    caption = f"times UTC, {start.astimezone(UTC):%d %b %Y}"
    if start.date() != end.date():
        caption += f" to {end.astimezone(UTC):%d %b %Y}"
    out.append(f'<text x="{left}" y="{bottom + 28}" fill="#56606b">{escape(caption)}</text>')
    out.append("</svg>")
    return "".join(out)


def _claims(story: Story, kind: str, source: str) -> dict[tuple[datetime, int], str]:
    """Who each of an outlet's counts of ``kind`` is claimed by, where the report says."""
    return {
        (f.reported_at, int(f.value)): f.source_claim
        for f in story.figures
        if f.kind == kind and f.source == source and f.source_claim and f.value.isdigit() and f.reported_at
    }


def _value_labels(points: list[tuple[float, float, int]]) -> list[str]:
    """One label per distinct value and place: every point's value is readable, and a label is
    never drawn twice on the same spot (the table below has every report)."""
    labels: list[str] = []
    taken: list[tuple[float, float]] = []
    for px, py, v in sorted(points):
        text_w = 7 * len(str(v))
        if any(abs(px - tx) < text_w + 4 and abs(py - ty) < 11 for tx, ty in taken):
            continue
        taken.append((px, py))
        labels.append(f'<text x="{px:.1f}" y="{py - 6:.1f}" text-anchor="middle">{v}</text>')
    return labels


def _cell(values: list[tuple[str, str | None]]) -> tuple[str, str]:
    """A table cell's values, each with who claims it ("2 (city military administration) · 3
    (State Emergency Service)"), and the values alone, to tell a moved value by."""
    ordered = sorted(set(values), key=lambda vc: (int(vc[0]) if vc[0].isdigit() else -1, vc[0], vc[1] or ""))
    shown = " · ".join(
        escape(v) + (f' <span class="claim">({escape(claim)})</span>' if claim else "")
        for v, claim in ordered
    )
    return shown, " / ".join(sorted({v for v, _ in ordered}))


def figures_table(story: Story, colours: dict[str, str]) -> str:
    """The timeline as a table: one row per report (time, outlet), one column per kind, each
    value labelled with who the report says gives it; a value that differs from the outlet
    before it is bold."""
    rows: dict[tuple[datetime, str], dict[str, list[tuple[str, str | None]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    never = datetime.min.replace(tzinfo=UTC)
    for fig in story.figures:
        if fig.kind in NUMERIC_KINDS:
            rows[(fig.reported_at or never, fig.source)][fig.kind].append((fig.value, fig.source_claim))
    kinds = [k for k in NUMERIC_KINDS if any(k in r for r in rows.values())]
    if not kinds:
        return ""
    head = "".join(f'<th class="num" scope="col">{k}</th>' for k in kinds)
    body = []
    last: dict[str, str] = {}
    for (when, source), values in sorted(rows.items()):
        cells = []
        for k in kinds:
            shown, value = _cell(values[k]) if k in values else ("", "")
            moved = bool(value) and k in last and last[k] != value
            if value:
                last[k] = value
            claimed = any(claim for _, claim in values.get(k, []))
            classes = "num" + (" moved" if moved else "") + (" claimed" if claimed else "")
            cells.append(f'<td class="{classes}">{shown or "–"}</td>')
        shown = escape(_short(when)) if when != never else "undated"
        body.append(
            f'<tr><td><time datetime="{_iso(when) if when != never else ""}">{shown}</time></td>'
            f'<td><span class="dot" style="background:{colours.get(source, outlet_colour(source))}"></span>'
            f"{escape(source)}</td>{''.join(cells)}</tr>"
        )
    return (
        '<div class="scroll"><table class="figs"><thead><tr><th scope="col">Reported (UTC)</th>'
        f'<th scope="col">Outlet</th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
    )


def _key_figures(story: Story) -> str:
    """The list page's one line of numbers: each kind's latest report and its range."""
    points = _numeric(story)
    parts = []
    for kind in NUMERIC_KINDS:
        if kind not in points:
            continue
        series = sorted((t, v) for s in points[kind].values() for t, v in s)
        values = [v for _, v in series]
        low, high = min(values), max(values)
        spread = f" (reports {low}–{high})" if low != high else ""
        parts.append(f"<b>{kind}</b> {series[-1][1]}{spread}")
    return f'<p class="keyfigs">{" · ".join(parts)}</p>' if parts else ""


def _pills(story: Story, colours: dict[str, str]) -> str:
    first_link: dict[str, str] = {}
    for a in story.articles:
        first_link.setdefault(a.source, a.url)
    return "".join(
        f'<li class="outlet" data-outlet="{escape(o)}"><a href="{escape(first_link[o])}" '
        f'rel="noreferrer noopener"><span class="dot" style="background:{colours[o]}">'
        f"</span>{escape(o)}</a></li>"
        for o in sorted(first_link)
    )


def _meta(story: Story) -> str:
    outlets = {a.source for a in story.articles}
    return (
        f'<p class="meta">{_n(len(story.articles), "report")} from {_n(len(outlets), "outlet")} · first '
        f'<time datetime="{_iso(story.first_seen)}">{escape(_human(story.first_seen))}</time> · '
        f'updated <time datetime="{_iso(story.last_updated)}">'
        f"{escape(_human(story.last_updated))}</time></p>"
    )


def _n(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def story_href(story_id: str) -> str:
    return f"/story/{quote(story_id, safe='')}"


LIVE_BLOG = ' <span class="badge live" title="a running live blog: its text grows">Live blog</span>'


def story_card(story: Story, palette: dict[str, str] | None = None) -> str:
    """A story on the list page: what it is, who reported it, the key numbers; a link to its page."""
    colours = outlet_colours(story, palette)
    places = sorted({f.value for f in story.figures if f.kind == "place"})
    summary = story.summary or ""
    if len(summary) > 280:
        summary = summary[:279].rsplit(" ", 1)[0] + "…"
    return (
        f'<article class="story" id="story-{escape(story.story_id)}" '
        f'data-story-id="{escape(story.story_id)}">'
        f'<h2><a href="{story_href(story.story_id)}">{escape(story.title or "(untitled story)")}</a>'
        f"{LIVE_BLOG if story.live_blog else ''}</h2>"
        + _meta(story)
        + f'<ul class="outlets" aria-label="Outlets that reported it">{_pills(story, colours)}</ul>'
        + (f'<p class="summary">{escape(summary)}</p>' if summary else "")
        + _key_figures(story)
        + (f'<p class="places">Places: {escape(", ".join(places))}</p>' if places else "")
        + "</article>"
    )


def _evidence(story: Story) -> str:
    """Why the reports are one story, as dedup recorded it (``Story.evidence``); nothing for a
    story of one report, which shares nothing with another."""
    evidence = story.evidence
    if not evidence or len(story.articles) < 2:
        return ""
    lines = "".join(
        f'<li data-evidence="{escape(key)}"><b>{escape(label)}:</b> {escape(text)}</li>'
        for key, label, text in describe_evidence(evidence)
    )
    reports = evidence.get("reports")
    count = f" of the {reports} reports" if isinstance(reports, int) else ""
    return (
        '<section class="panel" id="evidence"><h2 class="section">Why these reports are one story</h2>'
        f'<p class="meta">What at least two{escape(count)} share, as dedup found when it grouped them.</p>'
        f'<ul class="evidence">{lines}</ul></section>'
    )


def _original(by_id: dict[str, StoryArticle], article_id: str | None) -> str:
    original = by_id.get(article_id or "")
    if original is None:
        return f"report {escape(str(article_id))}"
    return f"{escape(original.source)}'s report “{escape(original.title or original.url)}”"


def story_page(story: Story, generated: datetime | None = None, palette: dict[str, str] | None = None) -> str:
    """One story's own page: the figures timeline as a table and a chart, the reports with their
    outlets and times, the copies, and the evidence that linked them. ``palette``: the store's
    :func:`outlet_palette`, so colours match the list page."""
    generated = generated or datetime.now(UTC)
    colours = outlet_colours(story, palette)
    by_id = {a.article_id: a for a in story.articles}
    reports = []
    for a in story.articles:
        copy = ""
        if a.copy_of:
            original = by_id.get(a.copy_of)
            copy = f' <span class="badge">copy of {escape(original.source if original else a.copy_of)}</span>'
        reports.append(
            f'<li data-outlet="{escape(a.source)}">'
            f'<span class="dot" style="background:{colours[a.source]}"></span>'
            f'<b>{escape(a.source)}</b> · <time datetime="{_iso(a.published_at)}">'
            f"{escape(_human(a.published_at))}</time>{copy}{LIVE_BLOG if a.live_blog else ''}<br>"
            f'<a href="{escape(a.url)}" rel="noreferrer noopener">{escape(a.title or a.url)}</a></li>'
        )
    copies = [a for a in story.articles if a.copy_of]
    copies_html = ""
    if copies:
        rows = "".join(
            f"<li>{escape(a.source)} carries {_original(by_id, a.copy_of)}"
            f' — <a href="{escape(a.url)}" rel="noreferrer noopener">the copy</a></li>'
            for a in copies
        )
        copies_html = (
            '<section class="panel" id="copies"><h2 class="section">Copies</h2>'
            '<p class="meta">Syndicated or copied reports: counted once in the figures.</p>'
            f"<ul>{rows}</ul></section>"
        )
    places = sorted({f.value for f in story.figures if f.kind == "place"})
    chart = figures_chart(story, colours)
    table = figures_table(story, colours)
    figures_html = ""
    if chart or table:
        figures_html = (
            '<section class="panel" id="figures"><h2 class="section">Figures over time</h2>'
            '<p class="meta">Each outlet\'s numbers as it reported them; outlets disagree and revise.</p>'
            f"{chart}{table}</section>"
        )
    body = (
        '<p class="meta"><a href="/">← all stories</a></p>'
        f'<article class="panel story-page" id="story-{escape(story.story_id)}" '
        f'data-story-id="{escape(story.story_id)}">'
        f'<h1 class="title">{escape(story.title or "(untitled story)")}'
        f"{LIVE_BLOG if story.live_blog else ''}</h1>"
        + _meta(story)
        + f'<ul class="outlets" aria-label="Outlets that reported it">{_pills(story, colours)}</ul>'
        + (f'<p class="summary">{escape(story.summary)}</p>' if story.summary else "")
        + (f'<p class="places">Places: {escape(", ".join(places))}</p>' if places else "")
        + f'<p class="meta">Story id <code>{escape(story.story_id)}</code></p></article>'
        + figures_html
        + f'<section class="panel" id="reports"><h2 class="section">Reports ({len(story.articles)})</h2>'
        f'<ol class="reports">{"".join(reports)}</ol></section>'
        + copies_html
        + _evidence(story)
        + f'<p class="meta">Rendered {escape(_human(generated))}.</p>'
    )
    return _page(f"{story.title or story.story_id} — newsagg", body)


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        '<header><h1><a href="/" style="text-decoration:none">newsagg</a></h1>'
        "<p>Latest stories, one per real-world event</p></header>"
        f"<main>{body}</main></body></html>"
    )


def _filters_form(filters: Filters, outlets: Sequence[str], places: Sequence[str]) -> str:
    options = "".join(
        f'<option value="{escape(o)}"{" selected" if o == filters.outlet else ""}>{escape(o)}</option>'
        for o in outlets
    )
    place_list = "".join(f'<option value="{escape(p)}">' for p in places)
    problems = "".join(f"<li>{escape(p)}</li>" for p in filters.problems)
    return (
        '<form class="panel filters" method="get" action="/" role="search">'
        f'<label>Text <input type="search" name="q" value="{escape(filters.text)}" '
        'placeholder="words in title or summary"></label>'
        f'<label>Place <input type="text" name="place" list="places" value="{escape(filters.place)}">'
        f'</label><datalist id="places">{place_list}</datalist>'
        f'<label>Outlet <select name="outlet"><option value="">any</option>{options}</select></label>'
        f'<label>From <input type="date" name="from" value="{_date_value(filters.date_from)}"></label>'
        f'<label>To <input type="date" name="to" value="{_date_value(filters.date_to)}"></label>'
        '<button type="submit">Filter</button>'
        + (f'<ul class="problems">{problems}</ul>' if problems else "")
        + "</form>"
    )


def _date_value(value: date | None) -> str:
    return value.isoformat() if value else ""


def stories_page(
    stories: Sequence[Story],
    generated: datetime | None = None,
    *,
    filters: Filters | None = None,
    outlets: Sequence[str] = (),
    places: Sequence[str] = (),
    offset: int = 0,
    limit: int = 20,
    more: bool = False,
) -> str:
    """The list page: the filters, then one card per story linking to its own page."""
    generated = generated or datetime.now(UTC)
    filters = filters or Filters()
    body = _filters_form(filters, outlets, places)
    if not stories:
        body += (
            '<p class="empty">No story matches these filters. <a href="/">Show all stories</a>.</p>'
            if filters.active
            else '<p class="empty">No stories in the store yet.</p>'
        )
    else:
        palette = outlet_palette([*outlets, *(a.source for s in stories for a in s.articles)])
        body += "".join(story_card(s, palette) for s in stories)
    keep = filters.query()
    links = []
    if offset > 0:
        links.append(f'<a href="/?{_qs({**keep, "offset": str(max(0, offset - limit))})}">← newer</a>')
    if more:
        links.append(f'<a href="/?{_qs({**keep, "offset": str(offset + limit)})}">older →</a>')
    if links:
        body += f'<nav class="pager">{"".join(links)}</nav>'
    body += f'<p class="meta">Rendered {escape(_human(generated))}.</p>'
    return _page("newsagg — latest stories", body)


def _qs(params: dict[str, str]) -> str:
    return escape(urlencode({k: v for k, v in params.items() if v and v != "0"}))


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


def not_found_page(message: str) -> str:
    return _page(
        "newsagg — not found", f'<p class="empty">{escape(message)} <a href="/">All stories</a>.</p>'
    )
