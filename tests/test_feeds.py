from __future__ import annotations

import pytest

from pipeline.parse.feeds import parse_feed

RSS = b"""<?xml version="1.0"?>
<rss version="2.0"><channel><title>Wire</title>
<item><title>Strike on Kyiv</title><link>/world/strike?utm_source=rss</link>
<pubDate>Wed, 19 Nov 2026 03:10:00 GMT</pubDate></item>
<item><title>No link</title></item>
<item><title>Dup</title><link>https://wire.example/world/strike</link></item>
</channel></rss>"""


def test_entries_are_canonical_absolute_and_unique() -> None:
    result = parse_feed(RSS, "https://wire.example/rss.xml", "application/rss+xml")
    assert result.bozo_reason is None
    assert [e.url for e in result.entries] == ["https://wire.example/world/strike"]
    assert result.entries[0].published_at is not None
    assert result.entries[0].published_at.isoformat() == "2026-11-19T03:10:00+00:00"


def test_never_accepts_a_url_or_path() -> None:
    with pytest.raises(TypeError, match="bytes"):
        parse_feed("https://wire.example/rss.xml", "https://wire.example/rss.xml")  # type: ignore[arg-type]


def test_malformed_feed_keeps_what_it_can() -> None:
    broken = RSS.replace(b"</channel></rss>", b"<item><title>x &nbsp </title>")
    result = parse_feed(broken, "https://wire.example/rss.xml")
    assert result.bozo_reason
    assert [e.url for e in result.entries] == ["https://wire.example/world/strike"]


def test_garbage_is_not_a_feed() -> None:
    result = parse_feed(b"\x89PNG\r\n\x1a\n\x00\x00 not xml at all", "https://x.example/feed")
    assert result.entries == ()
    assert result.bozo_reason is not None and result.bozo_reason.startswith("not a feed")
