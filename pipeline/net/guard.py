"""The SSRF guard: which URLs and addresses newsagg may fetch at all.

Kept apart from the HTTP client so the crawl (``spiders/``) and the DAG's source checks vet
URLs by the same rules. :func:`check_url` returns the vetted IPs; the client connects to one of
them by address and names the host only in TLS (SNI and certificate check) and ``Host``, so a
second DNS answer cannot swap the target after the check.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from pipeline.errors import FetchError, RefusedError

__all__ = [
    "PRIVATE_NETWORK_SWITCH",
    "IPAddress",
    "Resolver",
    "Target",
    "check_url",
    "classify_address",
    "parse_target",
    "refuse",
    "system_resolver",
    "vet",
]

Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# what a user types to allow it, named in every refusal of a non-public address
PRIVATE_NETWORK_SWITCH = (
    "to fetch it anyway, pass --allow-private-network, set NEWSAGG_ALLOW_PRIVATE_NETWORK=1, "
    "or put allow_private_network = true in newsagg.toml"
)

_V4_BLOCKED: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (ipaddress.IPv4Network(net), reason)
    for net, reason in (
        ("0.0.0.0/8", "an unspecified ('this network') address"),
        ("10.0.0.0/8", "a private address"),
        ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address"),
        ("172.16.0.0/12", "a private address"),
        ("192.0.0.0/24", "an IETF protocol address"),
        ("192.0.2.0/24", "a documentation address"),
        ("192.88.99.0/24", "a 6to4 relay address"),
        ("192.168.0.0/16", "a private address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved address"),
    )
)
_V6_BLOCKED: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(net), reason)
    for net, reason in (
        ("::/128", "an unspecified address"),
        ("::1/128", "a loopback address"),
        ("64:ff9b:1::/48", "a local-use NAT64 address"),
        ("100::/64", "a discard-only address"),
        ("2001::/32", "a Teredo address"),
        ("2001::/23", "an IETF protocol address"),
        ("2001:db8::/32", "a documentation address"),
        ("fc00::/7", "a unique-local address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("ff00::/8", "a multicast address"),
        ("::/8", "a reserved address"),  # after the embedded-IPv4 forms are unpacked
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SIXTOFOUR = ipaddress.IPv6Network("2002::/16")


def classify_address(ip: IPAddress | str) -> str | None:
    """Why ``ip`` must not be fetched (e.g. "a private address"), or None if it is public.

    Explicit tables rather than ``ipaddress.is_global`` alone because that attribute changed
    between Python releases and calls NAT64/6to4 forms of 127.0.0.1 global; addresses that
    embed an IPv4 address are judged by the embedded one.
    """
    return _classify(ipaddress.ip_address(ip) if isinstance(ip, str) else ip)


def _classify(ip: IPAddress) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address):
        embedded, form = _embedded_ipv4(ip)
        if embedded is not None:
            inner = _classify(embedded)
            return f"{inner} ({form} {embedded})" if inner else None
        for net6, reason in _V6_BLOCKED:
            if ip in net6:
                return reason
    else:
        for net4, reason in _V4_BLOCKED:
            if ip in net4:
                return reason
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_loopback or ip.is_link_local or ip.is_private or ip.is_reserved:
        return "a non-public address"
    if not ip.is_global:
        return "a non-public address"
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address | None, str]:
    """The IPv4 address an IPv6 address really reaches: mapped, NAT64 or 6to4 forms."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "IPv4-mapped"
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64 form of"
    if ip in _SIXTOFOUR and ip.sixtofour is not None:
        return ip.sixtofour, "6to4 form of"
    return None, ""


_LABEL = r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?"
_HOSTNAME_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")
_NUMERIC_LABEL = re.compile(r"^(?:0[xX][0-9a-fA-F]*|[0-9]+)$")


def _parse_ipv4_literal(host: str) -> ipaddress.IPv4Address | None:
    """Parse the IPv4 spellings resolvers accept (``2130706433``, ``0x7f.1``, ``0177.0.0.1``).

    If the last label is numeric the host is an address (WHATWG URL rule); one that does not
    parse is refused rather than handed to a resolver, which may read it differently.
    """
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if not labels or not _NUMERIC_LABEL.match(labels[-1]):
        return None
    if len(labels) > 4 or not all(_NUMERIC_LABEL.match(label) for label in labels):
        raise ValueError(f"{host!r} is not a valid IPv4 address")
    numbers = []
    for label in labels:
        if label[:2].lower() == "0x":
            numbers.append(int(label[2:] or "0", 16))
        elif len(label) > 1 and label.startswith("0"):
            numbers.append(int(label, 8) if label.isdigit() and "8" not in label and "9" not in label else -1)
        else:
            numbers.append(int(label))
    *head, last = numbers
    if any(n < 0 or n > 255 for n in head) or not 0 <= last < 256 ** (5 - len(numbers)):
        raise ValueError(f"{host!r} is not a valid IPv4 address")
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


@dataclass(frozen=True)
class Target:
    """A URL split once, by us, so the vetted host is the one we connect to and name."""

    url: str
    scheme: str
    host: str  # ASCII; the canonical address for IP literals
    port: int
    path: str  # request target: path?query, percent-encoded
    literal: IPAddress | None

    @property
    def key(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return name if self.port == default else f"{name}:{self.port}"


def refuse(url: str, reason: str) -> RefusedError:
    return RefusedError(f"refused {url}: {reason}", url=url)


def parse_target(url: str) -> Target:
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:
        raise refuse(url, f"malformed URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        shown = f"scheme {scheme!r}" if scheme else "a URL without a scheme"
        raise refuse(url, f"{shown} is not allowed (only http and https)")
    raw_host = parts.hostname or ""
    if not raw_host:
        raise refuse(url, "no host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise refuse(url, "bad port") from None
    if not 0 < port < 65536:
        raise refuse(url, "bad port")
    literal: IPAddress | None
    if ":" in raw_host:  # only IPv6 literals have colons once urlsplit removed the port
        try:
            literal = ipaddress.IPv6Address(raw_host)
        except ValueError:
            raise refuse(url, f"{raw_host!r} is not a valid IPv6 address") from None
        host = str(literal)
    else:
        try:
            host = raw_host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise refuse(url, f"invalid host name {raw_host!r}") from None
        try:
            literal = _parse_ipv4_literal(host)
        except ValueError as exc:
            raise refuse(url, str(exc)) from None
        if literal is not None:
            host = str(literal)
        elif not _HOSTNAME_RE.match(host):
            raise refuse(url, f"invalid host name {raw_host!r}")
        host = host.rstrip(".")
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    if parts.query:
        path += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    clean_url = parts._replace(fragment="").geturl()
    return Target(clean_url, scheme, host, port, path, literal)


def system_resolver(host: str, port: int) -> list[str]:
    """All addresses the OS resolver gives for ``host``, in its preference order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"cannot resolve {host}: {exc}") from None
    ips: list[str] = []
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6) and sockaddr[0] not in ips:
            ips.append(str(sockaddr[0]))
    return ips


def vet(target: Target, allow_private: bool, resolver: Resolver) -> list[str]:
    if target.literal is not None:
        addresses: list[IPAddress] = [target.literal]
    else:
        try:
            raw = resolver(target.host, target.port)
        except FetchError as exc:
            raise FetchError(f"{target.url}: {exc}", url=target.url) from None
        except OSError as exc:
            raise FetchError(f"{target.url}: cannot resolve {target.host}: {exc}", url=target.url) from None
        addresses = []
        for text in raw:
            try:
                addresses.append(ipaddress.ip_address(text.split("%", 1)[0]))
            except ValueError:
                raise refuse(target.url, f"resolver returned {text!r}, not an address") from None
        if not addresses:
            raise FetchError(f"{target.url}: {target.host} has no addresses", url=target.url)
    if not allow_private:
        for ip in addresses:
            reason = classify_address(ip)
            if reason:
                subject = str(ip) if target.literal is not None else f"{target.host} resolves to {ip}, which"
                raise refuse(target.url, f"{subject} is {reason}; {PRIVATE_NETWORK_SWITCH}")
    return list(dict.fromkeys(str(ip) for ip in addresses))


def check_url(url: str, *, allow_private: bool, resolver: Resolver = system_resolver) -> list[str]:
    """The SSRF guard alone: the vetted IPs to connect to, or :class:`RefusedError`.

    Every address must pass, not just one: the connection may use any of them.
    """
    return vet(parse_target(url), allow_private, resolver)
