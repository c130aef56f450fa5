"""pipeline.net.client against a misbehaving loopback server (tests/faultserver.py).

Settings are small (2 s timeouts, 1 MiB cap, no host delay unless a test is about spacing) so
the file runs in seconds. Names are resolved by a fake resolver that fails on anything it does
not know, so no test ever touches real DNS or leaves 127.0.0.1.
"""

from __future__ import annotations

import datetime
import gzip
import ipaddress
import itertools
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pipeline.net.client as http_mod
import pipeline.net.guard as guard
from pipeline.config import Settings
from pipeline.errors import FetchError, RefusedError
from pipeline.net.client import (
    DeferredError,
    HttpClient,
    Response,
    check_url,
    classify_address,
    parse_retry_after,
)
from tests.faultserver import (
    ETAG,
    LAST_MODIFIED,
    TEXT,
    FaultServer,
    TlsFiles,
    fault_server_fixture,  # noqa: F401  (the fault_server fixture)
    gzip_bomb,
    make_tls_files,
)

MiB = 1 << 20
EPS = 0.005  # clock granularity only: spacing is a lower bound the client must guarantee


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "user_agent": "newsagg-test/1.0 (+tests)",
        "connect_timeout": 2.0,
        "read_timeout": 2.0,
        "total_timeout": 2.0,
        "max_bytes": MiB,
        "max_redirects": 5,
        "host_delay": 0.0,
        "retry_after_cap": 5.0,
        "host_failure_limit": 5,
        "allow_private_network": True,
    }
    values.update(overrides)
    return Settings(**values)


class FakeResolver:
    """Fixed answers per name; records lookups; any other name fails the test."""

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table = table or {}
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        if host not in self.table:
            raise AssertionError(f"unexpected DNS lookup of {host!r}")
        return list(self.table[host])


MakeClient = Callable[..., HttpClient]


@pytest.fixture
def make_client() -> Iterator[MakeClient]:
    clients: list[HttpClient] = []

    def make(
        *,
        resolver: FakeResolver | None = None,
        max_attempts: int = 1,
        backoff_base: float = 0.01,
        ca_certs: str | None = None,
        **overrides: Any,
    ) -> HttpClient:
        client = HttpClient(
            make_settings(**overrides),
            resolver=resolver or FakeResolver(),
            max_attempts=max_attempts,
            backoff_base=backoff_base,
            ca_certs=ca_certs,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def gaps(records: list[Any]) -> list[float]:
    """Server-side time from the end of each request to the start of the next.

    The server finishes before the client does and sees a request after it was sent, so
    this is never more than the client's own gap: a lower bound holds for both.
    """
    ordered = sorted(records, key=lambda r: r.start)
    return [b.start - a.end for a, b in itertools.pairwise(ordered)]


# =========================================================================== SSRF guard

V4_BLOCKED = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/4",
    "240.0.0.0/4",
]
V6_BLOCKED = ["::1/128", "fc00::/7", "fe80::/10", "ff00::/8", "fec0::/10", "2001:db8::/32"]


def embeddings(v4: ipaddress.IPv4Address) -> list[ipaddress.IPv6Address]:
    """IPv6 spellings that reach ``v4``: IPv4-mapped, NAT64 and 6to4."""
    n = int(v4)
    return [
        ipaddress.IPv6Address((0xFFFF << 32) | n),
        ipaddress.IPv6Address((0x64FF9B << 96) | n),
        ipaddress.IPv6Address((0x2002 << 112) | (n << 80)),
    ]


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("10.0.0.5", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.1", "documentation"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "unique-local"),
        ("fd12:3456::1", "unique-local"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback address (IPv4-mapped 127.0.0.1)"),
        ("::ffff:10.0.0.1", "private address (IPv4-mapped 10.0.0.1)"),
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::7f00:1", "loopback address (NAT64 form of 127.0.0.1)"),
        ("2002:7f00:1::", "loopback address (6to4 form of 127.0.0.1)"),
        ("2002:a00:1::", "private"),
        ("2001:db8::1", "documentation"),
        ("2001::1", "Teredo"),
        ("::7f00:1", "reserved"),
        ("64:ff9b:1::1", "NAT64"),
    ],
)
def test_classify_refuses_special_addresses(address: str, reason: str) -> None:
    verdict = classify_address(address)
    assert verdict is not None and reason in verdict


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "93.184.216.34",
        "1.1.1.1",
        "2606:4700:4700::1111",
        "2a00:1450:4001::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
    ],
)
def test_classify_allows_public_addresses(address: str) -> None:
    assert classify_address(address) is None


@given(st.sampled_from(V4_BLOCKED).flatmap(lambda net: st.ip_addresses(network=net)))
def test_every_address_in_a_blocked_ipv4_range_is_refused_in_every_spelling(ip: Any) -> None:
    assert classify_address(ip) is not None
    for form in embeddings(ip):
        assert classify_address(form) is not None, form


@given(st.sampled_from(V6_BLOCKED).flatmap(lambda net: st.ip_addresses(network=net)))
def test_every_address_in_a_blocked_ipv6_range_is_refused(ip: Any) -> None:
    assert classify_address(ip) is not None


@given(st.ip_addresses(v=4))
def test_embedded_forms_get_the_verdict_of_the_ipv4_address(ip: ipaddress.IPv4Address) -> None:
    public = classify_address(ip) is None
    assert [classify_address(form) is None for form in embeddings(ip)] == [public] * 3


@given(st.ip_addresses())
def test_nothing_the_stdlib_calls_non_global_is_allowed(ip: Any) -> None:
    if classify_address(ip) is not None:
        return
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour
        if ip in ipaddress.IPv6Network("64:ff9b::/96"):
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None:
            assert inner.is_global
            return
    assert ip.is_global


def spell(value: int, form: str) -> str:
    """``value`` as one of the IPv4 spellings inet_aton accepts."""
    a, b, c, d = ipaddress.IPv4Address(value).packed
    return {
        "decimal": str(value),
        "hex": hex(value),
        "octal-dotted": ".".join(f"0{x:o}" for x in (a, b, c, d)),
        "hex-dotted": ".".join(hex(x) for x in (a, b, c, d)),
        "two-part": f"{a}.{value & 0xFFFFFF}",
        "three-part": f"{a}.{b}.{value & 0xFFFF}",
        "mixed": f"{hex(a)}.0{b:o}.{(c << 8) | d}",
    }[form]


SPELLINGS = ["decimal", "hex", "octal-dotted", "hex-dotted", "two-part", "three-part", "mixed"]


@given(st.integers(0, 2**32 - 1), st.sampled_from(SPELLINGS))
def test_numeric_ipv4_spellings_are_read_like_the_c_resolver(value: int, form: str) -> None:
    spelled = spell(value, form)
    ip = ipaddress.IPv4Address(value)
    assert socket.inet_aton(spelled) == ip.packed  # what a resolver would connect to ...
    assert check_url(f"http://{spelled}/", allow_private=True, resolver=FakeResolver()) == [
        str(ip)
    ]  # ... is what we vet
    if classify_address(ip) is not None:
        with pytest.raises(RefusedError, match="pass --allow-private-network, set NEWSAGG_ALLOW_PRIVATE"):
            check_url(f"http://{spelled}/", allow_private=False, resolver=FakeResolver())


def test_check_url_message_names_url_address_and_setting() -> None:
    with pytest.raises(RefusedError) as info:
        check_url("http://10.0.0.5/x", allow_private=False)
    assert str(info.value) == (
        "refused http://10.0.0.5/x: 10.0.0.5 is a private address; to fetch it anyway, pass "
        "--allow-private-network, set NEWSAGG_ALLOW_PRIVATE_NETWORK=1, or put "
        "allow_private_network = true in newsagg.toml"
    )
    assert info.value.url == "http://10.0.0.5/x"
    assert not info.value.retryable


def test_check_url_requires_every_resolved_address_to_be_public() -> None:
    mixed = FakeResolver({"news.example": ["93.184.216.34", "10.1.2.3"]})
    with pytest.raises(RefusedError, match=r"news\.example resolves to 10\.1\.2\.3"):
        check_url("https://news.example/a", allow_private=False, resolver=mixed)
    public = FakeResolver({"news.example": ["93.184.216.34", "2606:2800:220:1::1"]})
    assert check_url("https://news.example/a", allow_private=False, resolver=public) == [
        "93.184.216.34",
        "2606:2800:220:1::1",
    ]
    assert check_url("https://news.example/a", allow_private=True, resolver=mixed) == [
        "93.184.216.34",
        "10.1.2.3",
    ]


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/x",
        "gopher://example.com/",
        "data:text/html,hi",
        "javascript:alert(1)",
        "//example.com/x",
        "example.com/x",
        "",
        "HTTPX://example.com/",
    ],
)
@pytest.mark.parametrize("allow_private", [False, True])
def test_only_http_and_https(url: str, allow_private: bool) -> None:
    resolver = FakeResolver()
    with pytest.raises(RefusedError, match="only http and https"):
        check_url(url, allow_private=allow_private, resolver=resolver)
    assert resolver.calls == []


@pytest.mark.parametrize(
    "url",
    [
        "http://1.2.3.4.5/",
        "http://256.1.1.1/",
        "http://1.2.3.0x100/",
        "http://09.1.1.1/",
        "http://exa mple.com/",
        "http://[::1/",
        "http://example.com:99999/",
        "http:///path",
    ],
)
def test_malformed_hosts_are_refused_without_lookup(url: str) -> None:
    resolver = FakeResolver()
    with pytest.raises(RefusedError):
        check_url(url, allow_private=True, resolver=resolver)
    assert resolver.calls == []


def test_resolution_failure_is_retryable(make_client: MakeClient) -> None:
    def broken(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    client = HttpClient(make_settings(), resolver=broken, max_attempts=1)
    with client, pytest.raises(FetchError, match=r"cannot resolve nowhere\.test") as info:
        client.get("http://nowhere.test/")
    assert type(info.value) is FetchError


def test_international_names_are_looked_up_in_idna_form() -> None:
    resolver = FakeResolver({"xn--bcher-kva.example": ["93.184.216.34"]})
    assert check_url("http://Bücher.example/", allow_private=False, resolver=resolver) == ["93.184.216.34"]


@pytest.mark.parametrize(
    "answers",
    [
        ["127.0.0.1"],
        ["10.0.0.5"],
        ["::ffff:127.0.0.1"],
        ["169.254.169.254"],
        ["100.64.1.1"],
        ["fc00::1"],
        ["::1"],
        ["0.0.0.0"],
        ["93.184.216.34", "127.0.0.1"],
    ],
)
def test_names_resolving_to_private_addresses_never_connect(
    fault_server: FaultServer, make_client: MakeClient, answers: list[str]
) -> None:
    resolver = FakeResolver({"news.example": answers})
    client = make_client(allow_private_network=False, resolver=resolver)
    with pytest.raises(RefusedError, match="pass --allow-private-network, set NEWSAGG_ALLOW_PRIVATE"):
        client.get(fault_server.url("/ok", host="news.example"))
    assert resolver.calls == ["news.example"]
    assert fault_server.accepts == 0


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "2130706433",
        "0x7f000001",
        "0x7f.0.0.1",
        "0177.0.0.1",
        "0177.1",
        "127.1",
        "127.0.1",
        "017700000001",
        "127.0.0.1.",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::1]",
        "[0:0:0:0:0:0:0:1]",
        "[64:ff9b::7f00:1]",
        "[2002:7f00:1::]",
        "localhost",
    ],
)
def test_literal_loopback_spellings_never_connect(
    fault_server: FaultServer, make_client: MakeClient, host: str
) -> None:
    resolver = FakeResolver({"localhost": ["127.0.0.1", "::1"]})
    client = make_client(allow_private_network=False, resolver=resolver)
    with pytest.raises(RefusedError, match="loopback"):
        client.get(f"http://{host}:{fault_server.port}/ok")
    assert fault_server.accepts == 0
    assert resolver.calls == (["localhost"] if host == "localhost" else [])


def test_allowed_private_network_reaches_the_pinned_address(
    fault_server: FaultServer, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_up: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def spy(host: Any, *args: Any, **kwargs: Any) -> Any:
        looked_up.append(host)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", spy)
    resolver = FakeResolver({"news.example": ["127.0.0.1"]})
    client = make_client(allow_private_network=True, resolver=resolver)
    response = client.get(fault_server.url("/ok", host="news.example"))
    assert response.status == 200
    assert response.url == fault_server.url("/ok", host="news.example")
    assert resolver.calls == ["news.example"]  # one vetting lookup ...
    assert "news.example" not in looked_up  # ... and no second one a rebinder could answer
    assert fault_server.requests[-1].host == f"news.example:{fault_server.port}"


def test_allowed_private_network_accepts_numeric_spellings(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    response = make_client().get(f"http://2130706433:{fault_server.port}/ok")
    assert response.status == 200
    assert fault_server.requests[-1].host == f"127.0.0.1:{fault_server.port}"


@pytest.fixture
def loopback_is_public(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the guard pass 127.0.0.1 (only) so a redirect *from* the fault server is tested."""
    real = guard.classify_address
    monkeypatch.setattr(guard, "classify_address", lambda ip: None if str(ip) == "127.0.0.1" else real(ip))


@pytest.mark.usefixtures("loopback_is_public")
@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/redirect/private", "10.0.0.1 is a private address"),
        ("/redirect/metadata", "169.254.169.254 is a link-local address"),
        ("/redirect/to?url=http://evil.test:{port}/ok", "evil.test resolves to 127.0.0.2"),
        ("/redirect/to?url=http://[::ffff:127.0.0.1]:{port}/ok", "IPv4-mapped"),
    ],
)
def test_every_redirect_hop_is_vetted(
    fault_server: FaultServer, make_client: MakeClient, path: str, reason: str
) -> None:
    resolver = FakeResolver({"evil.test": ["127.0.0.2"]})
    client = make_client(allow_private_network=False, resolver=resolver)
    with pytest.raises(RefusedError, match="redirected from") as info:
        client.get(fault_server.url(path.format(port=fault_server.port)))
    assert reason in str(info.value)
    assert len(fault_server.requests) == 1
    assert fault_server.accepts == 1


def test_redirect_to_file_is_refused(fault_server: FaultServer, make_client: MakeClient) -> None:
    with pytest.raises(RefusedError, match="scheme 'file' is not allowed"):
        make_client().get(fault_server.url("/redirect/file"))


# =========================================================================== redirects


def test_redirect_chain_within_the_limit(fault_server: FaultServer, make_client: MakeClient) -> None:
    response = make_client().get(fault_server.url("/redirect/chain/5"))
    assert response.status == 200
    assert response.url == fault_server.url("/redirect/chain/0")
    assert len(fault_server.requests) == 6


def test_too_many_redirects(fault_server: FaultServer, make_client: MakeClient) -> None:
    with pytest.raises(RefusedError, match=r"too many redirects \(more than 5\)"):
        make_client().get(fault_server.url("/redirect/chain/6"))
    assert [r.path for r in fault_server.requests][-1] == "/redirect/chain/1"
    assert len(fault_server.requests) == 6  # the 6th hop is never requested


def test_max_redirects_setting(fault_server: FaultServer, make_client: MakeClient) -> None:
    client = make_client(max_redirects=2)
    assert client.get(fault_server.url("/redirect/chain/2")).status == 200
    with pytest.raises(RefusedError, match="too many redirects"):
        client.get(fault_server.url("/redirect/chain/3"))


def test_redirect_loop(fault_server: FaultServer, make_client: MakeClient) -> None:
    with pytest.raises(RefusedError, match="redirect loop"):
        make_client(max_attempts=3).get(fault_server.url("/redirect/loop"))
    assert len(fault_server.requests) == 2


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_relative_and_cross_host_redirects(
    fault_server: FaultServer, make_client: MakeClient, status: int
) -> None:
    client = make_client(resolver=FakeResolver({"other.test": ["127.0.0.1"]}))
    relative = client.get(fault_server.url(f"/redirect/to?status={status}&url=../ok"))
    assert (relative.status, relative.url) == (200, fault_server.url("/ok"))
    other = fault_server.url("/ok", host="other.test")
    moved = client.get(fault_server.url(f"/redirect/to?status={status}&url={other}"))
    assert (moved.status, moved.url) == (200, other)
    assert fault_server.requests[-1].host == f"other.test:{fault_server.port}"


# =========================================================================== timeouts


def test_read_timeout_on_a_silent_server(fault_server: FaultServer, make_client: MakeClient) -> None:
    client = make_client(read_timeout=0.5, total_timeout=10)
    with pytest.raises(FetchError, match="read timed out") as info:  # not the total deadline
        client.get(fault_server.url("/hang"))
    assert type(info.value) is FetchError and info.value.retryable


def test_connection_refused_is_retryable(make_client: MakeClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the client connects
    with pytest.raises(FetchError, match="cannot connect") as info:
        make_client().get(f"http://127.0.0.1:{port}/ok")
    assert type(info.value) is FetchError


def test_connect_timeout(make_client: MakeClient) -> None:
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        filler.connect(listener.getsockname())  # the accept queue is now full: SYNs dropped
        with socket.socket() as probe:
            probe.settimeout(0.2)
            try:
                probe.connect(listener.getsockname())
            except TimeoutError:
                pass
            else:  # pragma: no cover
                pytest.skip("this kernel completes connections beyond the listen backlog")
        client = make_client(connect_timeout=0.5, total_timeout=10)
        with pytest.raises(FetchError, match="timed out") as info:
            client.get(f"http://127.0.0.1:{listener.getsockname()[1]}/ok")
        assert type(info.value) is FetchError
        assert "total_timeout" not in str(info.value)  # the connect timeout fired, not the deadline


@pytest.mark.parametrize("path", ["/slow?n=100&interval=1", "/slow-headers?interval=0.2"])
def test_total_deadline_on_trickling_server(
    fault_server: FaultServer, make_client: MakeClient, path: str
) -> None:
    client = make_client(read_timeout=5, total_timeout=1.5)
    started = time.monotonic()
    with pytest.raises(FetchError, match="total_timeout") as info:
        client.get(fault_server.url(path))
    elapsed = time.monotonic() - started
    assert type(info.value) is FetchError
    assert elapsed >= 1.5 - EPS  # it waited for the whole deadline; "total_timeout" says which fired


# =========================================================================== size caps


def run_traced(fn: Callable[[], Any]) -> tuple[BaseException | None, int]:
    """Run ``fn``; its exception (if any) and peak traced memory in bytes."""
    tracemalloc.start()
    try:
        fn()
        error: BaseException | None = None
    except Exception as exc:
        error = exc
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return error, peak


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/big", "Content-Length 52428800 exceeds max_bytes"),
        ("/big?cl=0", "body exceeds max_bytes"),
    ],
)
def test_big_bodies_are_refused_early(
    fault_server: FaultServer, make_client: MakeClient, path: str, message: str
) -> None:
    client = make_client()
    error, peak = run_traced(lambda: client.get(fault_server.url(path)))
    assert isinstance(error, RefusedError) and message in str(error)
    assert peak < 100 * MiB


@pytest.mark.parametrize("cl", [1, 0])
def test_size_cap_boundary(fault_server: FaultServer, make_client: MakeClient, cl: int) -> None:
    client = make_client()
    assert len(client.get(fault_server.url(f"/big?bytes={MiB}&cl={cl}")).body) == MiB
    with pytest.raises(RefusedError, match="max_bytes"):
        client.get(fault_server.url(f"/big?bytes={MiB + 1}&cl={cl}"))


@pytest.mark.parametrize(
    ("path", "max_bytes"),
    [
        ("/bomb/gzip", 2 * MiB),  # 1 GiB of zeros is ~1 MB of gzip: let it past the raw cap
        ("/bomb/gzip?cl=0", MiB),
        ("/bomb/br", MiB),
        ("/bomb/br?cl=0", MiB),
    ],
)
def test_decompression_bombs_are_refused_with_bounded_memory(
    fault_server: FaultServer, make_client: MakeClient, path: str, max_bytes: int
) -> None:
    client = make_client(max_bytes=max_bytes)
    error, peak = run_traced(lambda: client.get(fault_server.url(path)))
    assert isinstance(error, RefusedError), error
    assert "decoded body exceeds max_bytes" in str(error)
    assert peak < 100 * MiB


def test_gzip_bomb_fixture_is_a_valid_stream() -> None:
    assert gzip.decompress(gzip_bomb(4 * MiB)) == bytes(4 * MiB)


@pytest.mark.parametrize("enc", ["gzip", "x-gzip", "deflate", "deflate-raw", "br", "gzip, br", "identity"])
def test_content_encodings_are_decoded(fault_server: FaultServer, make_client: MakeClient, enc: str) -> None:
    response = make_client().get(fault_server.url(f"/encoded?enc={enc}"))
    assert response.body == TEXT
    assert fault_server.requests[-1].headers["accept-encoding"] == "gzip, deflate, br"


def test_unknown_encoding_is_a_fetch_error(fault_server: FaultServer, make_client: MakeClient) -> None:
    with pytest.raises(FetchError, match="unsupported Content-Encoding 'zstd'") as info:
        make_client().get(fault_server.url("/encoded?enc=zstd"))
    assert type(info.value) is FetchError


@pytest.mark.parametrize("enc", ["gzip", "deflate", "br"])
def test_truncated_compressed_body_is_a_fetch_error(
    fault_server: FaultServer, make_client: MakeClient, enc: str
) -> None:
    with pytest.raises(FetchError, match="cannot decode") as info:
        make_client().get(fault_server.url(f"/encoded?enc={enc}&truncate=1"))
    assert type(info.value) is FetchError


@pytest.mark.parametrize("path", ["/broken-length", "/close-mid-body"])
def test_short_bodies_are_fetch_errors(fault_server: FaultServer, make_client: MakeClient, path: str) -> None:
    with pytest.raises(FetchError, match="connection broken") as info:
        make_client().get(fault_server.url(path))
    assert type(info.value) is FetchError and info.value.retryable


# =========================================================================== headers, 304


def test_request_headers(fault_server: FaultServer, make_client: MakeClient) -> None:
    client = make_client()
    client.get(fault_server.url("/ok"))
    client.get(fault_server.url("/ok"), accept="application/rss+xml")
    first, second = fault_server.requests
    assert first.headers["user-agent"] == "newsagg-test/1.0 (+tests)"
    assert first.headers["accept"].startswith("text/html")
    assert first.headers["accept-encoding"] == "gzip, deflate, br"
    assert first.headers["host"] == f"127.0.0.1:{fault_server.port}"
    assert "if-none-match" not in first.headers and "if-modified-since" not in first.headers
    assert second.headers["accept"] == "application/rss+xml"


def test_conditional_get_with_etag(fault_server: FaultServer, make_client: MakeClient) -> None:
    client = make_client()
    fresh = client.get(fault_server.url("/etag"))
    assert (fresh.status, fresh.etag, fresh.last_modified) == (200, ETAG, LAST_MODIFIED)
    assert not fresh.not_modified and fresh.body == TEXT
    again = client.get(fault_server.url("/etag"), etag=fresh.etag)
    assert (again.status, again.body, again.not_modified) == (304, b"", True)
    assert fault_server.requests[-1].headers["if-none-match"] == ETAG


def test_conditional_get_with_last_modified(fault_server: FaultServer, make_client: MakeClient) -> None:
    again = make_client().get(fault_server.url("/etag"), last_modified=LAST_MODIFIED)
    assert again.not_modified
    assert fault_server.requests[-1].headers["if-modified-since"] == LAST_MODIFIED


def test_response_fields(fault_server: FaultServer, make_client: MakeClient) -> None:
    ctype = 'Text/HTML; charset="ISO-8859-1"'
    response = make_client().get(fault_server.url(f"/ok?ctype={ctype}"))
    assert (response.content_type, response.charset) == ("text/html", "iso-8859-1")
    assert all(name == name.lower() for name in response.headers)
    assert response.headers["content-type"] == ctype
    plain = make_client().get(fault_server.url("/ok?ctype=application/json"))
    assert (plain.content_type, plain.charset) == ("application/json", None)
    assert Response(url="u", status=304).not_modified


# =========================================================================== statuses


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 451])
def test_client_errors_are_refused_and_not_retried(
    fault_server: FaultServer, make_client: MakeClient, status: int
) -> None:
    with pytest.raises(RefusedError, match=f"HTTP {status}") as info:
        make_client(max_attempts=3).get(fault_server.url(f"/status/{status}"))
    assert info.value.status == status and not info.value.retryable
    assert len(fault_server.requests) == 1


@pytest.mark.parametrize("status", [408, 500, 502, 504])
def test_408_and_5xx_are_retryable(fault_server: FaultServer, make_client: MakeClient, status: int) -> None:
    with pytest.raises(FetchError) as info:
        make_client().get(fault_server.url(f"/status/{status}"))
    assert type(info.value) is FetchError
    assert info.value.status == status and info.value.retryable


def test_429_and_503_carry_retry_after(fault_server: FaultServer, make_client: MakeClient) -> None:
    client = make_client(retry_after_cap=600)
    with pytest.raises(FetchError) as info:
        client.get(fault_server.url("/status/429?retry_after=7"))
    assert (info.value.status, info.value.retry_after) == (429, 7.0)
    when = format_datetime(datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=30), usegmt=True)
    client = make_client(retry_after_cap=600)
    with pytest.raises(FetchError) as info:
        client.get(fault_server.url(f"/status/503?retry_after={when}"))
    assert info.value.status == 503
    assert info.value.retry_after is not None and 25 < info.value.retry_after <= 30


def test_parse_retry_after() -> None:
    past = format_datetime(datetime.datetime(2015, 10, 21, 7, 28, tzinfo=datetime.UTC), usegmt=True)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 5 ") == 5.0
    assert parse_retry_after(past) == 0.0
    for bad in (None, "", "soon", "-5", "1.5"):
        assert parse_retry_after(bad) is None


@given(st.integers(0, 10**9))
def test_parse_retry_after_delta_seconds(seconds: int) -> None:
    assert parse_retry_after(str(seconds)) == float(seconds)


# =========================================================================== retries


def test_retries_until_success(fault_server: FaultServer, make_client: MakeClient) -> None:
    response = make_client(max_attempts=3).get(fault_server.url("/flaky?key=a&fail=2"))
    assert response.status == 200
    assert len(fault_server.requests) == 3


def test_three_attempts_at_most(fault_server: FaultServer, make_client: MakeClient) -> None:
    with pytest.raises(FetchError, match="HTTP 500"):
        make_client(max_attempts=3).get(fault_server.url("/status/500"))
    assert len(fault_server.requests) == 3


def test_backoff_is_exponential_with_full_jitter(
    fault_server: FaultServer, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    draws: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        draws.append((low, high))
        return 0.0

    monkeypatch.setattr(http_mod.random, "uniform", uniform)
    client = HttpClient(make_settings(), resolver=FakeResolver(), backoff_base=0.25, backoff_max=0.4)
    with client, pytest.raises(FetchError):
        client.get(fault_server.url("/status/502"))
    assert draws == [(0, 0.25), (0, 0.4)]  # base, 2*base capped at backoff_max


def test_default_retry_policy() -> None:
    client = HttpClient(make_settings())
    assert (client.max_attempts, client.backoff_base, client.backoff_max) == (3, 0.5, 30.0)
    client.close()


def test_retry_after_is_waited_for(
    fault_server: FaultServer, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_backoff(low: float, high: float) -> float:
        raise AssertionError("Retry-After must replace the exponential backoff")

    monkeypatch.setattr(http_mod.random, "uniform", no_backoff)
    client = make_client(max_attempts=3)
    response = client.get(fault_server.url("/flaky?key=r&fail=1&status=429&retry_after=1"))
    assert response.status == 200
    assert gaps(fault_server.requests)[0] >= 1.0 - EPS


def test_retry_after_beyond_cap_defers_the_host(fault_server: FaultServer, make_client: MakeClient) -> None:
    client = make_client(
        max_attempts=3, retry_after_cap=5, resolver=FakeResolver({"other.test": ["127.0.0.1"]})
    )
    with pytest.raises(DeferredError, match="deferred to the next run") as info:
        client.get(fault_server.url("/status/503?retry_after=3600"))
    assert isinstance(info.value, FetchError) and info.value.retryable
    assert info.value.retry_after == 3600
    assert len(fault_server.requests) == 1
    with pytest.raises(DeferredError):
        client.get(fault_server.url("/ok"))
    assert len(fault_server.requests) == 1
    assert client.get(fault_server.url("/ok", host="other.test")).status == 200


# =========================================================================== giving up hosts


def test_host_given_up_after_consecutive_failures(fault_server: FaultServer, make_client: MakeClient) -> None:
    client = make_client(host_failure_limit=3, resolver=FakeResolver({"other.test": ["127.0.0.1"]}))
    for _ in range(2):
        with pytest.raises(FetchError) as info:
            client.get(fault_server.url("/status/500"))
        assert type(info.value) is FetchError
    with pytest.raises(RefusedError, match="host given up for this run"):
        client.get(fault_server.url("/status/500"))
    seen, accepts = len(fault_server.requests), fault_server.accepts
    with pytest.raises(RefusedError, match="host given up for this run"):
        client.get(fault_server.url("/ok"))
    assert (len(fault_server.requests), fault_server.accepts) == (seen, accepts)
    assert client.get(fault_server.url("/ok", host="other.test")).status == 200


def test_every_attempt_counts_towards_giving_up(fault_server: FaultServer, make_client: MakeClient) -> None:
    client = make_client(host_failure_limit=2, max_attempts=3)
    with pytest.raises(RefusedError, match="host given up"):
        client.get(fault_server.url("/status/500"))
    assert len(fault_server.requests) == 2


def test_success_resets_the_failure_count(fault_server: FaultServer, make_client: MakeClient) -> None:
    client = make_client(host_failure_limit=2)
    with pytest.raises(FetchError):
        client.get(fault_server.url("/status/500"))
    assert client.get(fault_server.url("/ok")).status == 200
    with pytest.raises(FetchError) as info:
        client.get(fault_server.url("/status/500"))
    assert type(info.value) is FetchError
    with pytest.raises(RefusedError, match="host given up"):
        client.get(fault_server.url("/status/500"))


def test_refusals_do_not_count_as_host_failures(fault_server: FaultServer, make_client: MakeClient) -> None:
    client = make_client(host_failure_limit=2)
    for _ in range(3):
        with pytest.raises(RefusedError, match="HTTP 404"):
            client.get(fault_server.url("/status/404"))
    assert client.get(fault_server.url("/ok")).status == 200


# =========================================================================== politeness


def test_requests_to_one_host_are_spaced(fault_server: FaultServer, make_client: MakeClient) -> None:
    client = make_client(host_delay=0.2)
    for _ in range(3):
        client.get(fault_server.url("/ok"))
    assert min(gaps(fault_server.requests)) >= 0.2 - EPS


def test_delay_argument_overrides_the_setting(fault_server: FaultServer, make_client: MakeClient) -> None:
    client = make_client(host_delay=0.0)
    for _ in range(3):
        client.get(fault_server.url("/ok"), delay=0.3)
    assert min(gaps(fault_server.requests)) >= 0.3 - EPS


def test_one_request_in_flight_per_host(fault_server: FaultServer, make_client: MakeClient) -> None:
    client = make_client(host_delay=0.05)
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: client.get(fault_server.url("/ok?sleep=0.05")), range(6)))
    assert all(r.status == 200 for r in results)
    assert fault_server.max_inflight() == 1
    assert min(gaps(fault_server.requests)) >= 0.05 - EPS


def test_different_hosts_run_in_parallel(fault_server: FaultServer, make_client: MakeClient) -> None:
    resolver = FakeResolver({"a.test": ["127.0.0.1"], "b.test": ["127.0.0.1"]})
    client = make_client(host_delay=1.0, resolver=resolver)
    with ThreadPoolExecutor(2) as pool:
        bodies = list(
            pool.map(
                lambda host: client.get(fault_server.url("/rendezvous?n=2&wait=5", host=host)).body,
                ["a.test", "b.test"],
            )
        )
    assert bodies == [b"met", b"met"]  # both were inside the server at the same time


def test_thread_pool_over_many_hosts(fault_server: FaultServer, make_client: MakeClient) -> None:
    hosts = ["a.test", "b.test", "c.test"]
    client = make_client(host_delay=0.02, resolver=FakeResolver({h: ["127.0.0.1"] for h in hosts}))
    urls = [fault_server.url("/ok?sleep=0.02", host=h) for h in hosts for _ in range(5)]
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda u: client.get(u).status, urls))
    assert statuses == [200] * 15
    for host in hosts:
        assert fault_server.max_inflight(f"{host}:{fault_server.port}") == 1


# =========================================================================== pooling


def test_keep_alive_connections_are_reused(fault_server: FaultServer, make_client: MakeClient) -> None:
    client = make_client()
    client.get(fault_server.url("/ok"))
    client.get(fault_server.url("/etag"), etag=ETAG)  # a 304 leaves the connection usable
    client.get(fault_server.url("/ok"))
    assert fault_server.accepts == 1
    assert len({r.client_port for r in fault_server.requests}) == 1


def test_connection_close_is_honoured(fault_server: FaultServer, make_client: MakeClient) -> None:
    client = make_client()
    client.get(fault_server.url("/ok?close=1"))
    client.get(fault_server.url("/ok?close=1"))
    assert fault_server.accepts == 2


def test_server_closed_idle_connection_is_replaced(make_client: MakeClient) -> None:
    with FaultServer(keepalive_timeout=0.2) as server:
        client = make_client()
        client.get(server.url("/ok"))
        time.sleep(0.5)  # the server drops the idle keep-alive connection
        assert client.get(server.url("/ok")).status == 200
        assert server.accepts == 2


def test_close_releases_and_ends_the_client(fault_server: FaultServer) -> None:
    with HttpClient(make_settings(), resolver=FakeResolver()) as client:
        client.get(fault_server.url("/ok"))
    with pytest.raises(RuntimeError, match="closed"):
        client.get(fault_server.url("/ok"))


# =========================================================================== TLS


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    pytest.importorskip("cryptography")
    directory: Path = tmp_path_factory.mktemp("tls")
    return make_tls_files(directory, ["secure.test"])


@pytest.fixture
def tls_server(tls_files: TlsFiles) -> Iterator[FaultServer]:
    with FaultServer(tls=tls_files.server_context()) as server:
        yield server


def test_https_connects_to_pinned_ip_with_real_hostname(
    tls_server: FaultServer, tls_files: TlsFiles, make_client: MakeClient
) -> None:
    client = make_client(
        resolver=FakeResolver({"secure.test": ["127.0.0.1"]}), ca_certs=str(tls_files.ca_cert)
    )
    response = client.get(tls_server.url("/ok", host="secure.test"))
    assert response.status == 200 and response.body == TEXT
    assert tls_server.sni_names == ["secure.test"]
    assert tls_server.requests[-1].host == f"secure.test:{tls_server.port}"


@pytest.mark.parametrize(("name", "trusted"), [("other.test", True), ("secure.test", False)])
def test_https_certificate_is_verified(
    tls_server: FaultServer, tls_files: TlsFiles, make_client: MakeClient, name: str, trusted: bool
) -> None:
    client = make_client(
        resolver=FakeResolver({name: ["127.0.0.1"]}), ca_certs=str(tls_files.ca_cert) if trusted else None
    )
    with pytest.raises(RefusedError, match="certificate verification failed"):
        client.get(tls_server.url("/ok", host=name))
    assert tls_server.requests == []


def test_https_total_deadline(tls_server: FaultServer, tls_files: TlsFiles, make_client: MakeClient) -> None:
    client = make_client(
        resolver=FakeResolver({"secure.test": ["127.0.0.1"]}),
        ca_certs=str(tls_files.ca_cert),
        read_timeout=5,
        total_timeout=1,
    )
    with pytest.raises(FetchError, match="total_timeout"):
        client.get(tls_server.url("/slow?n=50&interval=0.5", host="secure.test"))


def test_no_thread_leak_per_request(fault_server: FaultServer, make_client: MakeClient) -> None:
    client = make_client()
    client.get(fault_server.url("/ok"))
    before = threading.active_count()
    for _ in range(5):
        client.get(fault_server.url("/ok"))
    assert threading.active_count() <= before + 1
