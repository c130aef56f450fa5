"""The article body: trafilatura's fast path, its full cascade when needed, and clean-up."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from typing import Any

import lxml.etree
import lxml.html

from pipeline.extract.result import charge
from pipeline.extract.text import CJK, NON_WORD, alnum_key

_ESCALATE_SHARE = 0.6  # fast text below this share of the biggest text block: run the full cascade
# text-level elements whose text belongs to the block around them (links do not: they are menus)
_RUNNING_TEXT = {
    "p",
    "b",
    "i",
    "em",
    "strong",
    "span",
    "font",
    "u",
    "small",
    "big",
    "sup",
    "sub",
    "q",
    "cite",
}
_NOT_TEXT = {"script", "style", "noscript", "template", "head", "title", "option", "textarea"}


_TEXT_NODES = lxml.etree.XPath("//text()[normalize-space()]")
_IN_PARAGRAPHS = 1.5  # fast text up to this many times the biggest <p> run: the article is in <p>
_ARTICLE_IN_P = 1000  # characters: a <p> run this long is an article, not a caption or a footer


def _largest_paragraph_block(tree: lxml.html.HtmlElement) -> int:
    """Characters in the biggest run of sibling ``<p>``."""
    blocks: dict[Any, int] = {}
    for p in tree.iter("p"):
        parent = p.getparent()
        blocks[parent] = blocks.get(parent, 0) + len(p.text_content())
    return max(blocks.values(), default=0)


def largest_text_block(tree: lxml.html.HtmlElement) -> int:
    """Characters in the page's biggest block of running text, of any kind: a run of sibling
    ``<p>``, or a ``<td>``/``<div>`` whose own text runs between ``<br>`` and ``<font>``. A cheap
    floor for the article's length that old table and ``<br>`` layouts reach too.

    Each text node counts for the nearest element around it that is not running text itself;
    a link counts as running text only inside running text (elsewhere it is a menu).
    """
    blocks: dict[Any, int] = {}
    for node in _TEXT_NODES(tree):
        el = node.getparent()
        if node.is_tail and el is not None:
            el = el.getparent()
        while el is not None:
            parent = el.getparent()
            if el.tag in _RUNNING_TEXT or (
                el.tag == "a" and parent is not None and parent.tag in _RUNNING_TEXT
            ):
                el = parent
            else:
                break
        if el is None or el.tag in _NOT_TEXT:
            continue
        blocks[el] = blocks.get(el, 0) + len(node)
    return max(blocks.values(), default=0)


def body_text(tree: lxml.html.HtmlElement, url: str | None) -> str:
    """Trafilatura's fast mode first; its full cascade only when fast mode under-delivers.

    The full cascade runs readability and justext on every page to second-guess the main
    extractor, which costs a third of the time and rarely changes the result. Here it runs only
    when the fast text is shorter than a share of the page's biggest block of running text, the
    same kind of signal (a bigger block the extractor missed) that makes readability win there.
    """
    text = _trafilatura(tree, url, fast=True)
    paragraphs = _largest_paragraph_block(tree)
    # an article found in <p> is measured by its paragraphs alone; the walk over every text
    # node (ten times the cost) is for pages whose article is not in <p>, or not only
    in_paragraphs = paragraphs >= _ARTICLE_IN_P and len(text) <= _IN_PARAGRAPHS * paragraphs
    floor = paragraphs if in_paragraphs else max(paragraphs, largest_text_block(tree))
    if len(text) < _ESCALATE_SHARE * floor:
        full = _trafilatura(tree, url, fast=False)
        if len(full) > len(text):
            text = full
    return text


def _trafilatura(tree: lxml.html.HtmlElement, url: str | None, *, fast: bool) -> str:
    import trafilatura

    # comments are not the article; tables often are (results, figures)
    start = time.thread_time()
    try:
        document = trafilatura.bare_extraction(
            tree, url=url, fast=fast, include_comments=False, include_tables=True, with_metadata=False
        )
    finally:
        charge("trafilatura", start)
    text = getattr(document, "text", None)
    return text if isinstance(text, str) else ""


_HEAD_LINES = 4
_MIN_LINK_KEY = 10
_MAX_LINK_LINE = 300  # characters: longer lines are prose, not a linked headline


def drop_link_lists(tree: lxml.html.HtmlElement, body: str) -> str:
    """Drop runs of two or more lines that are each the whole text of a link on the page.

    Such runs are "related articles"/"read more" lists that slipped into the body; a single
    linked line can be part of the text, a list of them is navigation.
    """
    lines = body.split("\n")
    # a line can be a link's whole text only if it is headline-sized; and only a run of two
    # such lines can be dropped, so most bodies (long paragraphs) need no look at the links
    short = [len(line) <= _MAX_LINK_LINE for line in lines]
    if not any(a and b for a, b in itertools.pairwise(short)):
        return body
    keys = [alnum_key(line) if ok else "" for line, ok in zip(lines, short, strict=True)]
    lengths = [len(key) for key in keys if len(key) > _MIN_LINK_KEY]
    if len(lengths) < 2:
        return body
    shortest = min(lengths) // 2  # most links are short menu items: no key needed for them
    links = {
        alnum_key(text)
        for text in (a.text_content() for a in tree.iter("a"))
        if shortest <= len(text) <= 4 * _MAX_LINK_LINE
    }
    flags = [len(key) > _MIN_LINK_KEY and key in links for key in keys]
    if sum(flags) < 2:
        return body
    padded = [False, *flags, False]
    kept = [line for i, line in enumerate(lines) if not (flags[i] and (padded[i] or padded[i + 2]))]
    return "\n".join(kept) if kept else body


def add_lead(tree: lxml.html.HtmlElement, body: str, descriptions: Sequence[str]) -> str:
    """Put the standfirst back in front of the body when the page shows it but the body lacks it.

    Body extractors often skip the lead paragraph (it sits above the article container, styled
    as a teaser). The page's own description is that lead when the same text is visible on the
    page; a description found only in metadata is a summary nobody reads there, so it stays out.
    Runs last: it strips scripts from ``tree`` to see only visible text.
    """
    body_key = NON_WORD.sub("", body.casefold())
    wanted = []
    for description in descriptions:
        if len(description.split()) < 8:
            continue
        key = NON_WORD.sub("", description.rstrip(".…").casefold())
        if key[:60] in body_key:
            return body  # the body has its lead; other descriptions are captions or teasers
        wanted.append((description, key))
    if not wanted:
        return body
    page = tree.find("body")
    if page is None:
        return body
    lxml.etree.strip_elements(
        page,
        "script",
        "style",
        "noscript",
        "template",
        "figure",
        "figcaption",
        "aside",
        "nav",
        "footer",
        with_tail=False,
    )
    visible = NON_WORD.sub("", page.text_content().casefold())
    for description, key in wanted:
        if key in visible:
            return f"{description}\n{body}"
    return body


def drop_repeated_header(body: str, headlines: Sequence[str], authors: Sequence[str]) -> str:
    """Drop the headline and a bare byline when the body repeats them in its first lines.

    They are already in ``title``/``authors``; left in, every consumer of ``text`` (dedup,
    summaries, clustering) sees them twice. Compared on letters and digits only, so a kicker
    glued to the headline ("Kicker:Headline") or different spacing still matches.
    """
    heads = {alnum_key(h) for h in headlines} - {""}
    names = [k for k in (alnum_key(a) for a in authors) if k]
    lines = body.split("\n")
    keep_from = 0
    for i, line in enumerate(lines[:_HEAD_LINES]):
        key = alnum_key(line)
        byline = bool(names) and len(line) <= 80 and any(n in key and len(key) - len(n) <= 12 for n in names)
        if key in heads or byline:
            keep_from = i + 1  # short kicker/date lines above it go too
        elif len(line.split()) > 25:
            break  # real prose: the header, if any, is over
    return "\n".join(lines[keep_from:]) if keep_from < len(lines) else body


_MIN_PARAGRAPH = 50  # characters (CJK count double): the floor for one line of real prose


def has_prose(body: str) -> bool:
    """A body needs one paragraph-sized line; menus and link lists salvaged by the fallbacks
    of a page without an article are all short lines."""
    return any(
        len(line) + len(CJK.findall(line)) >= _MIN_PARAGRAPH
        for line in body.split("\n")
        if len(line) * 2 >= _MIN_PARAGRAPH
    )


def word_count(text: str) -> int:
    return len(text.split())
