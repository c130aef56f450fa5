"""Bearer tokens for the read API.

A token is 32 random bytes (``secrets``), shown once when created. The store keeps only its
SHA-256: a salt or a slow hash buys nothing against guessing 256 random bits, and a leaked
``api_tokens`` table then grants nothing. Checks compare against every active hash with
:func:`hmac.compare_digest`, so timing tells nothing about how close a guess came.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from pipeline.errors import ConfigError
from pipeline.store.core import Store

PREFIX = "nat_"  # recognisable in logs and secret scanners
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


@dataclass(frozen=True, slots=True)
class TokenInfo:
    name: str
    created_at: datetime
    revoked_at: datetime | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ConfigError(f"token name {name!r}: use 1-64 letters, digits, '_', '.', '@' or '-'")


def create_token(store: Store, name: str) -> str:
    """Make a token called ``name``; returns it (the only time it exists in clear)."""
    _check_name(name)
    token = PREFIX + secrets.token_urlsafe(32)
    store.save_token(name, hash_token(token), datetime.now(UTC).replace(microsecond=0))
    return token


def revoke_token(store: Store, name: str) -> None:
    if not store.revoke_token(name, datetime.now(UTC).replace(microsecond=0)):
        raise ConfigError(f"no active token named {name!r}")


def list_tokens(store: Store) -> list[TokenInfo]:
    return [
        TokenInfo(name, created or datetime.min.replace(tzinfo=UTC), revoked)
        for name, created, revoked in store.tokens()
    ]


def verify_token(store: Store, presented: str | None) -> str | None:
    """The name of the active token ``presented`` is, or None."""
    if not presented:
        return None
    wanted = hash_token(presented)
    if store.dialect == "postgresql":
        # A hash lookup: the reader role may call it without reading api_tokens. The hash of a
        # guess says nothing about how close the guess was, so an indexed lookup leaks nothing.
        return store.token_name(wanted)
    match = None
    for name, digest in store.active_token_hashes():  # no early exit: every check costs the same
        if hmac.compare_digest(digest, wanted):
            match = name
    return match


# -- the database reader role (PostgreSQL) -----------------------------------------------------

_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def grant_reader(store: Store, role: str, login: bool = False) -> list[str]:
    """Create or update ``role`` so that it can SELECT the v1 views and nothing else here.

    NOLOGIN by default: a group role to ``GRANT`` to people's own login roles. With ``login`` it
    may log in but gets no password; pg_hba.conf (peer, cert, ...) decides how it authenticates.
    Returns warnings about what this command cannot fix on its own.
    """
    if store.dialect != "postgresql":
        raise ConfigError(
            "grant-reader needs a PostgreSQL store: SQLite has no roles (hand "
            "readers a copy of the file, or open it with ?mode=ro)"
        )
    if not _ROLE.match(role):
        raise ConfigError(f"role name {role!r}: use lower-case letters, digits and '_'")
    from pipeline.store.roles import grant_reader_role

    return grant_reader_role(store, role, login)
