"""One loopback HTTP server for every local web the project serves to itself.

The sample web (``newsagg demo``), the crawl tests' sites, the HTTP client's fault server and the
end-to-end benchmark's news web differ only in what they answer. What they share lives here: a
threaded server on a loopback address (any 127.x.y.z is loopback on Linux; port 0 by default, so
parallel tests never collide), one request-log record, and a clean start and stop. A stop leaves
no listening socket, no open connection and no handler thread behind, so a test suite that starts
hundreds of them ends with none.

What to answer is a callable given an :class:`Exchange` per request. It answers with
:meth:`Exchange.respond` (a whole response), or with :meth:`Exchange.head` and :meth:`Exchange.raw`
when it wants to misbehave: stall, trickle, lie about lengths, cut the body short, or close the
connection without a word. ``tls=`` serves HTTPS instead.

    with LoopbackServer(lambda ex: ex.respond(200, b"hello")) as server:
        urllib.request.urlopen(server.url("/x"))
        server.requests  # [RequestRecord(method='GET', path='/x', ...)]
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["Exchange", "Handler", "Headers", "LoopbackServer", "RequestLog", "RequestRecord"]

DEFAULT_CONTENT_TYPE = "text/html; charset=utf-8"
STOP_JOIN_S = 5.0  # how long a stop waits for handler threads that are still busy


class Headers(Mapping[str, str]):
    """Request headers with the names as sent, looked up regardless of case."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: dict[str, tuple[str, str]] = {}
        for name, value in items:
            self._items[name.lower()] = (name, value)

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


@dataclass
class RequestRecord:
    """One request as a server saw it; times are ``time.monotonic()``.

    Tests read it to prove what a client asked for, with which headers, over which connection,
    and how its requests were spaced.
    """

    method: str
    path: str  # as sent, query string included
    headers: Headers
    time: float  # its headers were read: never before the client sent them
    client_port: int = 0  # the same port twice: the same (kept-alive) connection
    server: str = ""  # the name of the server that answered (a news web's outlet)
    status: int | None = None  # None until the answer is decided
    end: float | None = None  # just before the body went out: never after the client had it
    kind: str = ""  # what the server took the request for, when it says (feed, article, ...)

    @property
    def start(self) -> float:
        return self.time

    @property
    def host(self) -> str:
        """The Host header (name and port as the client wrote them)."""
        return self.headers.get("host", "")

    @property
    def conditional(self) -> bool:
        return "if-none-match" in self.headers or "if-modified-since" in self.headers


class RequestLog:
    """Requests in the order they arrived, shared safely by handler threads (and servers)."""

    def __init__(self) -> None:
        self._records: list[RequestRecord] = []
        self._lock = threading.Lock()

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def records(self, since: int = 0) -> list[RequestRecord]:
        """A snapshot, oldest first, from the ``since``-th record on."""
        with self._lock:
            return self._records[since:]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)


class Exchange:
    """One request being answered: what was asked, and the ways to answer it."""

    def __init__(self, server: LoopbackServer, handler: _RequestHandler, record: RequestRecord) -> None:
        self.server = server
        self.record = record
        self._handler = handler
        self._split = urlsplit(record.path)

    @property
    def method(self) -> str:
        return self.record.method

    @property
    def path(self) -> str:
        """The path as sent, query string included."""
        return self.record.path

    @property
    def url_path(self) -> str:
        """The path without its query string."""
        return self._split.path

    @property
    def query(self) -> dict[str, str]:
        """Query parameters; the last value of a repeated one."""
        return {k: v[-1] for k, v in parse_qs(self._split.query).items()}

    @property
    def headers(self) -> Headers:
        return self.record.headers

    @property
    def connection(self) -> socket.socket:
        """The connection itself (TLS-wrapped on an HTTPS server), for behaviours HTTP has no word for."""
        conn: socket.socket = self._handler.connection
        return conn

    @property
    def wfile(self) -> BufferedIOBase:
        """The connection's unbuffered writer, for bodies streamed in pieces."""
        return self._handler.wfile

    @property
    def close_connection(self) -> bool:
        return bool(self._handler.close_connection)

    @close_connection.setter
    def close_connection(self, value: bool) -> None:
        self._handler.close_connection = value

    def head(
        self,
        status: int,
        headers: Mapping[str, str] | None = None,
        *,
        content_type: str | None = None,
        length: int | None = None,
    ) -> None:
        """The status line and headers; the body, if any, is the caller's (:meth:`raw`)."""
        self.record.status = status
        h = self._handler
        h.send_response(status)
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        if content_type:
            h.send_header("Content-Type", content_type)
        if length is not None:
            h.send_header("Content-Length", str(length))
        h.end_headers()
        self.server._finish(self.record)  # before the client can have it all: a lower bound

    def respond(
        self,
        status: int,
        body: bytes = b"",
        *,
        content_type: str | None = DEFAULT_CONTENT_TYPE,
        headers: Mapping[str, str] | None = None,
        length: bool = True,
    ) -> None:
        """A whole response: headers, Content-Length (unless ``length`` is false), body (not to HEAD)."""
        self.head(status, headers, content_type=content_type, length=len(body) if length else None)
        if body and self.method != "HEAD":
            self.raw(body)

    def raw(self, data: bytes) -> None:
        """Bytes as they are, sent at once: a status line, a partial body, garbage."""
        self._handler.wfile.write(data)
        self._handler.wfile.flush()

    def stall(self, seconds: float) -> bool:
        """Wait ``seconds``, cut short by the server stopping; true if it is stopping."""
        return self.server.stopping.wait(seconds)


Handler = Callable[[Exchange], None]


class _RequestHandler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"

    def version_string(self) -> str:
        return self.server.owner.server_version

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.owner._handle(self)

    do_HEAD = do_GET


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # LoopbackServer.stop joins the handler threads itself, with a deadline
    request_queue_size = 128  # the default backlog of 5 drops a crawler's burst of connections,
    # and a dropped SYN costs a one-second retransmit

    def __init__(self, owner: LoopbackServer, address: tuple[str, int]) -> None:
        self.owner = owner
        # the handler's class attribute is the per-connection timeout
        handler = type("_RequestHandler", (_RequestHandler,), {"timeout": owner.timeout})
        super().__init__(address, handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # not HTTPServer's: no reverse DNS lookup of the host
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        self.owner._accepted()
        return sock, addr

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"loopback-{self.server_port}-conn",
            daemon=True,
        )
        self.owner._connection_opened(request)  # here, not in the thread: a stop sees it at once
        self.owner._track_thread(thread)
        thread.start()

    def finish_request(self, request: Any, client_address: Any) -> None:
        owner = self.owner
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # headers and body go out as
        # separate writes: without this, Nagle and delayed ACKs add ~40 ms to a kept-alive response
        if owner.tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(5)
        with owner.tls.wrap_socket(request, server_side=True) as wrapped:
            owner._connection_opened(wrapped)
            try:
                super().finish_request(wrapped, client_address)
            finally:
                owner._connection_closed(wrapped)

    def shutdown_request(self, request: Any) -> None:
        self.owner._connection_closed(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # a client hanging up, timing out or refusing the certificate is no news
        super().handle_error(request, client_address)


class LoopbackServer:
    """A threaded HTTP server on a loopback address that hands every request to ``handler``.

    Restartable: :meth:`stop` then :meth:`start` binds afresh (a new port when ``port`` is 0);
    the request log survives. ``methods`` lists what is handed over; anything else gets a 501.
    ``log`` lets several servers (the outlets of one web) share one request log.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "",
        methods: Iterable[str] = ("GET",),
        timeout: float | None = None,
        tls: ssl.SSLContext | None = None,
        log: RequestLog | None = None,
        server_version: str = "newsagg-loopback/1.0",
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.name = name
        self.methods = frozenset(methods)
        self.timeout = timeout  # per connection: an idle kept-alive one is closed after it
        self.tls = tls
        self.log = log if log is not None else RequestLog()
        self.server_version = server_version
        self.stopping = threading.Event()
        self._requested_port = port
        self._lock = threading.Lock()
        self._accepts = 0
        self._inflight: dict[str, int] = {}
        self._max_inflight: dict[str, int] = {}
        self._connections: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._httpd: _HTTPServer | None = None
        self._serving: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def bind(self) -> LoopbackServer:
        """Take the port now (it is known from here on), serve from :meth:`start`."""
        if self._httpd is None:
            self.stopping.clear()
            self._httpd = _HTTPServer(self, (self.host, self._requested_port))
            self.port = int(self._httpd.server_address[1])
        return self

    def start(self) -> LoopbackServer:
        if self._serving is not None:
            return self
        httpd = self.bind()._httpd
        assert httpd is not None
        self._serving = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"loopback-{self.name or self.port}",
            daemon=True,
        )
        self._serving.start()
        return self

    def stop(self) -> None:
        """Stop accepting, end open connections, and wait (boundedly) for their handlers."""
        httpd, serving = self._httpd, self._serving
        self._httpd = self._serving = None
        if httpd is None:
            return
        self.stopping.set()  # handlers that stall wake up and give up
        if serving is not None:
            httpd.shutdown()
            serving.join(STOP_JOIN_S)
        httpd.server_close()
        with self._lock:
            connections, threads = list(self._connections), list(self._threads)
        for conn in connections:
            # the plain socket call: ssl.SSLSocket.shutdown would pull its state from under a
            # handler still reading from it
            with contextlib.suppress(OSError):
                socket.socket.shutdown(conn, socket.SHUT_RDWR)
        deadline = time.monotonic() + STOP_JOIN_S
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def running(self) -> bool:
        return self._serving is not None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- addresses --------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the server is not started; call start() first")
        scheme = "https" if self.tls is not None else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + "/" + path.lstrip("/")

    # -- what happened ----------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of the request log, oldest first."""
        return self.log.records()

    def clear_requests(self) -> None:
        self.log.clear()

    @property
    def accepts(self) -> int:
        """TCP connections accepted so far."""
        with self._lock:
            return self._accepts

    def max_inflight(self, host: str | None = None) -> int:
        """Most requests handled at once, for one Host header or over all."""
        with self._lock:
            if host is not None:
                return self._max_inflight.get(host, 0)
            return max(self._max_inflight.values(), default=0)

    # -- the handler threads' side ----------------------------------------------------------------

    def _handle(self, h: _RequestHandler) -> None:
        if h.command not in self.methods:
            h.send_error(501, f"Unsupported method ({h.command!r})")
            return
        record = RequestRecord(
            h.command,
            h.path,
            Headers(h.headers.items()),
            time.monotonic(),
            int(h.client_address[1]),
            self.name,
        )
        self.log.append(record)
        host = record.host
        with self._lock:
            self._inflight[host] = self._inflight.get(host, 0) + 1
            self._max_inflight[host] = max(self._max_inflight.get(host, 0), self._inflight[host])
        try:
            self.handler(Exchange(self, h, record))
        except OSError:
            h.close_connection = True  # the client hung up: often the very point of the test
        finally:
            self._finish(record)

    def _finish(self, record: RequestRecord) -> None:
        """Mark ``record`` answered (once): ends its time in flight."""
        with self._lock:
            if record.end is None:
                record.end = time.monotonic()
                self._inflight[record.host] -= 1

    def _accepted(self) -> None:
        with self._lock:
            self._accepts += 1

    def _track_thread(self, thread: threading.Thread) -> None:
        with self._lock:
            self._threads = {t for t in self._threads if t.is_alive()}
            self._threads.add(thread)

    def _connection_opened(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def _connection_closed(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)
