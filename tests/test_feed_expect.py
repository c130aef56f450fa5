"""feedparser's own expectations about entry titles and links, checked against ``parse_feed``.

Every file in ``../shared/data/feeds/feedparser-tests/tests`` starts with a header comment whose
``Expect:`` line is a Python expression over feedparser's result, e.g.
``not bozo and entries[0]['title'] == u'Example <b>Atom</b>'``. The expression is never
evaluated: it is parsed with :func:`ast.parse` (which runs nothing), and only top-level ``and``
conjuncts of the form ``entries[N]['title'] == <literal>`` (also ``['title_detail']['value']``)
and ``entries[N]['link'] == <literal>`` are taken; the literal goes through
:func:`ast.literal_eval` (string concatenations ``'a' + 'b'`` are folded literal by literal).
Anything under ``or``/``not`` or compared with a non-literal is not checked.

How a feedparser entry ``N`` is matched to our output: ``parse_feed`` keys entries on their
canonical http(s) URL and drops entries without one (by design, an entry without a link is not
an article). The test reparses the file with feedparser exactly as ``parse_feed`` does and finds
entry N's URL with the same rule (``pipeline.parse.feeds._entry_url``), then looks that URL up in
``parse_feed``'s result.

Fair normalisations (each applies to every file alike):

* The document URL is the one feedparser's own test server used
  (``http://127.0.0.1:8097/tests/<path>``), and the ``Header: Content-Location`` /
  ``Header: Content-type`` lines are passed as feedparser's harness passes them, so relative
  links resolve as the expectations assume.
* Links are compared after :func:`pipeline.parse.urls.canonicalize`, and only http(s) links.
* Titles are compared as plain text: the expected title goes through the same
  ``sanitize_text`` and whitespace folding as ``parse_feed``'s (which stores text, not markup).
* Most title test files (the ``amp``, ``sanitize`` and ``entry_title_*`` families) contain entries
  with no link at all, which ``parse_feed`` drops. For those, a second variant of the file is
  checked in which an absolute ``<link>`` (RSS/RDF) or ``<link rel="alternate" href>`` (Atom) is
  inserted right after the opening ``<item>``/``<entry>`` tag, and nothing else changes. Files
  whose entries are not plain ``<item>``/``<entry>`` elements (e.g. CDF ``<ITEM>``, prefixed
  elements) stay unchecked and are counted as such.

Beyond that plain-text form no normalisation was needed: feedparser's expectations already
describe its sanitised value, and newsagg keeps the text of it.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

import feedparser

from pipeline.extract import sanitize_text
from pipeline.parse.feeds import _entry_url, parse_feed
from pipeline.parse.urls import canonicalize
from tests.conftest import shared_path

HARNESS_BASE = "http://127.0.0.1:8097/tests/"
PROBE = "http://feeds.example/__probe/"
_EXPECT = re.compile(r"^\s*Expect:\s*(.*?)\s*$", re.M)
_HEADER = re.compile(r"^\s*Header:\s*([A-Za-z-]+):\s*(.*?)\s*$", re.M)
_OPEN_ITEM = re.compile(rb"<(item|entry)(\s[^>]*)?>")


@dataclass(frozen=True)
class Check:
    index: int
    field: str  # "title" | "link"
    want: str


def _fold(node: ast.AST) -> object:
    """A literal, or a ``+`` of string literals; raises ValueError on anything else."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _fold(node.left), _fold(node.right)
        if isinstance(left, str) and isinstance(right, str):
            return left + right
        raise ValueError("not a string concatenation")
    return ast.literal_eval(node)


def _subject(node: ast.AST) -> tuple[int, str] | None:
    keys: list[ast.AST] = []
    while isinstance(node, ast.Subscript):
        keys.append(node.slice)
        node = node.value
    if not (isinstance(node, ast.Name) and node.id == "entries"):
        return None
    path = [k.value if isinstance(k, ast.Constant) else None for k in reversed(keys)]
    if len(path) < 2 or not isinstance(path[0], int) or isinstance(path[0], bool):
        return None
    if path[1:] in (["title"], ["title_detail", "value"]):
        return path[0], "title"
    if path[1:] == ["link"]:
        return path[0], "link"
    return None


def _conjuncts(node: ast.AST):
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        for value in node.values:
            yield from _conjuncts(value)
    else:
        yield node


def expectations(expect: str) -> list[Check]:
    """The title/link checks in one Expect expression (parsed, never evaluated)."""
    try:
        tree = ast.parse(expect, mode="eval")
    except SyntaxError:
        return []
    checks: list[Check] = []
    for clause in _conjuncts(tree.body):
        if not isinstance(clause, ast.Compare) or not all(isinstance(o, ast.Eq) for o in clause.ops):
            continue
        nodes = [clause.left, *clause.comparators]
        subjects = [_subject(n) for n in nodes]
        literals = []
        for node, subject in zip(nodes, subjects, strict=True):
            if subject is None:
                try:
                    literals.append(_fold(node))
                except (ValueError, TypeError, SyntaxError):
                    literals.append(None)
        if len(literals) != 1 or not isinstance(literals[0], str):
            continue
        checks += [Check(s[0], s[1], literals[0]) for s in subjects if s is not None]
    return checks


def _with_probe_links(raw: bytes) -> bytes:
    """Each plain <item>/<entry> gets an absolute link as its first child; nothing else changes."""
    counter = iter(range(10_000))

    def add(match: re.Match[bytes]) -> bytes:
        href = f"{PROBE}{next(counter)}".encode()
        if match.group(1) == b"entry":
            return match.group(0) + b'<link rel="alternate" href="' + href + b'"/>'
        return match.group(0) + b"<link>" + href + b"</link>"

    return _OPEN_ITEM.sub(add, raw)


def _check_file(
    raw: bytes, doc_url: str, content_type: str | None, base: str, checks: list[Check]
) -> tuple[list[str], list[Check]]:
    """(failures, checks not addressable because entry N has no http(s) URL)."""
    headers = {"content-location": base}
    if content_type:
        headers["content-type"] = content_type
    reference = feedparser.parse(
        raw, response_headers=headers, sanitize_html=True, resolve_relative_uris=True
    )
    ours = {e.url: e for e in parse_feed(raw, base, content_type).entries}
    failures, unaddressable = [], []
    for check in checks:
        if check.index >= len(reference.entries):
            failures.append(f"{doc_url}: feedparser has no entries[{check.index}]")
            continue
        url = _entry_url(reference.entries[check.index], base)
        if url is None:
            unaddressable.append(check)
            continue
        entry = ours.get(url)
        if entry is None:
            failures.append(f"{doc_url}: entries[{check.index}] ({url}) missing from parse_feed")
        elif check.field == "title" and (entry.title or "") != _plain(check.want):
            failures.append(f"{doc_url}: title {entry.title!r} != {_plain(check.want)!r}")
        elif check.field == "link" and entry.url != canonicalize(check.want):
            failures.append(f"{doc_url}: link {entry.url!r} != {canonicalize(check.want)!r}")
    return failures, unaddressable


def _plain(title: str) -> str:
    """feedparser's title as plain text: ``parse_feed`` stores titles as text, not markup, so
    ``&#38;`` is ``&`` and ``Example <b>Atom</b>`` is ``Example Atom`` on both sides."""
    return " ".join(sanitize_text(title).split())


def test_feedparser_expectations_on_titles_and_links_hold() -> None:
    root = shared_path("data", "feeds", "feedparser-tests", "tests")
    files = sorted(p for p in root.rglob("*") if p.is_file())
    with_expect = checkable_files = checked = via_probe = 0
    unchecked: list[str] = []
    failures: list[str] = []
    for path in files:
        raw = path.read_bytes()
        head = raw[:8192].decode("latin-1")
        match = _EXPECT.search(head)
        if not match:
            continue
        with_expect += 1
        checks = [
            c
            for c in expectations(match.group(1))
            if c.field == "title" or c.want.strip().lower().startswith(("http://", "https://"))
        ]
        if not checks:
            continue
        checkable_files += 1
        headers = {k.lower(): v for k, v in _HEADER.findall(head)}
        rel = path.relative_to(root).as_posix()
        doc_url = HARNESS_BASE + rel
        base = headers.get("content-location", doc_url)
        content_type = headers.get("content-type")
        bad, linkless = _check_file(raw, rel, content_type, base, checks)
        failures += bad
        checked += len(checks) - len(linkless) - len(bad)
        if linkless:
            # Only titles can be probed: an injected link would replace the link under test.
            titles = [c for c in linkless if c.field == "title"]
            unchecked += [f"{rel}: {c}" for c in linkless if c.field != "title"]
            probed = _with_probe_links(raw)
            if titles and probed != raw:
                bad, still = _check_file(probed, rel + " (probe link)", content_type, base, titles)
                failures += bad
                via_probe += len(titles) - len(still) - len(bad)
                unchecked += [f"{rel}: {c}" for c in still]
            else:
                unchecked += [f"{rel}: {c}" for c in titles]
    print(
        f"\nfeedparser-tests: {len(files)} files, {with_expect} with Expect, "
        f"{checkable_files} with title/link expectations; {checked + via_probe} checks passed "
        f"({checked} as is, {via_probe} with a probe link), {len(unchecked)} not addressable"
    )
    assert failures == []
    assert checkable_files >= 150
    assert checked + via_probe >= 150
    # Not addressable: entries that are neither plain <item> nor <entry> (e.g. CDF <ITEM>).
    assert len(unchecked) <= 10, unchecked


def test_expect_parsing_is_literal_only() -> None:
    assert expectations("not bozo and entries[0]['title'] == u'A' + 'B'") == [Check(0, "title", "AB")]
    assert expectations("entries[0]['link'] == entries[1]['link'] == 'http://x/'") == [
        Check(0, "link", "http://x/"),
        Check(1, "link", "http://x/"),
    ]
    assert expectations("entries[0]['title'] == __import__('os').system('false')") == []
    assert expectations("not entries[0]['title'] == 'x'") == []
    assert expectations("bozo or entries[0]['title'] == 'x'") == []
