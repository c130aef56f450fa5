"""Source health: outlets that break without failing.

A bot wall answers 200 with a challenge page, a redesign makes the section selector match
nothing, a feed stops yielding: the run says "ok" and the outlet quietly disappears. After each
run :func:`record_run` stores every source's figures (``pipeline.store.health``) and compares
them with the source's own history. The rules:

- ``stopped``: the source yielded articles in at least ``YIELDING_RUNS`` runs and has yielded
  none for ``STOPPED_RUNS`` runs, longer than any quiet spell it had before (a quiet outlet is
  not a broken one);
- ``drops``/``no-body``: most of the run's pages were dropped (or had no article body) where
  earlier runs dropped few;
- ``wall``: the pages look like a challenge or consent wall: known markers, the same body on
  many URLs, or a tiny page that gave no article;
- ``blocked``: most requests answered 401, 403, 429 or 503;
- ``selector``: the section page selector matched no article link.

The DAG's publish task calls :func:`warnings`; ``newsagg sources`` calls :func:`overview`.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError

from pipeline.errors import StoreError
from pipeline.models import HealthState, Source
from pipeline.store.core import Store
from pipeline.store.health import PAGE_SAMPLE, HealthRepo, PageSample, SourceRun, median
from pipeline.summary import reason_key
from pipeline.timeutil import now

log = logging.getLogger(__name__)

STOPPED_RUNS = 3  # runs without a new or changed article before a yielding source is flagged
DROP_SHARE = 0.5  # share of the run's pages dropped that counts as a jump
CALM_SHARE = 0.2  # ... when earlier runs dropped less than this share (median)
MIN_DROPS = 3  # fewer drops are never a jump
TINY_PAGE = 2048  # bytes: an article page this small that gives no article is wall-like
SAME_BODY = 3  # this many URLs with one identical body is a wall
HISTORY = 50
YIELDING_RUNS = 2  # runs with articles before "used to yield" holds: one story is no rhythm

# Lower-case markers of bot challenges and consent walls (Cloudflare, Akamai, PerimeterX,
# DataDome, Sucuri, Incapsula, the common CMP banners when they replace the page).
CHALLENGE_MARKERS = (
    b"cf-challenge",
    b"cf_chl_opt",
    b"challenge-platform",
    b"just a moment...",
    b"checking your browser",
    b"attention required! | cloudflare",
    b"enable javascript and cookies to continue",
    b"please verify you are a human",
    b"verify you are human",
    b"px-captcha",
    b"captcha-delivery.com",
    b"datadome",
    b"sucuri website firewall",
    b"incapsula incident",
    b"_incapsula_resource",
    b"access denied</title>",
    b"pardon our interruption",
    b"are you a robot",
    b"g-recaptcha",
    b"h-captcha",
    b"consent.cookiebot",
    b"before you continue to",
    b"we value your privacy",
    b"cookie consent",
)
_STATUS = re.compile(r"\bHTTP (\d{3})\b")
_BLOCKING = {"401", "403", "429", "503"}
_SELECTOR_MISS = "matched no article link"
_NO_BODY = "no article body"


@dataclass(frozen=True, slots=True)
class Flag:
    rule: str  # stopped | drops | no-body | wall | blocked | selector
    detail: str


@dataclass(frozen=True, slots=True)
class SourceHealth:
    source: str
    state: str  # ok | quiet | warning | failed | unknown
    flags: tuple[Flag, ...] = ()
    run: SourceRun | None = None
    last_good: datetime | None = None  # the last run that yielded articles with no flag


@dataclass
class _Figures:
    discovered: int = 0
    fetched: int = 0
    cleaned: int = 0
    drops: dict[str, str] = field(default_factory=dict)  # url -> reason


def looks_like_wall(page: PageSample, gave_article: bool) -> bool:
    head = page.head.lower()
    if any(marker in head for marker in CHALLENGE_MARKERS):
        return True
    return page.size < TINY_PAGE and not gave_article


def wall_pages(pages: Sequence[PageSample], cleaned_urls: set[str]) -> int:
    """Pages that look like a challenge or consent wall (see :data:`CHALLENGE_MARKERS`)."""
    same = Counter(p.body_sha256 for p in pages)
    return sum(
        1 for p in pages if same[p.body_sha256] >= SAME_BODY or looks_like_wall(p, p.url in cleaned_urls)
    )


def status_mix(fetched: int, reasons: Sequence[str]) -> dict[str, int]:
    """HTTP statuses as far as the store knows them: pages stored count as 200; drops by the
    status their reason names, else ``error``."""
    mix: Counter[str] = Counter()
    if fetched:
        mix["200"] = fetched
    for reason in reasons:
        m = _STATUS.search(reason)
        mix[m.group(1) if m else "error"] += 1
    return dict(mix)


def _share(dropped: int, fetched: int) -> float:
    return dropped / (dropped + fetched) if dropped + fetched else 0.0


def evaluate(current: SourceRun, earlier: Sequence[SourceRun], failed: str | None = None) -> list[Flag]:
    """The flags of ``current`` given the source's ``earlier`` runs (oldest first)."""
    flags: list[Flag] = []
    history = [*earlier, current]
    # stopped: a yielding source silent for STOPPED_RUNS runs, longer than it ever was
    if current.cleaned == 0 and sum(1 for r in earlier if r.cleaned) >= YIELDING_RUNS:
        streak = 0
        for r in reversed(history):
            if r.cleaned:
                break
            streak += 1
        longest, gap = 0, 0
        seen_yield = False
        for r in history[: len(history) - streak]:
            if r.cleaned:
                seen_yield, gap = True, 0
            elif seen_yield:
                gap += 1
                longest = max(longest, gap)
        if streak >= STOPPED_RUNS and streak > longest:
            last = next((r.started_at for r in reversed(earlier) if r.cleaned), None)
            when = f" (last on {last:%Y-%m-%d %H:%M}Z)" if last else ""
            flags.append(Flag("stopped", f"no new or changed article for {streak} runs{when}"))
    active = [r for r in earlier if r.fetched + r.dropped]
    calm = median([round(100 * _share(r.dropped, r.fetched)) for r in active])
    calm_body = median([round(100 * _share(r.no_body, r.fetched)) for r in active])
    share = _share(current.dropped, current.fetched)
    if current.dropped >= MIN_DROPS and share >= DROP_SHARE and calm is not None and calm < 100 * CALM_SHARE:
        flags.append(
            Flag(
                "drops",
                f"{current.dropped} of {current.dropped + current.fetched} pages dropped (usually {calm}%)",
            )
        )
    body_share = _share(current.no_body, current.fetched)
    if (
        current.no_body >= MIN_DROPS
        and body_share >= DROP_SHARE
        and calm_body is not None
        and calm_body < 100 * CALM_SHARE
    ):
        flags.append(
            Flag("no-body", f"{current.no_body} pages without an article body (usually {calm_body}%)")
        )
    pages = min(current.fetched, PAGE_SAMPLE)  # the pages looked at (see HealthRepo.pages_since)
    if current.challenge_pages >= 2 and current.challenge_pages * 2 >= max(pages, 1):
        flags.append(
            Flag(
                "wall",
                f"{current.challenge_pages} of {pages} pages look like a bot challenge or consent wall",
            )
        )
    blocking = sum(n for s, n in current.statuses.items() if s in _BLOCKING)
    attempts = sum(current.statuses.values())
    if blocking >= MIN_DROPS and blocking * 2 >= attempts:
        codes = ", ".join(f"{s}×{n}" for s, n in sorted(current.statuses.items()) if s in _BLOCKING)
        flags.append(Flag("blocked", f"{blocking} of {attempts} requests refused ({codes})"))
    misses = [r for r in current.drop_reasons if _SELECTOR_MISS in r]
    if misses:
        flags.append(Flag("selector", misses[0]))
    if failed:
        flags.append(Flag("failed", failed))
    return flags


def state_of(run: SourceRun, flags: Sequence[Flag]) -> HealthState:
    if any(f.rule == "failed" for f in flags):
        return "failed"
    if flags:
        return "warning"
    return "ok" if run.cleaned else "quiet"


def record_run(
    store: Store,
    sources: Sequence[Source | str],
    started: datetime,
    failed: Mapping[str, str] | None = None,
    run_id: str | None = None,
) -> list[SourceHealth]:
    """Store each source's figures for the run that began at ``started`` and flag it.

    Health is advice: a database error here is logged and the run's own result stands."""
    try:
        return _record_run(store, sources, started, failed or {}, run_id)
    except Exception as exc:  # advice: never the reason a run that did its work fails
        log.warning("source health not recorded: %s: %s", type(exc).__name__, exc, exc_info=True)
        return []


def _record_run(
    store: Store,
    sources: Sequence[Source | str],
    started: datetime,
    failed: Mapping[str, str],
    run_id: str | None,
) -> list[SourceHealth]:
    repo = HealthRepo(store.engine)
    finished = now()
    run_id = run_id or f"{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}"
    names = list(dict.fromkeys(s if isinstance(s, str) else s.name for s in sources))
    figures = {name: _Figures() for name in names}
    for source, counts in repo.counts_since(started).items():
        if source in figures:
            fig = figures[source]
            fig.discovered = counts.get("discovered", 0)
            fig.fetched = counts.get("fetched", 0)
            fig.cleaned = counts.get("cleaned", 0)
    for source, url, reason in repo.drops_since(started, names):
        figures[source].drops[url] = reason
    runs: list[SourceRun] = []
    out: list[SourceHealth] = []
    changed = repo.articles_since(started)
    samples = repo.pages_since(started)
    newest = repo.last_article_at(names)
    for name in names:
        fig = figures[name]
        reasons = list(fig.drops.values())
        cleaned_urls = {url for url, _ in changed.get(name, [])}
        run = SourceRun(
            run_id=run_id,
            source=name,
            started_at=started,
            finished_at=finished,
            discovered=fig.discovered,
            fetched=fig.fetched,
            cleaned=fig.cleaned,
            dropped=len(reasons),
            no_body=sum(1 for r in reasons if _NO_BODY in r),
            drop_reasons=dict(Counter(reason_key(r) for r in reasons)),
            statuses=status_mix(fig.fetched, reasons),
            median_body=median([n for _, n in changed.get(name, [])]),
            last_article_at=newest.get(name),
            challenge_pages=wall_pages(samples.get(name, []), cleaned_urls),
        )
        earlier = repo.history(name, HISTORY)
        flags = evaluate(run, earlier, failed.get(name))
        state = state_of(run, flags)
        run = dataclasses.replace(
            run, state=state, flags=[{"rule": f.rule, "detail": f.detail} for f in flags]
        )
        runs.append(run)
        good = (
            finished
            if state == "ok"
            else next((r.started_at for r in reversed(earlier) if r.state == "ok"), None)
        )
        out.append(SourceHealth(name, state, tuple(flags), run, good))
    repo.save(runs)
    return out


def drops_since(store: Store, started: datetime) -> dict[str, str]:
    """The drops recorded since ``started`` (url -> reason), whichever process recorded them:
    the run summary adds these so its count matches the drops table (crawl 404s included)."""
    try:
        return {url: reason for _, url, reason in HealthRepo(store.engine).drops_since(started)}
    except SQLAlchemyError as exc:
        raise StoreError(f"store {store.safe_url}: cannot read this run's drops: {exc}") from exc


def overview(store: Store, names: Sequence[str] | None = None) -> list[SourceHealth]:
    """Each source's standing after its latest run; ``names`` adds sources never run (unknown)."""
    try:
        return _overview(HealthRepo(store.engine), names)
    except SQLAlchemyError as exc:
        raise StoreError(f"store {store.safe_url}: cannot read source health: {exc}") from exc


def _overview(repo: HealthRepo, names: Sequence[str] | None) -> list[SourceHealth]:
    known = repo.sources()
    out: list[SourceHealth] = []
    for name in list(dict.fromkeys([*(names or []), *([] if names else known)])):
        runs = repo.history(name, 1)
        if not runs:
            out.append(SourceHealth(name, "unknown"))
            continue
        run = runs[-1]
        flags = tuple(Flag(f.get("rule", "?"), f.get("detail", "")) for f in run.flags)
        good = repo.last_good(name)
        out.append(SourceHealth(name, run.state, flags, run, good.started_at if good else None))
    return out


def after_dag_run(
    store: Store, names: Sequence[str], started: datetime, failed: Mapping[str, str] | None = None
) -> list[str]:
    """For the DAG's publish task: record the run that began at ``started`` (the DAG run's start)
    for the sources ``names`` and return a warning line per flag, for the task to log as a
    warning. ``failed``: source name -> why, for the sources whose task failed."""
    health = record_run(store, names, started, failed)
    return [f"source {h.source}: {f.rule}: {f.detail}" for h in health for f in h.flags]


def warnings(store: Store, names: Sequence[str] | None = None) -> list[str]:
    """One line per source whose latest run is flagged: for the DAG's publish task to log as
    a warning (it fails nothing; an operator decides)."""
    lines = []
    for h in overview(store, names):
        for flag in h.flags:
            lines.append(f"source {h.source}: {flag.rule}: {flag.detail}")
    return lines
