"""The run summary: drops grouped by reason and host with a few examples, and a total that equals
the rows the run left in the ``drops`` table, crawl drops included."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pipeline.cli import main
from pipeline.sampleweb.sites import Site, url_entry, urlset
from pipeline.store.core import Store
from pipeline.store.schema import drops
from pipeline.summary import EXAMPLES, format_drops, group_drops, plural, reason_key


def test_reasons_group_without_their_urls() -> None:
    assert reason_key("refused http://a.example/x: HTTP 404 Not Found") == "refused: HTTP 404 Not Found"
    assert reason_key(
        "http://a.example/y: cannot resolve a.example: [Errno -2] Name or service not known"
    ) == ("cannot resolve a.example: [Errno -2] Name or service not known")
    assert reason_key("cannot clean: no article body found") == "cannot clean: no article body found"


def test_a_dns_outage_over_many_urls_is_a_few_lines() -> None:
    failed = {
        (url := f"http://feed{n}.example/story/{i}"): f"{url}: cannot resolve feed{n}.example"
        for n in range(31)
        for i in range(38)
    }
    failed["http://ok.example/a"] = "refused http://ok.example/a: HTTP 404 Not Found"
    lines = format_drops(failed, max_groups=5)
    assert len(lines) == 1 + 5 + 1
    assert lines[0] == f"dropped: {len(failed)} URLs from 32 hosts, by reason and host:"
    assert lines[1].startswith(
        "  38× cannot resolve feed0.example @ feed0.example: e.g. http://feed0.example/"
    )
    assert lines[1].endswith(f"(+{38 - EXAMPLES} more)")
    assert lines[-1] == "  … 27 more groups (989 URLs); all reasons are in the store's drops table"
    assert sum(g.count for g in group_drops(failed)) == len(failed)


def test_one_drop_reads_in_the_singular() -> None:
    (header, line) = format_drops({"http://a.example/1": "HTTP 404"})
    assert header == "dropped: 1 URL from 1 host, by reason and host:"
    assert line == "  1× HTTP 404 @ a.example: e.g. http://a.example/1"
    assert plural(1, "report") == "1 report" and plural(2, "story", "stories") == "2 stories"
    assert format_drops({}) == []


@pytest.mark.slow
def test_summary_count_matches_the_drops_table_with_crawl_404s(
    tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with Site() as site:
        site.add("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
        site.add(
            "/sitemap.xml",
            urlset([url_entry(site.url("/news/ok")), url_entry(site.url("/news/gone"))]),
            "application/xml",
        )
        site.add_article("/news/ok", "Still here")
        site.add("/news/gone", "not found", "text/plain", status=404)  # a crawl 404
        site.add_article("/feed/ok", "Fine")
        site.add("/feed/gone", "not found", "text/plain", status=404)  # a fetch-stage 404
        site.add("/feed/pdf", b"%PDF-1.4", "application/pdf")
        items = "".join(
            f"<item><title>{p}</title><link>{site.url(p)}</link></item>"
            for p in ("/feed/ok", "/feed/gone", "/feed/pdf")
        )
        site.add(
            "/rss.xml", f'<rss version="2.0"><channel><title>t</title>{items}</channel></rss>', "text/xml"
        )
        registry = tmp_path / "sources.yaml"
        registry.write_text(
            "sources:\n"
            f"  - {{name: maps, kind: sitemap, url: '{site.url('/sitemap.xml')}'}}\n"
            f"  - {{name: feed, kind: rss, url: '{site.url('/rss.xml')}'}}\n",
            encoding="utf-8",
        )
        status = main(["run", "--sources", str(registry), "--store", sqlite_url, "--allow-private-network"])
    out = capsys.readouterr().out
    assert status == 0, out
    with Store(sqlite_url) as store, store.engine.connect() as conn:
        in_table = conn.execute(select(func.count()).select_from(drops)).scalar()
        urls = {r.url for r in conn.execute(select(drops.c.url))}
    match = re.search(r"^dropped: (\d+) URLs? from", out, re.M)
    assert match, out
    assert int(match.group(1)) == in_table == 3
    assert any(u.endswith("/news/gone") for u in urls), "the crawl's 404 is in the table"
    assert re.search(
        r"^  1× .*HTTP 404.* @ 127\.0\.0\.1: e\.g\. http://127\.0\.0\.1:\d+/news/gone$", out, re.M
    ), out


def test_a_private_address_refusal_names_the_switch() -> None:
    from pipeline.run import RunSummary
    from pipeline.summary import format_summary

    summary = RunSummary(
        sources_failed={
            "local": "refused http://127.0.0.1/rss: 127.0.0.1 is a loopback address "
            "(set allow_private_network to allow)"
        }
    )
    hint = format_summary(summary)[-1]
    assert "--allow-private-network" in hint and "NEWSAGG_ALLOW_PRIVATE_NETWORK=1" in hint
    assert not any("--allow-private-network" in line for line in format_summary(RunSummary()))
