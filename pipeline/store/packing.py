"""Raw pages and discovery documents as the store keeps them: packed with zstd (older stores
hold gzip, which still reads)."""

from __future__ import annotations

import hashlib
import threading
import zlib
from dataclasses import dataclass

import zstandard

from pipeline.errors import StoreError

# Raw pages and discovery documents are kept compressed (columns ``body_gz``; the name is from
# when it was gzip, which stores written then still hold and which still reads). zstd level 3
# packs a real news page to ~17% in ~0.7 ms and unpacks it in ~0.3 ms; gzip took ~2 ms at
# level 1 (to ~22%) or ~5 ms at level 6 (~19%), 10-25% of what trafilatura spends on the page.
ZSTD_LEVEL = 3
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_GZIP_MAGIC = b"\x1f\x8b"
_packer = threading.local()  # zstd (de)compressor objects are not thread-safe


def pack(body: bytes) -> bytes:
    """Compress a body for storage (zstd)."""
    if not hasattr(_packer, "c"):
        _packer.c = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    return bytes(_packer.c.compress(body))


@dataclass(frozen=True, slots=True)
class PackedBody:
    """A fetched body hashed and packed where it was fetched.

    Both hashing and zstd release the GIL, so fetch threads do it in parallel instead of the one
    writer thread doing it for every page in turn."""

    sha256: str
    packed: bytes

    @classmethod
    def of(cls, body: bytes) -> PackedBody:
        return cls(hashlib.sha256(body).hexdigest(), pack(body))


def unpack(blob: bytes, max_bytes: int | None = None) -> bytes:
    """A stored body back, zstd or (older stores) gzip. Raises StoreError when it is corrupt or
    would inflate beyond ``max_bytes``."""
    limit = max_bytes if max_bytes is not None else 1 << 31
    try:
        if blob.startswith(_ZSTD_MAGIC):
            if not hasattr(_packer, "d"):
                _packer.d = zstandard.ZstdDecompressor()
            if zstandard.frame_content_size(blob) > limit:  # -1: not stated
                raise StoreError(f"stored body inflates beyond {limit} bytes")
            out = _packer.d.decompress(blob, max_output_size=limit + 1)
        elif blob.startswith(_GZIP_MAGIC):
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out = inflater.decompress(blob, limit + 1)
            if not inflater.eof and len(out) <= limit:
                raise StoreError("stored body is corrupt: truncated")
        else:
            raise StoreError("stored body is corrupt: neither zstd nor gzip")
    except (zstandard.ZstdError, zlib.error) as exc:
        raise StoreError(f"stored body is corrupt: {exc}") from None
    if len(out) > limit:
        raise StoreError(f"stored body inflates beyond {limit} bytes")
    return bytes(out)
