from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.parse.urls import canonicalize, is_tracking_param


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("HTTP://News.Example.COM:80/world/a?id=7#comments", "http://news.example.com/world/a?id=7"),
        ("https://news.example.com:443/a", "https://news.example.com/a"),
        ("https://news.example.com:8443/a", "https://news.example.com:8443/a"),
        ("https://n.example/a?utm_source=rss&utm_medium=feed&id=3", "https://n.example/a?id=3"),
        ("https://n.example/a?fbclid=XYZ&gclid=1&page=2", "https://n.example/a?page=2"),
        ("https://n.example/a?b=2&a=1", "https://n.example/a?a=1&b=2"),
        ("https://n.example", "https://n.example/"),
        ("https://n.example/%7Euser/", "https://n.example/~user/"),
        ("https://n.example/a%2fb", "https://n.example/a/b"),
    ],
)
def test_examples(raw: str, expected: str) -> None:
    assert canonicalize(raw) == expected


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
values = st.text(alphabet="abcXYZ0123456789-._~ /&=%+é", max_size=8)
params = st.lists(st.tuples(names, values), max_size=6)
paths = st.lists(st.text(alphabet="abcdefghij0123456789-_.~%é ", min_size=1, max_size=8), max_size=4).map(
    lambda parts: "/" + "/".join(parts)
)
hosts = st.sampled_from(["news.example.com", "NEWS.Example.com", "a.b", "127.0.0.1"])


def build(scheme: str, host: str, path: str, query: list[tuple[str, str]]) -> str:
    from urllib.parse import quote, urlencode

    return f"{scheme}://{host}{quote(path, safe='/%')}?{urlencode(query)}"


@given(st.sampled_from(["http", "https", "HTTP"]), hosts, paths, params)
def test_idempotent(scheme: str, host: str, path: str, query: list[tuple[str, str]]) -> None:
    once = canonicalize(build(scheme, host, path, query))
    assert canonicalize(once) == once


@given(hosts, paths, params)
def test_query_order_does_not_matter(host: str, path: str, query: list[tuple[str, str]]) -> None:
    distinct = list(dict(query).items())
    assert canonicalize(build("https", host, path, distinct)) == canonicalize(
        build("https", host, path, list(reversed(distinct)))
    )


@given(
    hosts,
    paths,
    params,
    st.lists(
        st.tuples(st.sampled_from(["utm_source", "utm_campaign", "fbclid", "gclid", "utm_x"]), values),
        max_size=3,
    ),
)
def test_tracking_dropped_content_kept(
    host: str, path: str, content: list[tuple[str, str]], tracking: list[tuple[str, str]]
) -> None:
    content = [(k, v) for k, v in content if not is_tracking_param(k)]
    canonical = canonicalize(build("https", host, path, content + tracking))
    kept = parse_qsl(urlsplit(canonical).query, keep_blank_values=True)
    assert sorted(kept) == sorted(content)
    assert canonical == canonicalize(build("https", host, path, content))
