"""The ``newsagg`` command. Flags are the last layer of configuration (see pipeline.config)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.config import Settings, load_settings
from pipeline.errors import ConfigError, NewsaggError, StoreError
from pipeline.summary import plural
from pipeline.timeutil import parse_since

log = logging.getLogger("newsagg")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130, as shells report Ctrl-C
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # 141, as shells report a reader that went away


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {
        "store_url": getattr(args, "store", None),
        "sources": getattr(args, "sources", None),
    }
    if getattr(args, "allow_private_network", False):
        overrides["allow_private_network"] = True
    return load_settings(overrides)


def _store_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store",
        metavar="URL",
        help="SQLAlchemy URL of the store (default: NEWSAGG_STORE_URL, then the embedded SQLite file)",
    )


def _source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--sources",
        metavar="FILE",
        help="source registry YAML (default: NEWSAGG_SOURCES, then ./sources.yaml)",
    )
    _store_arg(p)
    p.add_argument("--since", metavar="ISO-DATE", help="only take articles published since then")
    p.add_argument("--only", metavar="NAME", nargs="+", action="extend", help="only these sources")
    p.add_argument(
        "--allow-private-network",
        action="store_true",
        help="allow fetching from loopback and private addresses (demo, tests, intranets)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="newsagg", description=__doc__)
    parser.add_argument("--version", action="version", version=f"newsagg {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="the whole pipeline once")
    _source_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("crawl", help="crawl sitemap and section-page sources with Scrapy")
    _source_args(p)
    p.set_defaults(func=cmd_crawl)

    p = sub.add_parser("stories", help="print the canonical stories")
    _store_arg(p)
    p.add_argument("--since", metavar="ISO-DATE", help="only stories updated since then")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="at most N stories, newest first")
    p.add_argument(
        "--json", action="store_true", help="a JSON array (schema: README, 'newsagg stories --json')"
    )
    p.set_defaults(func=cmd_stories)

    p = sub.add_parser(
        "sources", help="each source's health after its latest run: state, last good run, flags"
    )
    p.add_argument(
        "--sources",
        metavar="FILE",
        help="source registry YAML; its sources are listed even before their first run "
        "(default: NEWSAGG_SOURCES, then ./sources.yaml; without one, the sources the store knows)",
    )
    _store_arg(p)
    p.add_argument("--json", action="store_true", help="a JSON array, one object per source")
    p.set_defaults(func=cmd_sources)
    p = sub.add_parser("explain", help="why two stored articles are (or are not) in one story")
    _store_arg(p)
    p.add_argument(
        "ids", nargs=2, metavar="ARTICLE_ID", help="two article ids (`article_id` in stories --json)"
    )
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("extract", help="clean saved HTML pages without the network")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="HTML files (.gz is unpacked)")
    p.add_argument("--url", help="the pages' URL (for relative links and metadata)")
    p.add_argument("--json", action="store_true", help="JSON lines (the only format, so the default)")
    p.add_argument("--workers", type=int, default=0, help="extraction processes (default: one per core)")
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("cluster", help="cluster a JSONL file of documents into stories, offline")
    p.add_argument("--input", required=True, type=Path, metavar="PATH", help="JSONL documents to cluster")
    p.add_argument("--output", required=True, type=Path, metavar="PATH", help="JSONL stories to write")
    p.set_defaults(func=cmd_cluster)

    p = sub.add_parser("recluster", help="re-cluster the whole store (keeps story ids where it can)")
    _store_arg(p)
    p.set_defaults(func=cmd_recluster)

    p = sub.add_parser("demo", help="serve the bundled sample news web and run the pipeline on it")
    p.add_argument(
        "--store",
        metavar="URL",
        help="store URL to fill and keep (default: a SQLite file in a temporary folder, deleted on exit)",
    )
    p.add_argument("--json", action="store_true", help="print the stories as JSON")
    p.set_defaults(func=cmd_demo)

    # -- the read contract: serve, export, token, db ---------------------------------
    p = sub.add_parser("serve", help="the read API and story page (FastAPI + uvicorn)")
    _store_arg(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("export", help="stories or articles changed after a cursor, to a file")
    _store_arg(p)
    p.add_argument(
        "--format", choices=["jsonl", "parquet"], default="jsonl", help="file format (default jsonl)"
    )
    p.add_argument(
        "--kind", choices=["stories", "articles"], default="stories", help="what to export (default stories)"
    )
    p.add_argument(
        "--since-seq",
        type=int,
        default=None,
        metavar="N",
        help="only rows whose change_seq is above N (default 0, or the cursor file)",
    )
    p.add_argument("--output", type=Path, metavar="PATH", help="file to write (default stdout)")
    p.add_argument(
        "--cursor-file",
        type=Path,
        metavar="PATH",
        help="read --since-seq from it and record the new cursor in it afterwards",
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("token", help="bearer tokens for the read API")
    token_sub = p.add_subparsers(dest="token_command", required=True)
    for name, text in (
        ("create", "make a token and print it once"),
        ("revoke", "revoke a token"),
        ("list", "list tokens (never the tokens)"),
    ):
        tp = token_sub.add_parser(name, help=text)
        _store_arg(tp)
        if name != "list":
            tp.add_argument("name", metavar="NAME", help="the token's name (unique)")
        tp.set_defaults(func=cmd_token)

    p = sub.add_parser("db", help="database administration")
    db_sub = p.add_subparsers(dest="db_command", required=True)
    dp = db_sub.add_parser(
        "grant-reader", help="PostgreSQL: create or update a role that can only read the newsagg_v1_* views"
    )
    _store_arg(dp)
    dp.add_argument("role", metavar="ROLE", help="PostgreSQL role to create or update")
    dp.add_argument(
        "--login", action="store_true", help="let the role log in (no password is set; pg_hba.conf decides)"
    )
    dp.set_defaults(func=cmd_db_grant_reader)
    return parser


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("trafilatura", "htmldate", "courlan", "charset_normalizer", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    # Alembic speaks at debug; Store.migrate says one line when a migration actually runs.
    logging.getLogger("alembic").setLevel(logging.DEBUG if verbose else logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"newsagg: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StoreError as exc:
        print(f"newsagg: store failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except NewsaggError as exc:
        print(f"newsagg: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("\nnewsagg: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return _broken_pipe()


def _broken_pipe() -> int:
    """The reader went away (``| head``): stop quietly, and keep Python's exit-time flush of
    stdout from raising again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_BROKEN_PIPE


def _run(settings: Settings, only: list[str] | None, since: datetime | None) -> int:
    from pipeline.context import open_context
    from pipeline.progress import Progress
    from pipeline.run import run_pipeline
    from pipeline.sources import load_registry, select

    sources = select(load_registry(settings.sources), only)
    if not sources:
        raise ConfigError("no enabled sources selected")
    with open_context(settings) as ctx:
        summary = run_pipeline(ctx, sources, since, Progress())
    print("\n".join(summary.lines()))
    return EXIT_FAILED if summary.nothing_done else EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    return _run(_settings(args), args.only, parse_since(args.since))


def cmd_crawl(args: argparse.Namespace) -> int:
    from pipeline.context import open_context
    from pipeline.crawl import run_crawl
    from pipeline.sources import load_registry, select

    settings = _settings(args)
    sources = select(load_registry(settings.sources), args.only, kinds=("sitemap", "html"))
    if not sources:
        raise ConfigError("no enabled sitemap or html sources selected")
    with open_context(settings):
        pass  # migrate before the subprocess writes
    result = run_crawl(settings, sources, parse_since(args.since))
    print(
        json.dumps(
            {
                "ok": result.ok,
                "failed": result.failed,
                "discovered": result.discovered,
                "stats": result.stats,
            },
            indent=2,
            default=str,
        )
    )
    return EXIT_FAILED if result.failed and not result.ok else EXIT_OK


def _print_stories(
    settings: Settings, since: datetime | None, as_json: bool, limit: int | None = None
) -> None:
    from pipeline.cluster.explain import describe_evidence
    from pipeline.dedup import story_to_json, with_evidence
    from pipeline.store.core import Store

    store = Store(settings.resolved_store_url, read_only=True)
    try:
        store.check_readable()
        stories = with_evidence(store, store.stories(since=since, limit=limit))
    finally:
        store.close()
    if as_json:
        json.dump([story_to_json(s) for s in stories], sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return
    for story in stories:
        outlets = sorted({a.source for a in story.articles})
        # one story told in several languages says so: the reports were joined across languages
        languages = sorted({a.language.split("-")[0].lower() for a in story.articles if a.language} - {"und"})
        told = f" in {len(languages)} languages ({', '.join(languages)})" if len(languages) > 1 else ""
        print(f"\n{story.title or '(untitled)'}" + (" (live blog)" if story.live_blog else ""))
        print(
            f"  {story.story_id} · {plural(len(story.articles), 'report')} from {', '.join(outlets)}{told} · "
            f"first {story.first_seen:%Y-%m-%d %H:%M}Z, updated {story.last_updated:%Y-%m-%d %H:%M}Z"
        )
        if story.summary:
            print(f"  {story.summary}")
        timeline: dict[str, list[str]] = {}
        for fig in story.figures:
            if fig.kind == "place":
                continue
            when = f"{fig.reported_at:%d %b %H:%M}" if fig.reported_at else "?"
            claim = f", {fig.source_claim}" if fig.source_claim else ""
            timeline.setdefault(fig.kind, []).append(f"{fig.value} ({fig.source} {when}{claim})")
        for kind in ("killed", "injured", "missiles", "drones", "intercepted"):
            if kind in timeline:
                print(f"  {kind}: " + " → ".join(timeline[kind]))
        places = sorted({f.value for f in story.figures if f.kind == "place"})
        if places:
            print("  places: " + ", ".join(places))
        why = [
            f"{label.lower()} {text}"
            for key, label, text in describe_evidence(story.evidence or {})
            if key in ("shared_places", "shared_names", "shared_counts")
        ]
        if len(story.articles) > 1 and why:
            print("  together because: " + " · ".join(why))
    print(("\n" if stories else "") + plural(len(stories), "story", "stories"))


def cmd_stories(args: argparse.Namespace) -> int:
    _print_stories(_settings(args), parse_since(args.since), args.json, args.limit)
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    from pipeline.cluster.explain import explain_pair
    from pipeline.dedup import to_doc

    store = _open_store(args, read_only=True)
    try:
        rows = {r.article_id: r for r in store.article_text_rows(args.ids)}
    finally:
        store.close()
    missing = [i for i in args.ids if i not in rows]
    if missing:
        raise ConfigError(f"no stored article with id {', '.join(missing)}")
    a, b = (rows[i] for i in args.ids)
    result = explain_pair(to_doc(a), to_doc(b))
    result["same_story"] = bool(a.story_id) and a.story_id == b.story_id
    result["story_ids"] = [a.story_id, b.story_id]
    json.dump(result, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    return EXIT_OK


def cmd_extract(args: argparse.Namespace) -> int:
    """One JSON line per file, in the order given; the files are extracted on every core."""
    import gzip

    from pipeline.errors import ExtractionError, NoBodyError
    from pipeline.extract import Extracted, extract_many

    status = EXIT_OK

    def fail(path: Path, error: object, partial: object = None) -> None:
        nonlocal status
        line: dict[str, object] = {"file": str(path), "error": str(error)}
        if isinstance(partial, Extracted):  # no body, but what the page states is kept
            line |= {"title": partial.title, "published_at": _iso(partial.published_at)}
        print(json.dumps(line, ensure_ascii=False), flush=True)
        status = EXIT_FAILED

    def pages() -> Iterator[tuple[Path, bytes, str | None]]:
        for path in args.files:
            try:
                raw = path.read_bytes()
                yield path, gzip.decompress(raw) if path.suffix == ".gz" else raw, args.url
            except (OSError, EOFError) as exc:
                fail(path, exc)

    for path, result in extract_many(pages(), workers=args.workers):
        if isinstance(result, ExtractionError):
            fail(path, result, result.partial if isinstance(result, NoBodyError) else None)
            continue
        print(
            json.dumps(
                {
                    "file": str(path),
                    "title": result.title,
                    "text": result.text,
                    "authors": list(result.authors),
                    "published_at": _iso(result.published_at),
                    "language": result.language,
                    "live_blog": result.live_blog,
                },
                ensure_ascii=False,
            ),
            flush=True,
        )
    return status


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def cmd_cluster(args: argparse.Namespace) -> int:
    from pipeline.cluster.core import cluster_file

    count = cluster_file(args.input, args.output)
    print(f"clustered {count} documents into {args.output}", file=sys.stderr)
    return EXIT_OK


def cmd_recluster(args: argparse.Namespace) -> int:
    from pipeline.context import open_context
    from pipeline.dedup import dedup

    with open_context(_settings(args)) as ctx, ctx.store.run_lock():
        outcome = dedup(ctx, recluster=True)
    print(
        f"reclustered: {outcome.articles} articles moved; stories "
        + ", ".join(f"{v} {k}" for k, v in sorted(outcome.stories.items()))
    )
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    import tempfile

    from pipeline.sampleweb.server import SampleWeb, sources_yaml

    with tempfile.TemporaryDirectory(prefix="newsagg-demo-") as tmp, SampleWeb() as web:
        registry = Path(tmp) / "sources.yaml"
        registry.write_text(sources_yaml(web.base_url), encoding="utf-8")
        store = args.store or f"sqlite:///{Path(tmp) / 'demo.db'}"
        settings = load_settings(
            {"store_url": store, "sources": str(registry), "allow_private_network": True}
        )
        where = (
            f"store {store}"
            if args.store
            else f"store {store} (a temporary folder, deleted on exit; pass --store to keep one)"
        )
        print(f"sample news web on {web.base_url}; {where}", file=sys.stderr)
        status = _run(settings, None, None)
        _print_stories(settings, None, args.json)
    return status


def cmd_sources(args: argparse.Namespace) -> int:
    from pipeline.health import overview
    from pipeline.sources import load_registry

    settings = _settings(args)
    names: list[str] | None = None
    registry_given = args.sources is not None or Path(settings.sources).is_file()
    if registry_given:
        names = [s.name for s in load_registry(settings.sources)]
    store = _open_store(args)
    try:
        health = overview(store, names)
    finally:
        store.close()
    if args.json:
        rows = [
            {
                "source": h.source,
                "state": h.state,
                "last_run": h.run.started_at.isoformat() if h.run else None,
                "last_good_run": h.last_good.isoformat() if h.last_good else None,
                "flags": [{"rule": f.rule, "detail": f.detail} for f in h.flags],
                "last_run_figures": None
                if h.run is None
                else {
                    "discovered": h.run.discovered,
                    "fetched": h.run.fetched,
                    "cleaned": h.run.cleaned,
                    "dropped": h.run.dropped,
                    "statuses": h.run.statuses,
                    "median_body": h.run.median_body,
                },
            }
            for h in health
        ]
        json.dump(rows, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    if not health:
        print("no source has run yet on this store", file=sys.stderr)
        return EXIT_OK
    width = max(len(h.source) for h in health)
    for h in health:
        good = f"last good run {h.last_good:%Y-%m-%d %H:%M}Z" if h.last_good else "no good run yet"
        figures = (
            f"; last run: {h.run.cleaned} new/changed, {h.run.fetched} fetched, {h.run.dropped} dropped"
            if h.run
            else ""
        )
        flags = "".join(f"; {f.rule}: {f.detail}" for f in h.flags)
        print(f"{h.source:<{width}}  {h.state:<7}  {good}{figures}{flags}")
    flagged = sum(1 for h in health if h.flags)
    print(f"\n{plural(len(health), 'source')}, {flagged} flagged")
    return EXIT_OK


# -- the read contract ---------------------------------------------------------------


def _open_store(args: argparse.Namespace, read_only: bool = False) -> Any:
    """The store, migrated for a writer; for a reader only checked (no store there: exit 2)."""
    from pipeline.store.core import Store

    store = Store(_settings(args).resolved_store_url, read_only=read_only)
    try:
        if read_only:
            store.check_readable()
        else:
            store.migrate()
    except BaseException:
        store.close()
        raise
    return store


def cmd_serve(args: argparse.Namespace) -> int:
    from pipeline.serve.readapi import serve

    if not 0 < args.port < 65536:
        raise ConfigError(f"--port: {args.port} is not a TCP port")
    store = _open_store(args, read_only=True)
    try:
        print(
            f"newsagg read API on http://{args.host}:{args.port}/ (store {store.safe_url})", file=sys.stderr
        )
        serve(store, args.host, args.port)
    finally:
        store.close()
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from pipeline.serve.export import export, read_cursor, write_cursor

    since = args.since_seq
    if since is None:
        since = read_cursor(args.cursor_file) if args.cursor_file else 0
    output = None if args.output is None or str(args.output) == "-" else args.output
    store = _open_store(args, read_only=True)
    try:
        result = export(store, args.format, output, since, args.kind)
    finally:
        store.close()
    if args.cursor_file:
        write_cursor(args.cursor_file, result)
    print(
        f"exported {result.rows} {args.kind} (change_seq {result.since_seq} < seq <= "
        f"{result.last_seq}) to {result.output}; continue with --since-seq {result.last_seq}",
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_token(args: argparse.Namespace) -> int:
    from pipeline.serve.tokens import create_token, list_tokens, revoke_token

    store = _open_store(args, read_only=args.token_command == "list")
    try:
        if args.token_command == "create":
            token = create_token(store, args.name)
            print(token)
            print(
                f"token {args.name!r} created; it is shown only now. Send it as "
                "'Authorization: Bearer <token>'.",
                file=sys.stderr,
            )
        elif args.token_command == "revoke":
            revoke_token(store, args.name)
            print(f"token {args.name!r} revoked", file=sys.stderr)
        else:
            for info in list_tokens(store):
                state = f"revoked {info.revoked_at:%Y-%m-%d %H:%M}Z" if info.revoked_at else "active"
                print(f"{info.name}\tcreated {info.created_at:%Y-%m-%d %H:%M}Z\t{state}")
    finally:
        store.close()
    return EXIT_OK


def cmd_db_grant_reader(args: argparse.Namespace) -> int:
    from pipeline.serve.tokens import grant_reader

    store = _open_store(args)
    try:
        warnings = grant_reader(store, args.role, login=args.login)
    finally:
        store.close()
    for warning in warnings:
        print(f"newsagg: warning: {warning}", file=sys.stderr)
    print(
        f"role {args.role} ({'LOGIN, no password' if args.login else 'NOLOGIN'}) may read "
        "the newsagg_v1_* views and nothing else in this database",
        file=sys.stderr,
    )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
