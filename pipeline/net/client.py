"""The one place newsagg talks HTTP.

Everything a fetcher of untrusted URLs must get right lives here so no stage re-invents it:
the vetted IP pinned for the connection (the SSRF guard itself is :mod:`.guard`), timeouts
including a wall-clock deadline, size caps that also hold for compressed bodies, manual
redirects, per-host politeness, retries and giving up on dead hosts. Stages call
:meth:`HttpClient.get` and handle :class:`~pipeline.errors.FetchError` /
:class:`~pipeline.errors.RefusedError`.
"""

from __future__ import annotations

import contextlib
import email.utils
import errno
import http.client
import logging
import random
import resource
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol
from urllib.parse import urljoin

import brotli
import urllib3.exceptions
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.response import BaseHTTPResponse
from urllib3.util.ssl_match_hostname import CertificateError

from pipeline.config import Settings
from pipeline.errors import FetchError, RefusedError
from pipeline.net.guard import (
    Resolver,
    Target,
    check_url,
    classify_address,
    parse_target,
    refuse,
    system_resolver,
    vet,
)

__all__ = [
    "DeferredError",
    "HttpClient",
    "OutOfDescriptorsError",
    "Resolver",
    "Response",
    "check_url",
    "classify_address",
    "fetch_concurrency",
    "parse_retry_after",
    "system_resolver",
]

log = logging.getLogger(__name__)

DEFAULT_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
ACCEPT_ENCODING = "gzip, deflate, br"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024  # read size and decompressor output bound: keeps memory flat on bombs
_IDLE_PER_KEY = 4


@dataclass(frozen=True)
class Response:
    """A fetched resource; ``body`` is already decoded from its Content-Encoding."""

    url: str
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None
    charset: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


FD_RESERVE = 64  # descriptors kept free for everything but fetch sockets


def fetch_concurrency(settings: Settings) -> int:
    """Hosts fetched at once: ``fetch_workers``, held under half the open-file limit.

    Each host in flight holds one socket (kept alive between its requests); the idle pool holds
    at most as many again, and the rest of the limit stays free for the store, the extraction
    workers' pipes and the crawl.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return max(1, settings.fetch_workers)
    return max(1, min(settings.fetch_workers, (soft - FD_RESERVE) // 2))


class OutOfDescriptorsError(FetchError):
    """This process ran out of file descriptors (EMFILE/ENFILE) opening a connection.

    Nothing is wrong with the URL or its host: the caller asks again once descriptors are free,
    and neither the URL nor the host is charged a failure.
    """


class DeferredError(FetchError):
    """The host asked (Retry-After) for a longer pause than one run will wait.

    Still retryable, but by the next run: within this client the host is skipped until then.
    """


# --------------------------------------------------------------------------- helpers


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _content_type(value: str | None) -> tuple[str | None, str | None]:
    if not value:
        return None, None
    mime, *params = value.split(";")
    charset = None
    for param in params:
        name, _, val = param.partition("=")
        if name.strip().lower() == "charset":
            charset = val.strip().strip("\"'").lower() or None
    return mime.strip().lower() or None, charset


class _Decoder(Protocol):
    def feed(self, data: bytes) -> Iterator[bytes]: ...
    def finish(self) -> None: ...


class _Identity:
    def feed(self, data: bytes) -> Iterator[bytes]:
        yield data

    def finish(self) -> None:
        pass


class _ZlibDecoder:
    """gzip/deflate with output bounded per call, so a bomb never inflates in one go."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._d: zlib._Decompress | None = zlib.decompressobj(16 + zlib.MAX_WBITS) if name == "gzip" else None
        self._sniff = b""  # "deflate" is zlib-wrapped per RFC, raw in practice: look first
        self._seen = False
        self._done = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        if data:
            self._seen = True
        if self._d is None:
            self._sniff += data
            if len(self._sniff) < 2:
                return
            cmf, flg = self._sniff[0], self._sniff[1]
            wrapped = cmf & 0x0F == 8 and (cmf * 256 + flg) % 31 == 0
            self._d = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
            data, self._sniff = self._sniff, b""
        pending = data
        while pending or not self._done:
            if self._done:
                if self.name == "gzip" and pending[:1] == b"\x1f":  # another gzip member
                    self._d, self._done = zlib.decompressobj(16 + zlib.MAX_WBITS), False
                else:
                    return  # trailing garbage after the stream: browsers ignore it too
            out = self._d.decompress(pending, _CHUNK)
            if out:
                yield out
            if self._d.eof:
                self._done = True
                pending = self._d.unused_data
                continue
            pending = self._d.unconsumed_tail
            if not pending and len(out) < _CHUNK:
                return

    def finish(self) -> None:
        if self._seen and not self._done:
            raise zlib.error(f"truncated {self.name} stream")


class _BrotliDecoder:
    def __init__(self) -> None:
        self._d = brotli.Decompressor()
        self._seen = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        self._seen = True
        out = self._d.process(data, output_buffer_limit=_CHUNK)
        if out:
            yield out
        while not self._d.can_accept_more_data():
            out = self._d.process(b"", output_buffer_limit=_CHUNK)
            if not out:
                break
            yield out

    def finish(self) -> None:
        if self._seen and not self._d.is_finished():
            raise brotli.error("truncated br stream")


class _Chain:
    def __init__(self, decoders: list[_Decoder]) -> None:
        self._decoders = decoders  # in decoding order: the last applied encoding first

    def feed(self, data: bytes) -> Iterator[bytes]:
        return self._run(0, data)

    def _run(self, i: int, data: bytes) -> Iterator[bytes]:
        if i == len(self._decoders):
            yield data
            return
        for piece in self._decoders[i].feed(data):
            yield from self._run(i + 1, piece)

    def finish(self) -> None:
        for decoder in self._decoders:
            decoder.finish()


def _decoder_for(header: str | None, url: str) -> _Decoder:
    names = [n.strip().lower() for n in (header or "").split(",") if n.strip()]
    decoders: list[_Decoder] = []
    for name in reversed(names):
        if name == "identity":
            continue
        if name in ("gzip", "x-gzip"):
            decoders.append(_ZlibDecoder("gzip"))
        elif name == "deflate":
            decoders.append(_ZlibDecoder("deflate"))
        elif name == "br":
            decoders.append(_BrotliDecoder())
        else:
            raise FetchError(f"{url}: unsupported Content-Encoding {name!r}", url=url)
    if not decoders:
        return _Identity()
    return decoders[0] if len(decoders) == 1 else _Chain(decoders)


class _Watchdog:
    """Aborts a request that outlives its wall-clock deadline.

    Socket timeouts bound each recv, not the response: a server trickling a byte per second
    never trips them. One daemon thread per client watches every in-flight deadline.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._armed: dict[int, tuple[float, Callable[[], None]]] = {}
        self._fired: set[int] = set()
        self._next = 0
        self._thread: threading.Thread | None = None
        self._stopped = False

    def arm(self, deadline: float, abort: Callable[[], None]) -> int:
        with self._cond:
            token = self._next
            self._next += 1
            self._armed[token] = (deadline, abort)
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(target=self._run, name="http-deadline", daemon=True)
                self._thread.start()
            self._cond.notify()
        return token

    def disarm(self, token: int) -> bool:
        """Stop watching; True if the deadline already fired."""
        with self._cond:
            self._armed.pop(token, None)
            if token in self._fired:
                self._fired.discard(token)
                return True
            return False

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)  # gone, so the process may fork its extract workers

    def _run(self) -> None:
        with self._cond:
            while not self._stopped:
                now = time.monotonic()
                for token, (deadline, abort) in list(self._armed.items()):
                    if deadline <= now:
                        del self._armed[token]
                        self._fired.add(token)
                        abort()
                soonest = min((d for d, _ in self._armed.values()), default=None)
                self._cond.wait(None if soonest is None else max(0.0, soonest - now))


class _Inflight:
    """The connection one request is using, for the watchdog to abort."""

    def __init__(self) -> None:
        self.conn: HTTPConnection | None = None
        self.key: _PoolKey | None = None
        self.sock: socket.socket | None = None  # http.client drops conn.sock on "close"
        self.response: BaseHTTPResponse | None = None

    def release(self) -> None:
        """Close the response (its socket file keeps the fd open) and the connection."""
        if self.response is not None:
            self.response.close()
        if self.conn is not None:
            self.conn.close()

    def abort(self) -> None:
        conn = self.conn
        for sock in (conn.sock if conn is not None else None, self.sock):
            if sock is not None:
                with contextlib.suppress(OSError):  # also unblocks a TLS read or handshake
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)


_PoolKey = tuple[str, str, int, str | None]


class _Pool:
    """Idle keep-alive connections per (scheme, ip, port[, TLS name]).

    TLS connections are also keyed by the name they were verified for: reusing one for another
    host on the same IP would skip that host's certificate check. Idle connections are closed
    after ``idle_timeout`` and beyond ``max_idle`` in all (oldest first), so open descriptors
    follow the number of hosts being fetched now, not the number of hosts seen in the run.
    """

    def __init__(self, max_idle: int, idle_timeout: float) -> None:
        self._lock = threading.Lock()
        self._idle: dict[_PoolKey, list[tuple[float, HTTPConnection]]] = {}
        self._count = 0
        self._max_idle = max(0, max_idle)
        self._idle_timeout = idle_timeout
        self._closed = False

    def take(self, key: _PoolKey) -> HTTPConnection | None:
        while True:
            with self._lock:
                stale = self._expire(time.monotonic())
                idle = self._idle.get(key)
                conn = None
                if idle:
                    _, conn = idle.pop()
                    self._count -= 1
                    if not idle:
                        del self._idle[key]
            _close_all(stale)
            if conn is None:
                return None
            if conn.is_connected:  # the server may have closed it while idle
                return conn
            conn.close()

    def put(self, key: _PoolKey, conn: HTTPConnection) -> None:
        now = time.monotonic()
        with self._lock:
            stale = self._expire(now)
            idle = self._idle.setdefault(key, [])
            if self._closed or len(idle) >= _IDLE_PER_KEY or self._max_idle == 0:
                stale.append(conn)
            else:
                idle.append((now, conn))
                self._count += 1
                while self._count > self._max_idle:
                    stale.append(self._pop_oldest())
        _close_all(stale)

    def idle_count(self) -> int:
        with self._lock:
            return self._count

    def close_idle(self) -> None:
        """Close every idle connection (the process is short of descriptors)."""
        with self._lock:
            conns = [c for idle in self._idle.values() for _, c in idle]
            self._idle.clear()
            self._count = 0
        _close_all(conns)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self.close_idle()

    def _expire(self, now: float) -> list[HTTPConnection]:
        """Under the lock: take out the connections idle longer than the timeout."""
        if not self._count:
            return []
        cutoff = now - self._idle_timeout
        stale: list[HTTPConnection] = []
        for key in [k for k, idle in self._idle.items() if idle[0][0] <= cutoff]:
            idle = self._idle[key]
            keep = [(t, c) for t, c in idle if t > cutoff]
            stale += [c for t, c in idle if t <= cutoff]
            self._count -= len(idle) - len(keep)
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]
        return stale

    def _pop_oldest(self) -> HTTPConnection:
        key = min(self._idle, key=lambda k: self._idle[k][0][0])
        idle = self._idle[key]
        _, conn = idle.pop(0)
        self._count -= 1
        if not idle:
            del self._idle[key]
        return conn


def _close_all(conns: list[HTTPConnection]) -> None:
    for conn in conns:
        conn.close()


@dataclass
class _Host:
    """Politeness and health state of one host:port."""

    lock: threading.Lock = field(default_factory=threading.Lock)  # held for a whole request
    last_end: float | None = None
    not_before: float = 0.0  # Retry-After
    failures: int = 0
    last_error: str = ""
    given_up: bool = False
    deferred_until: float = 0.0


@dataclass
class _Reply:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    location: str | None = None


_TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)


def _describe(exc: BaseException) -> str:
    """The human part of an exception: urllib3 puts the connection object first in args."""
    if exc.args and isinstance(exc.args[-1], str):
        return exc.args[-1]
    return str(exc) or type(exc).__name__


def _out_of_descriptors(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.EMFILE, errno.ENFILE):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _is_cert_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError | CertificateError):
            return True
        if isinstance(seen, urllib3.exceptions.SSLError) and "CERTIFICATE_VERIFY" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class HttpClient:
    """Thread-safe HTTP GET for the whole pipeline; one per run.

    ``ca_certs``, ``max_attempts`` and the backoff knobs exist for tests and special setups;
    the pipeline only passes settings.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        resolver: Resolver | None = None,
        ca_certs: str | None = None,
        max_attempts: int = 3,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.settings = settings
        self._resolver = resolver or system_resolver
        self._ca_certs = ca_certs
        self.max_attempts = max(1, max_attempts)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._lock = threading.Lock()
        self._hosts: dict[str, _Host] = {}
        self._pool = _Pool(max_idle=fetch_concurrency(settings), idle_timeout=settings.keepalive_idle)
        self._watchdog = _Watchdog()
        self._closed = False

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        self._pool.close()
        self._watchdog.stop()

    # ----------------------------------------------------------------- public entry point

    def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str | None = None,
        delay: float | None = None,
    ) -> Response:
        """GET ``url`` following redirects, retrying what a retry can fix.

        Failures that retrying cannot fix raise :class:`RefusedError` at once.
        """
        if self._closed:
            raise RuntimeError("HttpClient is closed")
        headers = {
            "User-Agent": self.settings.user_agent,
            "Accept": accept or DEFAULT_ACCEPT,
            "Accept-Encoding": ACCEPT_ENCODING,
        }
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        spacing = max(0.0, self.settings.host_delay if delay is None else delay)
        attempt = 1
        while True:
            try:
                return self._follow(url, headers, spacing)
            except (DeferredError, OutOfDescriptorsError):
                raise
            except FetchError as exc:
                if not exc.retryable or attempt >= self.max_attempts:
                    raise
                if exc.retry_after is None:  # Retry-After waits happen in the host gate
                    cap = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
                    pause = random.uniform(0, cap)
                    log.info("retrying %s in %.2fs after: %s", url, pause, exc)
                    time.sleep(pause)
                else:
                    log.info("retrying %s after Retry-After %.0fs: %s", url, exc.retry_after, exc)
                attempt += 1

    # ----------------------------------------------------------------- redirects

    def _follow(self, url: str, headers: dict[str, str], spacing: float) -> Response:
        limit = self.settings.max_redirects
        chain: list[str] = []
        current = url
        while True:
            try:
                target = parse_target(current)
            except RefusedError as exc:
                if chain:
                    raise RefusedError(f"{exc} (redirected from {chain[-1]})", url=current) from None
                raise
            if target.url in chain:
                raise refuse(url, "redirect loop: " + " -> ".join([*chain, target.url]))
            chain.append(target.url)
            try:
                reply = self._hop(target, headers, spacing)
            except RefusedError as exc:
                if len(chain) > 1:
                    raise RefusedError(
                        f"{exc} (redirected from {chain[-2]})", url=exc.url, status=exc.status
                    ) from None
                raise
            if reply.location is None:
                mime, charset = _content_type(reply.headers.get("content-type"))
                return Response(
                    url=target.url,
                    status=reply.status,
                    headers=reply.headers,
                    body=reply.body,
                    etag=reply.headers.get("etag"),
                    last_modified=reply.headers.get("last-modified"),
                    content_type=mime,
                    charset=charset,
                )
            if len(chain) > limit:
                raise refuse(url, f"too many redirects (more than {limit})")
            current = urljoin(target.url, reply.location.strip())

    # ----------------------------------------------------------------- one request

    def _host(self, key: str) -> _Host:
        with self._lock:
            state = self._hosts.get(key)
            if state is None:
                state = self._hosts[key] = _Host()
            return state

    def _check_host(self, state: _Host, target: Target) -> None:
        if state.given_up:
            raise RefusedError(
                f"host given up for this run: {target.key} failed {state.failures} times in "
                f"a row (last: {state.last_error}); not fetching {target.url}",
                url=target.url,
            )
        if state.deferred_until > time.monotonic():
            raise DeferredError(
                f"{target.url}: {target.key} is deferred to the next run "
                f"(Retry-After beyond retry_after_cap)",
                url=target.url,
            )

    def _hop(self, target: Target, headers: dict[str, str], spacing: float) -> _Reply:
        """One request to one host, under that host's lock: one in flight, spaced out."""
        state = self._host(target.key)
        self._check_host(state, target)  # no queueing behind a host we already gave up on
        with state.lock:
            self._check_host(state, target)
            started = False
            try:
                ips = vet(target, self.settings.allow_private_network, self._resolver)
                self._wait_turn(state, spacing)
                started = True
                reply = self._exchange(target, ips, headers)
            except (RefusedError, OutOfDescriptorsError):
                raise
            except FetchError as exc:
                outcome = self._failed(state, target, exc)
                if outcome is exc:
                    raise
                raise outcome from exc
            finally:
                if started:
                    state.last_end = time.monotonic()
            state.failures = 0
            state.last_error = ""
            return reply

    def _wait_turn(self, state: _Host, spacing: float) -> None:
        earliest = state.not_before
        if state.last_end is not None:
            earliest = max(earliest, state.last_end + spacing)
        while (pause := earliest - time.monotonic()) > 0:
            time.sleep(pause)

    def _failed(self, state: _Host, target: Target, exc: FetchError) -> FetchError:
        """Count a retryable failure against the host; the error ``get`` should see."""
        result = exc
        cap = self.settings.retry_after_cap
        if exc.retry_after is not None:
            now = time.monotonic()
            if exc.retry_after > cap:
                state.deferred_until = now + exc.retry_after
                result = DeferredError(
                    f"{exc}; {target.key} asked to wait {exc.retry_after:.0f}s, more than "
                    f"retry_after_cap {cap:.0f}s: host deferred to the next run",
                    url=exc.url,
                    status=exc.status,
                    retry_after=exc.retry_after,
                )
            else:
                state.not_before = max(state.not_before, now + exc.retry_after)
        state.failures += 1
        state.last_error = str(exc)
        if state.failures >= self.settings.host_failure_limit:
            state.given_up = True
            log.warning("giving up on %s for this run: %s", target.key, exc)
            return RefusedError(
                f"host given up for this run: {target.key} failed {state.failures} times in "
                f"a row (last: {exc})",
                url=exc.url or target.url,
                status=exc.status,
            )
        return result

    def _connect(self, target: Target, ips: list[str], deadline: float, inflight: _Inflight) -> bool:
        """Put a connection to one of the vetted ``ips`` in ``inflight``; True if reused."""
        tls_name = target.host if target.scheme == "https" else None
        for ip in ips:
            key: _PoolKey = (target.scheme, ip, target.port, tls_name)
            conn = self._pool.take(key)
            if conn is not None:
                inflight.conn, inflight.key = conn, key
                return True
        failures = []
        for ip in ips:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            key = (target.scheme, ip, target.port, tls_name)
            timeout = min(self.settings.connect_timeout, remaining)
            conn = (
                HTTPSConnection(
                    ip,
                    target.port,
                    timeout=timeout,
                    server_hostname=tls_name,
                    assert_hostname=tls_name,
                    cert_reqs="CERT_REQUIRED",
                    ca_certs=self._ca_certs,
                )
                if tls_name
                else HTTPConnection(ip, target.port, timeout=timeout)
            )
            inflight.conn, inflight.key = conn, key
            try:
                conn.connect()
            except (*_TRANSPORT_ERRORS, ValueError) as exc:
                conn.close()
                inflight.conn = None
                if _out_of_descriptors(exc):
                    self._pool.close_idle()
                    raise OutOfDescriptorsError(
                        f"{target.url}: no file descriptor free to connect ({_describe(exc)})", url=target.url
                    ) from None
                if _is_cert_error(exc):
                    raise refuse(
                        target.url, f"TLS certificate verification failed for {target.host}: {exc}"
                    ) from None
                failures.append(f"{ip}: {_describe(exc)}")
                continue
            return False
        detail = "; ".join(failures) or "total_timeout reached"
        raise FetchError(f"{target.url}: cannot connect to {target.key} ({detail})", url=target.url)

    def _exchange(self, target: Target, ips: list[str], headers: dict[str, str]) -> _Reply:
        """Request and read one response within total_timeout; pool the connection if clean."""
        deadline = time.monotonic() + self.settings.total_timeout
        inflight = _Inflight()
        token = self._watchdog.arm(deadline, inflight.abort)
        try:
            reply, reusable = self._converse(target, ips, headers, deadline, inflight)
        except BaseException as exc:
            fired = self._watchdog.disarm(token)
            inflight.release()
            if fired and isinstance(exc, FetchError) and not isinstance(exc, RefusedError):
                raise self._timeout(target) from exc
            raise
        fired = self._watchdog.disarm(token)
        conn, key = inflight.conn, inflight.key
        assert conn is not None and key is not None
        if fired or not reusable or conn.is_closed:
            inflight.release()
        else:
            self._pool.put(key, conn)
        return reply

    def _converse(
        self, target: Target, ips: list[str], headers: dict[str, str], deadline: float, inflight: _Inflight
    ) -> tuple[_Reply, bool]:
        send = {**headers, "Host": target.host_header}
        reused = self._connect(target, ips, deadline, inflight)
        while True:
            conn = inflight.conn
            assert conn is not None
            inflight.sock = conn.sock
            conn.timeout = min(self.settings.read_timeout, max(0.001, deadline - time.monotonic()))
            try:
                conn.request(
                    "GET",
                    target.path,
                    headers=send,
                    preload_content=False,
                    decode_content=False,
                    enforce_content_length=True,
                )
                resp = inflight.response = conn.getresponse()
            except _TRANSPORT_ERRORS as exc:
                conn.close()
                inflight.conn = None
                stale = not isinstance(exc, TimeoutError | urllib3.exceptions.TimeoutError)
                if reused and stale:  # a keep-alive connection the server dropped while idle
                    log.debug("stale pooled connection to %s: %s", target.key, exc)
                    reused = self._connect(target, ips, deadline, inflight)
                    continue
                raise self._transport_error(target, exc) from exc
            return self._reply(target, resp, deadline)

    def _reply(self, target: Target, resp: BaseHTTPResponse, deadline: float) -> tuple[_Reply, bool]:
        status = resp.status
        headers = {name.lower(): value for name, value in resp.headers.itermerged()}
        url = target.url
        keep_alive = headers.get("connection", "").lower() != "close"
        if 200 <= status < 300:
            body = self._read_body(target, resp, headers, deadline)
            return _Reply(status, headers, body), keep_alive
        if status == 304:
            try:  # no body, but http.client must see the response finished to reuse the conn
                resp.read(_CHUNK, decode_content=False)
            except _TRANSPORT_ERRORS:
                keep_alive = False
            return _Reply(status, headers), keep_alive
        reason = f"HTTP {status} {resp.reason or ''}".rstrip()
        if status in REDIRECT_STATUSES and headers.get("location"):
            return _Reply(status, headers, location=headers["location"]), False
        if status in (429, 503):
            retry_after = parse_retry_after(headers.get("retry-after"))
            wait = f" (Retry-After {retry_after:.0f}s)" if retry_after is not None else ""
            raise FetchError(f"{url}: {reason}{wait}", url=url, status=status, retry_after=retry_after)
        if status == 408 or 500 <= status < 600:
            raise FetchError(f"{url}: {reason}", url=url, status=status)
        if 400 <= status < 500:
            raise RefusedError(f"refused {url}: {reason}", url=url, status=status)
        raise RefusedError(f"refused {url}: unexpected {reason}", url=url, status=status)

    def _read_body(
        self, target: Target, resp: BaseHTTPResponse, headers: dict[str, str], deadline: float
    ) -> bytes:
        url, cap = target.url, self.settings.max_bytes
        declared = headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > cap:
            raise refuse(url, f"Content-Length {declared} exceeds max_bytes ({cap})")
        decoder = _decoder_for(headers.get("content-encoding"), url)
        body = bytearray()
        raw = 0
        try:
            while True:
                try:
                    chunk = resp.read(min(_CHUNK, cap - raw + 1), decode_content=False)
                except _TRANSPORT_ERRORS as exc:
                    raise self._transport_error(target, exc) from exc
                if not chunk:
                    break
                raw += len(chunk)
                if raw > cap:
                    raise refuse(url, f"body exceeds max_bytes ({cap} bytes)")
                for piece in decoder.feed(chunk):
                    body += piece
                    if len(body) > cap:
                        raise refuse(url, f"decoded body exceeds max_bytes ({cap} bytes)")
                if time.monotonic() > deadline:
                    raise self._timeout(target)
            decoder.finish()
        except (zlib.error, brotli.error) as exc:
            raise FetchError(
                f"{url}: cannot decode {headers.get('content-encoding')} body: {exc}", url=url
            ) from None
        return bytes(body)

    def _timeout(self, target: Target) -> FetchError:
        return FetchError(
            f"{target.url}: no complete response within total_timeout ({self.settings.total_timeout:g}s)",
            url=target.url,
        )

    def _transport_error(self, target: Target, exc: BaseException) -> FetchError:
        if isinstance(exc, TimeoutError | urllib3.exceptions.TimeoutError):
            what = f"read timed out (read_timeout {self.settings.read_timeout:g}s)"
        elif isinstance(exc, urllib3.exceptions.ProtocolError | http.client.IncompleteRead):
            detail = exc.args[0] if exc.args and isinstance(exc.args[0], str) else repr(exc)
            what = f"connection broken mid-response ({detail})"
        else:
            what = f"{type(exc).__name__}: {_describe(exc)}"
        return FetchError(f"{target.url}: {what}", url=target.url)
