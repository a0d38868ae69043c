"""API keys in Postgres: only digests are stored, with the prefix shown in lists."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from service.domain.access import (
    SHOWN_PREFIX,
    Principal,
    StoredKey,
    generate_key,
    key_digest,
    key_id_for,
)
from service.domain.errors import NotFound
from service.storage.postgres import audit
from service.storage.postgres.pool import Executor, database_errors
from service.usecases.admin_keys import NewKey

KEY_COLUMNS = """
    key_id, prefix, name, role, store_ids, origin, created_by, created_at, expires_at,
    last_used_at, revoked_at
"""


async def active_keys(conn: Executor, *, accept_demo: bool = True) -> list[StoredKey]:
    """The keys that may authenticate now: not revoked, not expired, and in production
    (``accept_demo`` False) none that the demo data made."""
    rows = await conn.fetch(
        """
        SELECT key_id, name, role, secret_hash, store_ids, expires_at FROM api_keys
        WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
          AND ($1 OR origin <> 'demo')
        """,
        accept_demo,
    )
    return [
        StoredKey(
            Principal(r["key_id"], r["name"], r["role"], frozenset(r["store_ids"])),
            bytes(r["secret_hash"]),
            None if r["expires_at"] is None else r["expires_at"].timestamp(),
        )
        for r in rows
    ]


async def keys_version(conn: Executor) -> tuple[Any, ...]:
    """What changes when a key is made or revoked: the worker's half-second poll reads
    this, and the keys themselves only when it moved (a chain may have thousands)."""
    row = await conn.fetchrow("SELECT count(*), max(created_at), max(revoked_at) FROM api_keys")
    return tuple(row)


async def create_key(
    conn: Executor,
    *,
    name: str,
    role: str,
    store_ids: Sequence[str] = (),
    key: str | None = None,
    origin: str = "cli",
    author: str | None = None,
    expires_at: datetime | None = None,
) -> str:
    """Store a key (a new random one unless ``key`` is given: the demo's fixed keys) and
    return it, once; the database keeps its digest and its first characters."""
    key = key or generate_key()
    await conn.execute(
        """
        INSERT INTO api_keys (key_id, prefix, name, role, secret_hash, store_ids, origin,
                              created_by, expires_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (key_id) DO UPDATE
            SET name = EXCLUDED.name, role = EXCLUDED.role, store_ids = EXCLUDED.store_ids,
                prefix = EXCLUDED.prefix, origin = EXCLUDED.origin,
                expires_at = EXCLUDED.expires_at, revoked_at = NULL
        """,
        key_id_for(key),
        key[:SHOWN_PREFIX],
        name,
        role,
        key_digest(key),
        list(store_ids),
        origin,
        author,
        expires_at,
    )
    if origin != "demo":
        details = {"name": name, "role": role, "stores": list(store_ids), "origin": origin}
        await audit.record(conn, author or origin, "key.create", f"key:{key_id_for(key)}", details)
    return key


async def list_keys(conn: Executor, *, include_revoked: bool = False) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {KEY_COLUMNS} FROM api_keys WHERE $1 OR revoked_at IS NULL"
        " ORDER BY created_at, key_id",
        include_revoked,
    )
    return [dict(row) for row in rows]


async def get_key(conn: Executor, key_id: str) -> dict[str, Any]:
    row = await conn.fetchrow(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = $1", key_id)
    if row is None:
        raise NotFound(f"no API key {key_id!r}", code="key_not_found")
    return dict(row)


async def revoke_key(conn: Executor, key: str, author: str) -> dict[str, Any]:
    """Revoke the key whose id or shown prefix is ``key`` (the first revocation counts;
    revoking again changes nothing); the key as it then is."""
    row = await conn.fetchrow(
        f"""
        UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
        WHERE key_id = $1 OR (prefix = $1 AND (SELECT count(*) FROM api_keys WHERE prefix = $1) = 1)
        RETURNING {KEY_COLUMNS}
        """,
        key,
    )
    if row is None:
        raise NotFound(f"no API key with id or prefix {key!r}", code="key_not_found")
    await audit.record(conn, author, "key.revoke", f"key:{row['key_id']}")
    return dict(row)


async def mark_used(conn: Executor, key_ids: Collection[str]) -> None:
    """Record that these keys authenticated requests (to the minute: a key used all day
    is written once a minute per worker, not once a request)."""
    if key_ids:
        await conn.execute(
            "UPDATE api_keys SET last_used_at = now() WHERE key_id = ANY($1::text[])"
            " AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
            list(key_ids),
        )


class KeyStore:
    """``usecases.admin_keys.KeyRepository`` over the pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, key: NewKey, origin: str, author: str) -> dict[str, Any]:
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            secret = await create_key(
                conn,
                name=key.name,
                role=key.role,
                store_ids=key.store_ids,
                origin=origin,
                author=author,
                expires_at=key.expires_at,
            )
            return {"key": secret, **await get_key(conn, key_id_for(secret))}

    async def keys(self, include_revoked: bool) -> list[dict[str, Any]]:
        async with database_errors():
            return await list_keys(self._pool, include_revoked=include_revoked)

    async def revoke(self, key: str, author: str) -> dict[str, Any]:
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            return await revoke_key(conn, key, author)

    async def known_stores(self, store_ids: tuple[str, ...]) -> set[str]:
        async with database_errors():
            rows = await self._pool.fetch(
                "SELECT store_id FROM stores WHERE store_id = ANY($1::text[])", list(store_ids)
            )
        return {row["store_id"] for row in rows}
