"""URL canonicalisation: one spelling per article, so exact dedup can key on it.

Lower-cases scheme and host, drops default ports, fragments and tracking parameters, sorts the
remaining query (content parameters such as ``?id=`` are kept) and normalises percent-encoding.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gclsrc",
        "msclkid",
        "yclid",
        "mc_cid",
        "mc_eid",
        "igshid",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "wt_mc",
        "wt.mc_id",
        "cmpid",
        "ocid",
        "ns_mchannel",
        "ns_source",
        "ns_campaign",
        "ns_linkname",
        "ns_fee",
        "ito",
        "at_medium",
        "at_campaign",
        "xtor",
        "s_cid",
        "spm",
        "share",
        "ref_src",
        "ref_url",
        "smid",
        "cmp",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "at_")
DEFAULT_PORTS = {"http": 80, "https": 443}
_SAFE_PATH = "/:@!$&'()*+,;=-._~%"
_MULTI_SLASH = re.compile(r"/{2,}")


def is_tracking_param(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


def _requote(part: str, safe: str) -> str:
    """Decode then re-encode so ``%7E`` and ``~`` (or ``%2f`` and ``%2F``) spell the same."""
    return quote(unquote(part), safe=safe)


def canonicalize(url: str) -> str:
    """Return the canonical spelling of ``url``; idempotent: ``canonicalize(canonicalize(u))``."""
    raw = url.strip()
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if host and ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host
    if port is not None and DEFAULT_PORTS.get(scheme) != port:
        netloc = f"{host}:{port}"
    if parts.username:
        userinfo = parts.username + (f":{parts.password}" if parts.password else "")
        netloc = f"{userinfo}@{netloc}"
    path = _MULTI_SLASH.sub("/", _requote(parts.path, _SAFE_PATH)) or "/"
    query_items = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not is_tracking_param(k)
    ]
    query_items.sort()
    query = urlencode(query_items, quote_via=quote, safe="-._~:/@!$'()*,;")
    return urlunsplit((scheme, netloc, path, query, ""))
