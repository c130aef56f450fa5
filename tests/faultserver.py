"""A loopback HTTP server that misbehaves on request, in the spirit of Scrapy's mock server.

HTTP client tests need servers that hang, trickle, lie about lengths, bomb, redirect in
circles or rate-limit, and they need to see what the client did: every request is logged
(time, headers, connection) and every accepted connection counted, so a test can prove that
the client spaced its requests, sent conditional headers, reused a connection, or never
connected at all. Use it as a context manager, or through the ``fault_server`` fixture::

    from tests.faultserver import FaultServer, fault_server_fixture  # noqa: F401

Routes (query parameters in brackets):

=============================  ============================================================
``/ok``                        small HTML page [size=N bytes of body, sleep=seconds first,
                               ctype=Content-Type, close=1 to send Connection: close]
``/rendezvous``                answers once [n] requests wait in it at the same time
                               (or after [wait] seconds): body ``met`` or ``alone``
``/hang``                      reads the request, never answers
``/slow``                      body of [n] bytes at one byte per [interval] seconds
``/slow-headers``              the status line and headers themselves one byte at a time
``/big``                       [mb] (default 50) MB or [bytes] body; [cl=0] omits
                               Content-Length (the body then ends when the server closes)
``/bomb/gzip``, ``/bomb/br``   1 GiB of zeros compressed to ~1 MB / ~190 KB; [cl=0] as above
``/encoded``                   a text body in Content-Encoding [enc] (gzip, x-gzip, deflate,
                               deflate-raw, br, "gzip, br", or anything else verbatim);
                               [truncate=1] cuts the compressed stream short
``/broken-length``             declares 1000 bytes, sends 100, closes
``/close-mid-body``            chunked body that stops mid-way and closes
``/redirect/loop``             -> ``/redirect/loop2`` -> ``/redirect/loop``
``/redirect/chain/N``          N hops down to ``/redirect/chain/0`` (a page)
``/redirect/to``               [status] redirect to [url]
``/redirect/file``             -> ``file:///etc/passwd``
``/redirect/private``          -> ``http://10.0.0.1/``
``/redirect/metadata``         -> ``http://169.254.169.254/latest/meta-data/``
``/status/NNN``                status NNN [retry_after=header value]
``/flaky``                     the first [fail] requests with the same [key] get [status]
                               (default 500, [retry_after] header), later ones a page
``/etag``                      ETag/Last-Modified page; 304 on a matching conditional GET
=============================  ============================================================
"""

from __future__ import annotations

import datetime
import functools
import gzip
import ssl
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socket import IPPROTO_TCP, TCP_NODELAY, socket
from typing import Any
from urllib.parse import parse_qs, urlsplit

import brotli
import pytest

ETAG = '"v1"'
LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"
TEXT = b"<html><body>" + b"hello newsagg " * 500 + b"</body></html>"


@functools.cache
def gzip_bomb(decoded_size: int = 1 << 30) -> bytes:
    """A valid gzip stream of ``decoded_size`` zeros, built without compressing it all.

    After a full flush deflate restarts from scratch, so every further MiB of zeros
    compresses to the same bytes: compress two, repeat the second.
    """
    block = bytes(1 << 20)
    count, rest = divmod(decoded_size, len(block))
    assert count >= 2 and rest == 0, "size must be a multiple of 1 MiB, at least 2 MiB"
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    head = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    segment = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(block, crc)
    final_empty_block = b"\x03\x00"
    trailer = struct.pack("<II", crc, decoded_size & 0xFFFFFFFF)
    return head + segment * (count - 1) + final_empty_block + trailer


@functools.cache
def brotli_bomb(decoded_size: int = 1 << 30) -> bytes:
    """``decoded_size`` zeros as brotli, compressed as a stream (never held decoded)."""
    comp = brotli.Compressor(quality=1)
    block = bytes(1 << 20)
    parts = [comp.process(block) for _ in range(decoded_size // len(block))]
    parts.append(comp.finish())
    return b"".join(parts)


def encode(body: bytes, enc: str) -> bytes:
    """``body`` in Content-Encoding ``enc`` (a comma list applies left to right)."""
    for name in (n.strip() for n in enc.split(",")):
        if name in ("gzip", "x-gzip"):
            body = gzip.compress(body)
        elif name == "deflate":
            body = zlib.compress(body)
        elif name == "deflate-raw":
            comp = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
            body = comp.compress(body) + comp.flush()
        elif name == "br":
            body = brotli.compress(body)
    return body


@dataclass
class RequestRecord:
    """One request as the server saw it; times are ``time.monotonic()``."""

    start: float  # headers parsed: never before the client sent them
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    client_port: int  # the same port twice means the same (kept-alive) connection
    end: float | None = None  # just before the last write: never after the client read it
    status: int | None = None

    @property
    def host(self) -> str:
        return self.headers.get("host", "")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: FaultServer

    def get_request(self) -> tuple[socket, Any]:
        sock, addr = super().get_request()
        with self.owner.lock:
            self.owner.accepts += 1
        return sock, addr

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)  # no 40 ms delayed-ACK stalls
        if self.owner.tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(5)
        with self.owner.tls.wrap_socket(request, server_side=True) as wrapped:
            super().finish_request(wrapped, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up, time out or reject our certificate are the point


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 5.0

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        owner = self.server.owner
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        record = owner._begin(self)
        try:
            owner._route(parts.path)(self, parts.path, query, record)
        except OSError:
            self.close_connection = True  # the client hung up: often the expected outcome
        finally:
            owner._finish(record)

    # helpers for routes

    def send(
        self,
        status: int,
        body: bytes = b"",
        *,
        record: RequestRecord,
        headers: dict[str, str] | None = None,
        content_type: str | None = "text/html; charset=utf-8",
    ) -> None:
        record.status = status
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.server.owner._finish(record)  # before the client can have it all: a lower bound
        self.wfile.write(body)
        self.wfile.flush()

    def raw(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()


Route = Callable[[_Handler, str, dict[str, str], RequestRecord], None]


class FaultServer:
    """A threaded loopback server; see the module docstring for its routes."""

    def __init__(
        self, *, tls: ssl.SSLContext | None = None, keepalive_timeout: float = 5.0, host: str = "127.0.0.1"
    ) -> None:
        self.tls = tls
        self.lock = threading.Lock()
        self.accepts = 0
        self.stopping = threading.Event()
        self.sni_names: list[str | None] = []
        self._records: list[RequestRecord] = []
        self._inflight: dict[str, int] = {}
        self._max_inflight: dict[str, int] = {}
        self._flaky: dict[str, int] = {}
        self._barriers: dict[int, threading.Barrier] = {}
        handler = type("Handler", (_Handler,), {"timeout": keepalive_timeout})
        self._httpd = _Server((host, 0), handler)
        self._httpd.owner = self
        self.host = host
        self.port: int = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None
        if tls is not None:
            tls.sni_callback = self._sni

    # lifecycle

    def start(self) -> FaultServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # what tests use

    def url(self, path: str = "/ok", host: str | None = None) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{host or self.host}:{self.port}{path}"

    @property
    def requests(self) -> list[RequestRecord]:
        with self.lock:
            return list(self._records)

    def requests_to(self, path_prefix: str) -> list[RequestRecord]:
        return [r for r in self.requests if r.path.startswith(path_prefix)]

    def max_inflight(self, host: str | None = None) -> int:
        """Most requests handled at once, for one Host header or over all."""
        with self.lock:
            if host is not None:
                return self._max_inflight.get(host, 0)
            return max(self._max_inflight.values(), default=0)

    # bookkeeping

    def _sni(self, sslsock: Any, name: str | None, ctx: Any) -> None:
        with self.lock:
            self.sni_names.append(name)

    def _begin(self, handler: _Handler) -> RequestRecord:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        record = RequestRecord(
            time.monotonic(), handler.command, handler.path, headers, handler.client_address[1]
        )
        host = record.host
        with self.lock:
            self._records.append(record)
            self._inflight[host] = self._inflight.get(host, 0) + 1
            self._max_inflight[host] = max(self._max_inflight.get(host, 0), self._inflight[host])
        return record

    def _finish(self, record: RequestRecord) -> None:
        """Mark ``record`` answered (idempotent): ends its time in flight."""
        with self.lock:
            if record.end is None:
                record.end = time.monotonic()
                self._inflight[record.host] -= 1

    def _route(self, path: str) -> Route:
        if path in _ROUTES:
            return _ROUTES[path]
        for prefix, route in _PREFIX_ROUTES:
            if path.startswith(prefix):
                return route
        return _not_found

    def _rendezvous(self, n: int, wait: float) -> bool:
        with self.lock:
            barrier = self._barriers.setdefault(n, threading.Barrier(n))
        try:
            barrier.wait(wait)
        except threading.BrokenBarrierError:
            return False
        return True

    def _flaky_count(self, key: str) -> int:
        with self.lock:
            self._flaky[key] = self._flaky.get(key, 0) + 1
            return self._flaky[key]


# ----------------------------------------------------------------------------- routes


def _not_found(h: _Handler, path: str, q: dict[str, str], rec: RequestRecord) -> None:
    h.send(404, b"not found", record=rec)


def _ok(h: _Handler, path: str, q: dict[str, str], rec: RequestRecord) -> None:
    if "sleep" in q:
        h.server.owner.stopping.wait(float(q["sleep"]))
    body = b"x" * int(q["size"]) if "size" in q else TEXT
    headers = {"Connection": "close"} if q.get("close") else None
    if headers:
        h.close_connection = True
    h.send(200, body, record=rec, headers=headers, content_type=q.get("ctype", "text/html; charset=utf-8"))


def _rendezvous(h: _Handler, path: str, q: dict[str, str], rec: RequestRecord) -> None:
    met = h.server.owner._rendezvous(int(q.get("n", "2")), float(q.get("wait", "5")))
    h.send(200, b"met" if met else b"alone", record=rec, content_type="text/plain")


def _hang(h: _Handler, path: str, q: dict[str, str], rec: RequestRecord) -> None:
    h.server.owner.stopping.wait(60)
    h.close_connection = True


def _slow(h: _Handler, path: str, q: dict[str, str], rec: RequestRecord) -> None:
    n, interval = int(q.get("n", "100")), float(q.get("interval", "1"))
    rec.status = 200
    h.raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + f"Content-Length: {n}\r\n\r\n".encode())
    for _ in range(n):
        h.raw(b"x")
        if h.server.owner.stopping.wait(interval):
            break
    h.close_connection = True


def _slow_headers(h: _Handler, path: str, q: dict[str, str], rec: RequestRecord) -> None:
    interval = float(q.get("interval", "0.5"))
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Padding: " + b"p" * 200
    rec.status = 200
    for byte in head:
        h.raw(bytes([byte]))
        if h.server.owner.stopping.wait(interval):
            break
    h.close_connection = True


def _big(h: _Handler, path: str, q: dict[str, str], rec: RequestRecord) -> None:
    size = int(q["bytes"]) if "bytes" in q else int(float(q.get("mb", "50")) * (1 << 20))
    rec.status = 200
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    if q.get("cl", "1") == "1":
        h.send_header("Content-Length", str(size))
    else:
        h.send_header("Connection", "close")  # close-delimited body
        h.close_connection = True
    h.end_headers()
    chunk = b"y" * (64 * 1024)
    sent = 0
    while sent < size:
        piece = chunk[: size - sent]
        h.wfile.write(piece)
        sent += len(piece)
    h.wfile.flush()


def _bomb(h: _Handler, path: str, q: dict[str, str], rec: RequestRecord) -> None:
    kind = path.rsplit("/", 1)[-1]
    body = gzip_bomb() if kind == "gzip" else brotli_bomb()
    if q.get("cl", "1") == "1":
        h.send(200, body, record=rec, headers={"Content-Encoding": kind})
        return
    rec.status = 200
    h.close_connection = True  # close-delimited: the client cannot refuse by Content-Length
    h.raw(f"HTTP/1.1 200 OK\r\nContent-Encoding: {kind}\r\nConnection: close\r\n\r\n".encode())
    for start in range(0, len(body), 64 * 1024):
        h.raw(body[start : start + 64 * 1024])


def _encoded(h: _Handler, path: str, q: dict[str, str], rec: RequestRecord) -> None:
    enc = q.get("enc", "gzip")
    body = encode(TEXT, enc)
    if q.get("truncate"):
        body = body[: len(body) // 2]
    header = "deflate" if enc == "deflate-raw" else enc
    h.send(200, body, record=rec, headers={"Content-Encoding": header})


def _broken_length(h: _Handler, path: str, q: dict[str, str], rec: RequestRecord) -> None:
    rec.status = 200
    h.raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000\r\n\r\n" + b"z" * 100)
    h.close_connection = True


def _close_mid_body(h: _Handler, path: str, q: dict[str, str], rec: RequestRecord) -> None:
    rec.status = 200
    h.raw(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"a\r\n0123456789\r\n"
        b"a\r\n01234"
    )
    h.close_connection = True


def _redirect(h: _Handler, location: str, rec: RequestRecord, status: int = 302) -> None:
    h.send(status, b"moved", record=rec, headers={"Location": location})


def _redirect_loop(h: _Handler, path: str, q: dict[str, str], rec: RequestRecord) -> None:
    _redirect(h, "/redirect/loop2" if path == "/redirect/loop" else "/redirect/loop", rec)


def _redirect_chain(h: _Handler, path: str, q: dict[str, str], rec: RequestRecord) -> None:
    left = int(path.rsplit("/", 1)[-1])
    if left <= 0:
        h.send(200, TEXT, record=rec)
    else:
        _redirect(h, f"/redirect/chain/{left - 1}", rec)


def _redirect_to(h: _Handler, path: str, q: dict[str, str], rec: RequestRecord) -> None:
    _redirect(h, q["url"], rec, int(q.get("status", "302")))


def _fixed_redirect(location: str) -> Route:
    def route(h: _Handler, path: str, q: dict[str, str], rec: RequestRecord) -> None:
        _redirect(h, location, rec)

    return route


def _status(h: _Handler, path: str, q: dict[str, str], rec: RequestRecord) -> None:
    status = int(path.rsplit("/", 1)[-1])
    headers = {"Retry-After": q["retry_after"]} if "retry_after" in q else {}
    h.send(status, f"status {status}".encode(), record=rec, headers=headers)


def _flaky(h: _Handler, path: str, q: dict[str, str], rec: RequestRecord) -> None:
    seen = h.server.owner._flaky_count(q.get("key", "default"))
    if seen <= int(q.get("fail", "1")):
        headers = {"Retry-After": q["retry_after"]} if "retry_after" in q else {}
        h.send(int(q.get("status", "500")), b"not yet", record=rec, headers=headers)
    else:
        h.send(200, TEXT, record=rec)


def _etag(h: _Handler, path: str, q: dict[str, str], rec: RequestRecord) -> None:
    headers = {"ETag": ETAG, "Last-Modified": LAST_MODIFIED}
    if h.headers.get("If-None-Match") == ETAG or h.headers.get("If-Modified-Since") == LAST_MODIFIED:
        rec.status = 304
        h.send_response(304)
        for name, value in headers.items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.flush()
    else:
        h.send(200, TEXT, record=rec, headers=headers)


_ROUTES: dict[str, Route] = {
    "/ok": _ok,
    "/rendezvous": _rendezvous,
    "/hang": _hang,
    "/slow": _slow,
    "/slow-headers": _slow_headers,
    "/big": _big,
    "/encoded": _encoded,
    "/broken-length": _broken_length,
    "/close-mid-body": _close_mid_body,
    "/redirect/loop": _redirect_loop,
    "/redirect/loop2": _redirect_loop,
    "/redirect/to": _redirect_to,
    "/redirect/file": _fixed_redirect("file:///etc/passwd"),
    "/redirect/private": _fixed_redirect("http://10.0.0.1/"),
    "/redirect/metadata": _fixed_redirect("http://169.254.169.254/latest/meta-data/"),
    "/flaky": _flaky,
    "/etag": _etag,
}
_PREFIX_ROUTES: list[tuple[str, Route]] = [
    ("/bomb/", _bomb),
    ("/redirect/chain/", _redirect_chain),
    ("/status/", _status),
]


# ----------------------------------------------------------------------------- TLS


@dataclass
class TlsFiles:
    """A throwaway CA and a server certificate it signed, as PEM files."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    hostnames: list[str] = field(default_factory=list)

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.server_cert, self.server_key)
        return ctx


def make_tls_files(directory: Path, hostnames: list[str]) -> TlsFiles:
    """Issue a certificate for ``hostnames`` from a fresh CA (needs ``cryptography``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "newsagg test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in hostnames]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(
        directory / "ca.pem", directory / "server.pem", directory / "server.key", list(hostnames)
    )
    files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.server_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


@pytest.fixture(name="fault_server")
def fault_server_fixture() -> Iterator[FaultServer]:
    """A fresh plain-HTTP fault server per test."""
    with FaultServer() as server:
        yield server
