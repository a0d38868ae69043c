"""The deployment's signing secrets, kept in the ledger's database: made on first use, the
same for every worker, nothing to configure."""

from __future__ import annotations

import os

import asyncpg

from service.storage.postgres.pool import database_errors


class SigningKeys:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._known: dict[str, bytes] = {}

    async def secret(self, name: str) -> bytes:
        """The secret named ``name``: read once per worker, made (32 random bytes) by the
        first worker that asks."""
        known = self._known.get(name)
        if known is None:
            async with database_errors():
                await self._pool.execute(
                    "INSERT INTO signing_keys (name, secret) VALUES ($1, $2)"
                    " ON CONFLICT (name) DO NOTHING",
                    name,
                    os.urandom(32),
                )
                known = bytes(
                    await self._pool.fetchval(
                        "SELECT secret FROM signing_keys WHERE name = $1", name
                    )
                )
            self._known[name] = known
        return known
