"""A loopback HTTP server that misbehaves on request, in the spirit of Scrapy's mock server.

It is :class:`pipeline.sampleweb.loopback.LoopbackServer` with the routes below; the hostile ones
write to the connection themselves (:meth:`~pipeline.sampleweb.loopback.Exchange.raw`).

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
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import brotli
import pytest

from pipeline.sampleweb.loopback import Exchange, LoopbackServer, RequestRecord

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


Route = Callable[["FaultServer", Exchange], None]


class FaultServer:
    """A loopback server that misbehaves on request; see the module docstring for its routes."""

    def __init__(
        self, *, tls: ssl.SSLContext | None = None, keepalive_timeout: float = 5.0, host: str = "127.0.0.1"
    ) -> None:
        self.tls = tls
        self.host = host
        self.lock = threading.Lock()
        self.sni_names: list[str | None] = []
        self._flaky: dict[str, int] = {}
        self._barriers: dict[int, threading.Barrier] = {}
        self._server = LoopbackServer(
            self._answer, host=host, name="fault", timeout=keepalive_timeout, tls=tls
        ).bind()
        self.port: int = self._server.port
        if tls is not None:
            tls.sni_callback = self._sni

    # lifecycle

    def start(self) -> FaultServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

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
        return self._server.requests

    def requests_to(self, path_prefix: str) -> list[RequestRecord]:
        return [r for r in self.requests if r.path.startswith(path_prefix)]

    @property
    def accepts(self) -> int:
        """TCP connections accepted so far."""
        return self._server.accepts

    @property
    def stopping(self) -> threading.Event:
        return self._server.stopping

    def max_inflight(self, host: str | None = None) -> int:
        """Most requests handled at once, for one Host header or over all."""
        return self._server.max_inflight(host)

    # bookkeeping

    def _sni(self, sslsock: Any, name: str | None, ctx: Any) -> None:
        with self.lock:
            self.sni_names.append(name)

    def _answer(self, ex: Exchange) -> None:
        path = ex.url_path
        route = _ROUTES.get(path)
        if route is None:
            route = next((r for prefix, r in _PREFIX_ROUTES if path.startswith(prefix)), _not_found)
        route(self, ex)

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


def _not_found(fs: FaultServer, ex: Exchange) -> None:
    ex.respond(404, b"not found")


def _ok(fs: FaultServer, ex: Exchange) -> None:
    q = ex.query
    if "sleep" in q:
        ex.stall(float(q["sleep"]))
    body = b"x" * int(q["size"]) if "size" in q else TEXT
    headers = {"Connection": "close"} if q.get("close") else None
    if headers:
        ex.close_connection = True
    ex.respond(200, body, headers=headers, content_type=q.get("ctype", "text/html; charset=utf-8"))


def _rendezvous(fs: FaultServer, ex: Exchange) -> None:
    met = fs._rendezvous(int(ex.query.get("n", "2")), float(ex.query.get("wait", "5")))
    ex.respond(200, b"met" if met else b"alone", content_type="text/plain")


def _hang(fs: FaultServer, ex: Exchange) -> None:
    ex.stall(60)
    ex.close_connection = True


def _slow(fs: FaultServer, ex: Exchange) -> None:
    n, interval = int(ex.query.get("n", "100")), float(ex.query.get("interval", "1"))
    ex.record.status = 200
    ex.raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + f"Content-Length: {n}\r\n\r\n".encode())
    for _ in range(n):
        ex.raw(b"x")
        if ex.stall(interval):
            break
    ex.close_connection = True


def _slow_headers(fs: FaultServer, ex: Exchange) -> None:
    interval = float(ex.query.get("interval", "0.5"))
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Padding: " + b"p" * 200
    ex.record.status = 200
    for byte in head:
        ex.raw(bytes([byte]))
        if ex.stall(interval):
            break
    ex.close_connection = True


def _big(fs: FaultServer, ex: Exchange) -> None:
    q = ex.query
    size = int(q["bytes"]) if "bytes" in q else int(float(q.get("mb", "50")) * (1 << 20))
    if q.get("cl", "1") == "1":
        ex.head(200, content_type="text/html", length=size)
    else:
        ex.close_connection = True  # close-delimited body
        ex.head(200, {"Connection": "close"}, content_type="text/html")
    chunk = b"y" * (64 * 1024)
    sent = 0
    while sent < size:
        piece = chunk[: size - sent]
        ex.wfile.write(piece)
        sent += len(piece)
    ex.wfile.flush()


def _bomb(fs: FaultServer, ex: Exchange) -> None:
    kind = ex.url_path.rsplit("/", 1)[-1]
    body = gzip_bomb() if kind == "gzip" else brotli_bomb()
    if ex.query.get("cl", "1") == "1":
        ex.respond(200, body, headers={"Content-Encoding": kind})
        return
    ex.record.status = 200
    ex.close_connection = True  # close-delimited: the client cannot refuse by Content-Length
    ex.raw(f"HTTP/1.1 200 OK\r\nContent-Encoding: {kind}\r\nConnection: close\r\n\r\n".encode())
    for start in range(0, len(body), 64 * 1024):
        ex.raw(body[start : start + 64 * 1024])


def _encoded(fs: FaultServer, ex: Exchange) -> None:
    enc = ex.query.get("enc", "gzip")
    body = encode(TEXT, enc)
    if ex.query.get("truncate"):
        body = body[: len(body) // 2]
    header = "deflate" if enc == "deflate-raw" else enc
    ex.respond(200, body, headers={"Content-Encoding": header})


def _broken_length(fs: FaultServer, ex: Exchange) -> None:
    ex.record.status = 200
    ex.raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000\r\n\r\n" + b"z" * 100)
    ex.close_connection = True


def _close_mid_body(fs: FaultServer, ex: Exchange) -> None:
    ex.record.status = 200
    ex.raw(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"a\r\n0123456789\r\n"
        b"a\r\n01234"
    )
    ex.close_connection = True


def _redirect(ex: Exchange, location: str, status: int = 302) -> None:
    ex.respond(status, b"moved", headers={"Location": location})


def _redirect_loop(fs: FaultServer, ex: Exchange) -> None:
    _redirect(ex, "/redirect/loop2" if ex.url_path == "/redirect/loop" else "/redirect/loop")


def _redirect_chain(fs: FaultServer, ex: Exchange) -> None:
    left = int(ex.url_path.rsplit("/", 1)[-1])
    if left <= 0:
        ex.respond(200, TEXT)
    else:
        _redirect(ex, f"/redirect/chain/{left - 1}")


def _redirect_to(fs: FaultServer, ex: Exchange) -> None:
    _redirect(ex, ex.query["url"], int(ex.query.get("status", "302")))


def _fixed_redirect(location: str) -> Route:
    def route(fs: FaultServer, ex: Exchange) -> None:
        _redirect(ex, location)

    return route


def _status(fs: FaultServer, ex: Exchange) -> None:
    status = int(ex.url_path.rsplit("/", 1)[-1])
    headers = {"Retry-After": ex.query["retry_after"]} if "retry_after" in ex.query else {}
    ex.respond(status, f"status {status}".encode(), headers=headers)


def _flaky(fs: FaultServer, ex: Exchange) -> None:
    q = ex.query
    seen = fs._flaky_count(q.get("key", "default"))
    if seen <= int(q.get("fail", "1")):
        headers = {"Retry-After": q["retry_after"]} if "retry_after" in q else {}
        ex.respond(int(q.get("status", "500")), b"not yet", headers=headers)
    else:
        ex.respond(200, TEXT)


def _etag(fs: FaultServer, ex: Exchange) -> None:
    headers = {"ETag": ETAG, "Last-Modified": LAST_MODIFIED}
    if ex.headers.get("If-None-Match") == ETAG or ex.headers.get("If-Modified-Since") == LAST_MODIFIED:
        ex.head(304, headers)
    else:
        ex.respond(200, TEXT, headers=headers)


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
