"""Values one outlet can send that must never stop a run: too long, NULs, lone surrogates, dates
at the ends of the calendar, integers past 64 bits. Each is cut to fit (or its one URL refused),
the same way on SQLite and PostgreSQL, and a rerun changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import Boolean, DateTime, Float, Integer, LargeBinary, Table, select

from pipeline.cli import main
from pipeline.models import Article, Figure, Story, StoryArticle
from pipeline.sampleweb.sites import Page, Site, article_html
from pipeline.store.core import Discovered, Store, url_hints
from pipeline.store.limits import (
    EVIDENCE_CHARS,
    JSON_LIST_ITEMS,
    JSON_STRING_CHARS,
    TEXT_LIMIT,
    TS_MAX,
    TS_MIN,
    Bounds,
    bound,
    fit_json,
    length,
    plausible,
)
from pipeline.store.schema import metadata, stories
from tests.conftest import fresh_pg_database

NOW = datetime.now(UTC).replace(microsecond=0)


# -- every column ----------------------------------------------------------------------------------


def _ordinary(column: Any) -> Any:
    kind = column.type
    if isinstance(kind, LargeBinary):
        return b"x"
    if isinstance(kind, DateTime):
        return NOW
    if isinstance(kind, Boolean):
        return False
    if isinstance(kind, Integer):  # BigInteger too
        return 1
    if isinstance(kind, Float):
        return 0.5
    return "a"


def _hostile(column: Any) -> list[Any]:
    kind = column.type
    if isinstance(kind, LargeBinary | Boolean | Float):
        return []
    if isinstance(kind, DateTime):
        return [datetime(9999, 12, 31, 23, 59, 59), datetime(1, 1, 1, tzinfo=UTC), datetime(2024, 5, 1, 12)]
    if isinstance(kind, Integer):
        return [10**20, -(10**30), 2**63]
    limit = length(column)
    assert limit is not None
    # too long by a little (a small column) or a lot; a NUL and a lone surrogate inside the limit
    return ["é\x00\ud800" + "x" * (min(limit, 5000) + 7), "\udfff" * 3]


def test_every_column_of_the_schema_takes_every_hostile_value(store: Store) -> None:
    """Walks each column of each table (including tables added later) and writes hostile values
    straight through the bounds: the database takes them and gives back exactly the bounded value."""
    bounds = Bounds()
    tried = 0
    for table in metadata.sorted_tables:
        if not isinstance(table, Table):
            continue
        for column in table.columns:
            for value in _hostile(column):
                row = {c.key: _ordinary(c) for c in table.columns}
                row[column.key] = value
                fitted = bounds.row(table, row)
                want = fitted[column.key]
                with store.engine.connect() as conn:  # rolled back: the store is left as it was
                    conn.execute(table.delete())
                    conn.execute(table.insert(), fitted)
                    got = conn.execute(select(table.c[column.key])).scalar_one()
                    conn.rollback()
                if isinstance(want, datetime):
                    got = got.replace(tzinfo=UTC) if got.tzinfo is None else got.astimezone(UTC)
                    assert TS_MIN <= got <= TS_MAX
                assert got == want, f"{table.name}.{column.key}"
                if isinstance(want, str):
                    assert "\x00" not in want and len(want) <= (length(column) or TEXT_LIMIT)
                tried += 1
    assert tried > 100
    print(f"\nhostile column values tried on {store.dialect}: {tried}")


def test_bound_keeps_ordinary_values_as_they_are() -> None:
    from pipeline.store.schema import articles, stories

    assert bound(articles.c.title, "Ordinary ünïcode 😀") == "Ordinary ünïcode 😀"
    assert bound(stories.c.article_count, 7) == 7
    naive = datetime(2024, 5, 1, 12)
    assert bound(articles.c.published_at, naive) == naive.replace(tzinfo=UTC)
    assert plausible(datetime(9999, 12, 31)) is None and plausible(datetime(1, 1, 1)) is None
    assert plausible(datetime(NOW.year + 5, 1, 1, tzinfo=UTC)) is None
    assert plausible(NOW) == NOW


# -- each finding, through the store's own methods ---------------------------------------------------


def _article(url: str, published: datetime | None, text: str = "Body text.") -> Article:
    return Article(url, "s", "Title", (), published, "en", text, f"h-{url[-8:]}", NOW)


def test_long_validators_and_charset_are_cut_and_a_rerun_writes_nothing(store: Store) -> None:
    page = dict(
        url="https://example.com/a",
        source="s",
        final_url="https://example.com/" + "r" * 3000,
        body=b"<html>x</html>",
        content_type="text/html; charset=" + "x" * 200,
        charset="x" * 100,
        etag='"' + "e" * 600 + '"',
        last_modified="L" * 300,
    )
    store.discover([Discovered("https://example.com/a", "s")])
    with store.begin() as conn:
        assert store.save_page(conn, **page) is True  # type: ignore[arg-type]
    with store.begin() as conn:
        assert store.save_page(conn, **page) is False  # type: ignore[arg-type]
    [pending] = store.pending(max_attempts=99)
    assert pending.etag is not None and len(pending.etag) == 512
    assert pending.last_modified is not None and len(pending.last_modified) == 128
    store.save_feed_validators("https://example.com/feed", "s", "e" * 600, "L" * 300)
    assert store.feed_validators("https://example.com/feed") == ("e" * 512, "L" * 128)
    assert store.bounds.cut["pages.etag"] == 2 and store.bounds.cut["pages.final_url"] == 2


def test_a_url_longer_than_the_column_is_refused_alone(store: Store) -> None:
    long = "https://example.com/" + "p" * 3000
    assert store.discover([Discovered(long, "s"), Discovered("https://example.com/ok", "s")]) == (1, 0)
    assert [p.url for p in store.pending()] == ["https://example.com/ok"]
    assert store.bounds.cut["urls.url (refused)"] == 1


@pytest.mark.parametrize("year", [1, 9999, 2099, 1900])
def test_feed_dates_outside_1990_to_next_year_are_not_kept(store: Store, year: int) -> None:
    url = f"https://example.com/{year}"
    store.discover([Discovered(url, "s", "t", datetime(year, 12, 31, 23, 59), datetime(year, 1, 1))])
    assert url_hints(store, [url]) == {url: ("t", None)}
    with store.begin() as conn:
        assert store.upsert_articles(conn, [_article(url, datetime(year, 6, 1, tzinfo=UTC))]) == ["new"]
    [row] = store.articles_to_dedup()
    assert row.published_at is None


def test_a_place_longer_than_the_figure_column_is_cut_and_dedup_is_stable(store: Store) -> None:
    url = "https://example.com/place"
    store.discover([Discovered(url, "s")])
    art = _article(url, NOW)
    with store.begin() as conn:
        store.upsert_articles(conn, [art])
    place = "P" * 314
    figs = (
        Figure("place", place, "s", url, NOW, article_id=art.article_id),
        Figure("place", place + "Q", "s", url, NOW, article_id=art.article_id),  # cut alike: one figure
        Figure("injured", str(10**20), "s", url, NOW, article_id=art.article_id),
    )
    story = Story(
        "st_1",
        "t\x00itle",
        "s",
        NOW,
        NOW,
        (StoryArticle(art.article_id, url, "s", "Title", NOW, None),),
        figs,
        best_article_id=art.article_id,
    )
    for expected in ("new", "unchanged"):
        with store.begin() as conn:
            store.assign(conn, {art.article_id: ("st_1", None, "sig")})
            assert store.save_story(conn, story) == expected
    [stored] = store.stories()
    assert stored.title == "title"
    assert sorted(len(f.value) for f in stored.figures) == [21, 256]


def test_a_claim_longer_than_its_column_is_cut_alike_on_both_databases_and_stays(store: Store) -> None:
    url = "https://example.com/claim"
    store.discover([Discovered(url, "s")])
    art = _article(url, NOW)
    with store.begin() as conn:
        store.upsert_articles(conn, [art])
    claim = "the regional military administration\x00 " + "of a very long name " * 20
    figs = (Figure("killed", "2", "s", url, NOW, claim, article_id=art.article_id),)
    members = (StoryArticle(art.article_id, url, "s", "Title", NOW, None),)
    story = Story("st_c", "t", "s", NOW, NOW, members, figs, best_article_id=art.article_id)
    for expected in ("new", "unchanged"):  # the stored value is the cut one: a rerun must match it
        with store.begin() as conn:
            store.assign(conn, {art.article_id: ("st_c", None, "sig")})
            assert store.save_story(conn, story) == expected
    [stored] = store.stories()
    [fig] = stored.figures
    limit = length(metadata.tables["figures"].c.source_claim)
    assert limit == 128
    assert fig.source_claim == claim.replace("\x00", "")[:limit]
    assert store.bounds.cut["figures.source_claim"] >= 1


def test_parquet_export_of_a_twenty_digit_count(store: Store, tmp_path: Path) -> None:
    from pipeline.serve.export import export

    test_a_place_longer_than_the_figure_column_is_cut_and_dedup_is_stable(store)
    out = tmp_path / "stories.parquet"
    result = export(store, "parquet", out)
    assert result.rows == 1
    [row] = pq.read_table(out).to_pylist()
    injured = [f for f in row["figures"] if f["kind"] == "injured"]
    assert injured == [{**injured[0], "value": str(10**20), "number": None}]


# -- whole runs on a loopback web ------------------------------------------------------------------


def _rss(items: list[tuple[str, str, str]]) -> str:
    body = "".join(
        f"<item><title>{title}</title><link>{link}</link>"
        + (f"<pubDate>{date}</pubDate>" if date else "")
        + "</item>"
        for title, link, date in items
    )
    head = '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>F</title>'
    return f"{head}{body}</channel></rss>"


def _undated(title: str, text: str) -> str:
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><article><h1>{title}</h1><p>{text}</p></article></body></html>"
    )


BODY = "Rescue workers cleared the rubble through the night while the city council met. " * 6


def _poison_site(site: Site) -> list[str]:
    """A feed with each poison of the findings; returns the article paths that must be stored."""
    long_path = "/a/" + "l" * 3000
    site.add("/a/good", article_html("A good report", BODY))
    site.add("/a/9999", _undated("Dated by the feed only", BODY + " year 9999."))
    site.add("/a/0001", _undated("Dated by the feed, year one", BODY + " year one."))
    site.add(
        "/a/headers",
        Page(
            200,
            article_html("Headers", BODY + " long validators.").encode(),
            "text/html; charset=utf-8; x=" + "c" * 100,
            {"ETag": '"' + "e" * 700 + '"', "Last-Modified": "Mon, " + "m" * 300},
        ),
    )
    site.add("/a/redirect", Page(301, b"", "text/plain", {"Location": long_path}))
    site.add(long_path, article_html("Redirected far", BODY + " a long redirect."))
    site.add(
        "/a/count",
        article_html("Count", "A strike injured 12345678901234567890 people in the city. " + BODY),
    )
    site.add(
        "/feed.xml",
        _rss(
            [
                ("Good", site.url("/a/good"), NOW.strftime("%a, %d %b %Y %H:%M:%S +0000")),
                ("Far future", site.url("/a/9999"), "Fri, 31 Dec 9999 23:59:59 GMT"),
                ("Year one", site.url("/a/0001"), "Mon, 01 Jan 0001 00:00:00 GMT"),
                ("Headers", site.url("/a/headers"), ""),
                ("Redirect", site.url("/a/redirect"), ""),
                ("Too long", site.url("/a/" + "x" * 3000), ""),
                ("Count", site.url("/a/count"), ""),
            ]
        ),
        "application/rss+xml",
    )
    return ["/a/good", "/a/9999", "/a/0001", "/a/headers", "/a/redirect", "/a/count"]


def _registry(tmp_path: Path, feeds: dict[str, str]) -> Path:
    reg = tmp_path / "sources.yaml"
    reg.write_text(
        "sources:\n"
        + "".join(
            f"  - name: {name}\n    kind: rss\n    url: {url}\n    delay: 0\n" for name, url in feeds.items()
        ),
        encoding="utf-8",
    )
    return reg


@dataclass
class Snapshot:
    articles: dict[str, tuple[Any, ...]]
    stories: int
    urls: int


def _snapshot(store_url: str) -> Snapshot:
    from pipeline.store.schema import articles, stories, urls

    store = Store(store_url)
    try:
        with store.begin() as conn:
            arts = {
                r.url: (r.article_id, r.content_hash, r.story_id)
                for r in conn.execute(
                    select(
                        articles.c.url, articles.c.article_id, articles.c.content_hash, articles.c.story_id
                    )
                )
            }
            n_stories = len(conn.execute(select(stories.c.story_id)).all())
            n_urls = len(conn.execute(select(urls.c.url)).all())
    finally:
        store.close()
    return Snapshot(arts, n_stories, n_urls)


def test_poison_values_from_one_outlet_do_not_stop_a_run_or_its_rerun(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Site() as site:
        must = _poison_site(site)
        reg = _registry(tmp_path, {"poison": site.url("/feed.xml")})
        args = ["run", "--sources", str(reg), "--store", store_url, "--allow-private-network"]
        assert main(args) == 0, capsys.readouterr()
        first = _snapshot(store_url)
        assert main(args) == 0, capsys.readouterr()
        second = _snapshot(store_url)
        wanted = {site.url(p) for p in must}
    assert first == second  # nothing lost, nothing duplicated, nothing moved
    stored = set(first.articles)
    assert wanted <= stored, sorted(wanted - stored)
    assert not any("/a/xxx" in u for u in stored)
    capsys.readouterr()
    out = tmp_path / "s.parquet"
    assert main(["export", "--store", store_url, "--format", "parquet", "--output", str(out)]) == 0
    assert pq.read_table(out).num_rows == first.stories
    capsys.readouterr()
    assert main(["stories", "--store", store_url, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert all(s["last_updated"] < (NOW + timedelta(days=400)).isoformat() for s in listed)


# -- the property: whatever the web sends, two runs succeed and agree ---------------------------------

_dates = st.sampled_from(
    [
        "",
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "Mon, 01 Jan 0001 00:00:00 GMT",
        "Thu, 01 Jan 2099 00:00:00 GMT",
        "2024-05-01T10:00:00",  # naive
        "2024-05-01T10:00:00+14:00",
        "Tue, 30 Feb 2024 25:61:61 +9999",
        "99999999999999999999",
    ]
)
_text = st.one_of(
    st.text(min_size=0, max_size=40),
    st.builds(lambda c, n: c * n, st.sampled_from(["x", "é", "\x00", "\ud800", "😀"]), st.integers(1, 5000)),
)
_header = st.builds(lambda c, n: c * n, st.sampled_from(["e", "W/", "0"]), st.integers(1, 3000))
_charset = st.sampled_from(["utf-8", "cp1251", "x" * 300, "utf-7", "shift_jis", "utf-16"])


@dataclass
class Hostile:
    title: str
    date: str
    etag: str
    charset: str
    body: str
    count: int


_hostile_items = st.lists(
    st.builds(Hostile, _text, _dates, _header, _charset, _text, st.integers(0, 10**30)),
    min_size=1,
    max_size=3,
)


def _xml_escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _hostile_site(site: Site, items: list[Hostile]) -> None:
    site.add("/good/1", article_html("Steady report", BODY))
    site.add("/good.xml", _rss([("Steady", site.url("/good/1"), "")]), "application/rss+xml")
    entries = []
    for i, item in enumerate(items):
        html = (
            f"<html><head><title>{_xml_escape(item.title)}</title></head><body><article>"
            f"<p>{_xml_escape(item.body)} injuring {item.count} people. {BODY}</p></article></body></html>"
        )
        site.add(
            f"/h/{i}",
            Page(
                200,
                html.encode("utf-8", "surrogatepass"),
                f"text/html; charset={item.charset}",
                {"ETag": item.etag, "Last-Modified": item.etag[:500]},
            ),
        )
        entries.append((_xml_escape(item.title), site.url(f"/h/{i}"), item.date))
    site.add("/hostile.xml", _rss(entries).encode("utf-8", "surrogatepass"), "application/rss+xml")


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_hostile_values_through_whole_runs_then_a_rerun(
    dialect: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    if dialect == "postgresql":
        import os

        if not os.environ.get("NEWSAGG_TEST_POSTGRES_URL"):
            pytest.skip("NEWSAGG_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against")
    counts = {"values": 0, "runs": 0, "lost": 0, "duplicated": 0}

    @settings(
        max_examples=5,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        phases=(Phase.explicit, Phase.generate),  # each example is two whole runs: no shrinking
    )
    @given(items=_hostile_items)
    def run_twice(items: list[Hostile]) -> None:
        tmp = tmp_path_factory.mktemp("hostile")
        with Site() as site:
            _hostile_site(site, items)
            reg = _registry(tmp, {"steady": site.url("/good.xml"), "hostile": site.url("/hostile.xml")})
            if dialect == "sqlite":
                url_cm: Any = _nullcontext(f"sqlite:///{tmp / 'h.db'}")
            else:
                url_cm = fresh_pg_database()
            with url_cm as store_url:
                args = ["run", "--sources", str(reg), "--store", store_url, "--allow-private-network"]
                assert main(args) == 0
                first = _snapshot(store_url)
                assert main(args) == 0
                second = _snapshot(store_url)
            good = site.url("/good/1")
        counts["values"] += 6 * len(items)
        counts["runs"] += 2
        counts["lost"] += len(set(first.articles) - set(second.articles))
        counts["duplicated"] += max(0, len(second.articles) - len(first.articles))
        assert good in first.articles
        assert first == second

    run_twice()
    print(f"\n{dialect}: {counts}")
    assert counts["runs"] >= 2 and counts["lost"] == 0 and counts["duplicated"] == 0


class _nullcontext:
    def __init__(self, value: str) -> None:
        self.value = value

    def __enter__(self) -> str:
        return self.value

    def __exit__(self, *exc: object) -> None:
        return None


# -- a story's evidence (a JSON column) ------------------------------------------------------------


def test_hostile_evidence_is_kept_within_its_bound_as_json_and_a_rewrite_changes_nothing(
    store: Store,
) -> None:
    url = "https://example.com/evidence"
    art = _article(url, NOW)
    with store.begin() as conn:
        store.upsert_articles(conn, [art])
        store.assign(conn, {art.article_id: ("st_ev", None, "sig")})
    hostile = {
        "reports": 10**30,
        "languages": ["en\x00", "\udfff"],
        "shared_names": [f"n{i}\x00\x01" + "é" * 10_000 for i in range(1000)],
        "shared_places": ["\x02" * 5000] * 50,
        "shared_counts": [str(10**400)] * 40,
        "nearest_similarity": {"min": float("nan"), "mean": float("inf")},
        "event_window": {"from": "9999-99-99", "nested": [[["deep"] * 100] * 100]},
    }
    story = Story("st_ev", "t", "s", NOW, NOW, (StoryArticle(art.article_id, url, "s", "Title", NOW),))
    story = Story(
        **{
            **{k: getattr(story, k) for k in Story.__slots__},
            "evidence": hostile,
            "best_article_id": art.article_id,
        }
    )
    for expected in ("new", "unchanged"):
        with store.begin() as conn:
            assert store.save_story(conn, story) == expected
    assert store.bounds.cut["stories.evidence"] == 2
    with store.engine.connect() as conn:
        text = conn.execute(select(stories.c.evidence)).scalar_one()
    assert len(text) <= EVIDENCE_CHARS and "\x00" not in text
    kept = json.loads(text)  # still JSON: lists lost entries, nothing was cut mid-text
    assert all(len(n) <= JSON_STRING_CHARS for n in kept["shared_names"])
    assert 0 < len(kept["shared_names"]) <= JSON_LIST_ITEMS
    assert kept["nearest_similarity"] == {"min": None, "mean": None}
    assert kept["languages"] == ["en", "\ufffd"]
    assert fit_json(kept, EVIDENCE_CHARS) == text, "the bound of what it keeps is what it keeps"
    [read] = store.stories()
    assert read.evidence == kept


def test_names_a_hostile_page_repeats_end_up_bounded_in_the_stored_evidence(store_url: str) -> None:
    """Two outlets carry one page naming hundreds of 150-letter names: dedup puts both in one
    story and stores its evidence within the bound, and a rerun writes nothing."""
    from pipeline.config import load_settings
    from pipeline.context import open_context
    from pipeline.dedup import dedup
    from tests.helpers import dump_store

    words = " ".join(f"Kyiv{chr(97 + i % 26)}{i}".ljust(150, "k") for i in range(300))
    body = f"Officials in Kyiv said that {words} were hit overnight, and {words} too."
    with Store(store_url) as store:
        store.migrate()
        with store.begin() as conn:
            store.upsert_articles(
                conn,
                [
                    Article(f"https://{s}.example/a", s, "Kyiv hit overnight", (), NOW, "en", body, "h", NOW)
                    for s in ("one", "two")
                ],
            )
    settings = load_settings({"store_url": store_url})
    with open_context(settings) as ctx:
        dedup(ctx)
        [story] = ctx.store.stories()
    assert len(story.articles) == 2 and story.evidence is not None
    names = story.evidence["shared_names"]
    assert len(names) == JSON_LIST_ITEMS and all(len(n) <= JSON_STRING_CHARS for n in names)
    assert any(len(n) == JSON_STRING_CHARS for n in names), "the long names were cut, not dropped"
    assert len(json.dumps(story.evidence, ensure_ascii=False)) <= EVIDENCE_CHARS
    before = dump_store(store_url)
    with open_context(settings) as ctx:
        dedup(ctx)
    assert dump_store(store_url) == before
