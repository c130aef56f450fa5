"""The run summary as a person reads it: drops grouped by reason and host, not one line per URL.

A DNS outage over 31 feeds is one cause; printing 1,186 URLs hides it. Each group shows its count
and a few example URLs, and the total equals the rows the run left in the ``drops`` table.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from pipeline.health import SourceHealth
    from pipeline.run import RunSummary

PRIVATE_REFUSAL = "(set allow_private_network to allow)"  # the HTTP client's and the resolver's
EXAMPLES = 2  # example URLs per group
MAX_GROUPS = 12  # groups printed; the rest are counted on one line
_URL = re.compile(r"https?://[^\s'\"<>]+")
_SPACES = re.compile(r"\s+")


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 report``, ``2 reports``: the count with its noun in the right number."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def reason_key(reason: str) -> str:
    """A drop reason without the URLs in it, so one cause groups as one line."""
    key = _URL.sub("", reason)
    key = _SPACES.sub(" ", key).strip(" :;,-")
    key = re.sub(r"^(refused|cannot clean)\s*:?\s*", lambda m: m.group(1) + ": ", key)
    return key.strip(" :") or reason.strip()[:200] or "unknown"


def host_of(url: str) -> str:
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


@dataclass
class DropGroup:
    reason: str
    host: str
    count: int = 0
    examples: list[str] = field(default_factory=list)


def group_drops(drops: Mapping[str, str]) -> list[DropGroup]:
    """Drops (url -> reason) grouped by (reason, host), biggest first."""
    groups: dict[tuple[str, str], DropGroup] = {}
    for url in sorted(drops):
        key = (reason_key(drops[url]), host_of(url))
        group = groups.setdefault(key, DropGroup(*key))
        group.count += 1
        if len(group.examples) < EXAMPLES:
            group.examples.append(url)
    return sorted(groups.values(), key=lambda g: (-g.count, g.reason, g.host))


def format_drops(drops: Mapping[str, str], max_groups: int = MAX_GROUPS) -> list[str]:
    """Lines for the drops: a total, then one line per (reason, host) group."""
    if not drops:
        return []
    groups = group_drops(drops)
    hosts = len({g.host for g in groups})
    out = [f"dropped: {plural(len(drops), 'URL')} from {plural(hosts, 'host')}, by reason and host:"]
    for g in groups[:max_groups]:
        more = g.count - len(g.examples)
        examples = ", ".join(g.examples) + (f" (+{more} more)" if more > 0 else "")
        out.append(f"  {g.count}× {g.reason} @ {g.host}: e.g. {examples}")
    rest = groups[max_groups:]
    if rest:
        out.append(
            f"  … {plural(len(rest), 'more group')} ({plural(sum(g.count for g in rest), 'URL')}); "
            "all reasons are in the store's drops table"
        )
    return out


def format_health(health: Sequence[SourceHealth]) -> list[str]:
    """One line per flag; nothing for healthy or quiet sources. A failed source is already
    listed under ``sources:``."""
    out: list[str] = []
    flagged: set[str] = set()
    for h in health:
        for flag in h.flags:
            if flag.rule != "failed":
                out.append(f"  {h.source}: {flag.rule}: {flag.detail}")
                flagged.add(h.source)
    if out:
        out.insert(0, f"source health: {plural(len(flagged), 'source')} flagged")
    return out


def _counts(counter: Mapping[str, int], keys: Iterable[str]) -> str:
    return ", ".join(f"{counter.get(k, 0)} {k}" for k in keys)


def format_summary(summary: RunSummary, health: Sequence[SourceHealth] = ()) -> list[str]:
    """The lines ``newsagg run`` prints at the end of a run."""
    failed = [f"  failed {name}: {why}" for name, why in sorted(summary.sources_failed.items())]
    warned = [f"  warning {name}: {why}" for name, why in sorted(summary.feed_warnings.items())]
    out = [
        f"sources: {len(summary.sources_ok)} ok, {len(summary.sources_failed)} failed",
        *failed,
        *warned,
    ]
    fetch = ", ".join(f"{k} {v}" for k, v in sorted(summary.fetch.items())) or "nothing to fetch"
    out.append(f"urls: {summary.discovered} new discovered; fetch: {fetch}")
    out.append("articles: " + _counts(summary.articles, ("new", "updated", "unchanged", "dropped")))
    out.extend(format_drops(summary.drops))
    out.append("stories: " + _counts(summary.stories, ("new", "updated")))
    x = summary.extraction
    if x.pages and x.cpu_s > 0:
        out.append(
            f"extraction: {plural(x.pages, 'page')}, {x.cpu_s:.1f} s CPU, of which trafilatura "
            f"{x.trafilatura_s / x.cpu_s:.0%} and the HTML parse {x.parse_s / x.cpu_s:.0%}"
        )
    if summary.crawl_stats:
        out.append("crawl: " + crawl_line(summary.crawl_stats))
    out.extend(format_health(health))
    if any(PRIVATE_REFUSAL in why for why in summary.sources_failed.values()):
        out.append(
            "hint: sources on loopback or private addresses are refused; to fetch them pass "
            "--allow-private-network (or set NEWSAGG_ALLOW_PRIVATE_NETWORK=1)"
        )
    return out


CRAWL_KEYS = (
    "downloader/request_count",
    "downloader/response_count",
    "item_scraped_count",
    "robotstxt/forbidden",
    "log_count/ERROR",
    "finish_reason",
)


def crawl_line(stats: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={stats[k]}" for k in CRAWL_KEYS if k in stats)


def drop_reason_counts(reasons: Iterable[str]) -> Counter[str]:
    """Drop reasons counted by :func:`reason_key` (the health history keeps these)."""
    return Counter(reason_key(r) for r in reasons)


def by_source(drops: Iterable[tuple[str, str, str]]) -> dict[str, dict[str, str]]:
    """(source, url, reason) rows to {source: {url: reason}}."""
    out: dict[str, dict[str, str]] = defaultdict(dict)
    for source, url, reason in drops:
        out[source][url] = reason
    return dict(out)
