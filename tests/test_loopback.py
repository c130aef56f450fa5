"""The loopback server every local web runs on: its request log, and a stop that leaves nothing
behind even while clients still hold kept-alive connections."""

from __future__ import annotations

import http.client
import os
import threading
from pathlib import Path

from pipeline.sampleweb.loopback import Exchange, Headers, LoopbackServer, RequestLog


def _fds() -> int:
    return len(os.listdir(f"/proc/{os.getpid()}/fd")) if Path("/proc/self/fd").is_dir() else 0


def _hello(ex: Exchange) -> None:
    ex.respond(200, b"hello " + ex.query.get("who", "you").encode(), content_type="text/plain")


def test_headers_keep_their_names_and_ignore_case() -> None:
    headers = Headers([("If-None-Match", '"a"'), ("X-Probe", "1")])
    assert headers["if-none-match"] == headers["IF-NONE-MATCH"] == '"a"'
    assert "x-probe" in headers and "Accept" not in headers
    assert list(headers) == ["If-None-Match", "X-Probe"]


def test_requests_are_logged_and_a_stop_leaves_no_thread_or_socket() -> None:
    threads, fds = threading.active_count(), _fds()
    server = LoopbackServer(_hello, host="127.0.0.3", methods=("GET", "HEAD"))
    with server:
        conn = http.client.HTTPConnection("127.0.0.3", server.port, timeout=5)
        conn.request("GET", "/a?who=me", headers={"If-Modified-Since": "x"})
        first = conn.getresponse()
        assert (first.status, first.read()) == (200, b"hello me")
        conn.request("HEAD", "/b")
        head = conn.getresponse()
        assert head.getheader("Content-Length") == "9" and head.read() == b""
        # the connection stays open: the stop has to end it
    conn.close()
    assert threading.active_count() == threads
    assert _fds() == fds
    a, b = server.requests
    assert (a.method, a.path, a.status, a.conditional) == ("GET", "/a?who=me", 200, True)
    assert a.host == f"127.0.0.3:{server.port}" and a.client_port == b.client_port
    assert a.end is not None and a.start <= a.end <= b.start
    assert server.accepts == 1


def test_unlisted_methods_get_501_and_no_record() -> None:
    with LoopbackServer(_hello) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("HEAD", "/")
        assert conn.getresponse().status == 501
        conn.close()
    assert server.requests == []


def test_servers_can_share_one_log_and_restart() -> None:
    log = RequestLog()
    one = LoopbackServer(_hello, name="one", log=log)
    two = LoopbackServer(_hello, name="two", log=log)
    for server in (one, two, one):
        with server:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            conn.request("GET", "/")
            conn.getresponse().read()
            conn.close()
    assert [r.server for r in log.records()] == ["one", "two", "one"]
    assert [r.server for r in log.records(since=2)] == ["one"]
    assert not one.running
