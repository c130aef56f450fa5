"""Read-API tokens: only their hashes are kept (pipeline.serve.tokens keeps the rules)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select, text

from pipeline.errors import ConfigError
from pipeline.store.schema import api_tokens
from pipeline.timeutil import utc

if TYPE_CHECKING:
    from pipeline.store.core import Store

log = logging.getLogger(__name__)


class Tokens:
    """The ``api_tokens`` table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def save_token(self, name: str, token_sha256: str, created_at: datetime) -> None:
        """Store a new token under ``name``; ConfigError if an active one has that name. A
        revoked name is reused, its old hash gone with it."""
        with self._store.begin() as conn:
            row = conn.execute(select(api_tokens.c.revoked_at).where(api_tokens.c.name == name)).first()
            if row is not None and row.revoked_at is None:
                raise ConfigError(f"token {name!r} exists; revoke it first (newsagg token revoke {name})")
            values = {"token_sha256": token_sha256, "created_at": created_at, "revoked_at": None}
            if row is None:
                conn.execute(api_tokens.insert().values(name=name, **values))
            else:
                conn.execute(api_tokens.update().where(api_tokens.c.name == name).values(**values))

    def revoke_token(self, name: str, at: datetime) -> bool:
        """Revoke the active token ``name``; False when there is none."""
        with self._store.begin() as conn:
            done = conn.execute(
                api_tokens.update()
                .where(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            return bool(done.rowcount)

    def tokens(self) -> list[tuple[str, datetime | None, datetime | None]]:
        """``(name, created_at, revoked_at)`` of every token, by name."""
        with self._store.begin() as conn:
            return [
                (r.name, utc(r.created_at), utc(r.revoked_at))
                for r in conn.execute(select(api_tokens).order_by(api_tokens.c.name))
            ]

    def active_token_hashes(self) -> list[tuple[str, str]]:
        """``(name, token_sha256)`` of the active tokens."""
        with self._store.begin() as conn:
            return [
                (r.name, r.token_sha256)
                for r in conn.execute(
                    select(api_tokens.c.name, api_tokens.c.token_sha256).where(
                        api_tokens.c.revoked_at.is_(None)
                    )
                )
            ]

    def token_name(self, token_sha256: str) -> str | None:
        """PostgreSQL: the active token with this hash, through ``newsagg_v1_token_name`` (which
        the reader role may call; migration 0004). None when there is none."""
        with self._store.begin() as conn:
            name = conn.execute(text("SELECT newsagg_v1_token_name(:h)"), {"h": token_sha256}).scalar()
        return None if name is None else str(name)
