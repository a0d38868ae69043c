"""API keys in Postgres: only digests are stored."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from service.domain.access import Principal, StoredKey, generate_key, key_digest, key_id_for


async def active_keys(conn: asyncpg.Connection | asyncpg.Pool) -> list[StoredKey]:
    rows = await conn.fetch(
        "SELECT key_id, name, role, secret_hash, store_ids FROM api_keys WHERE revoked_at IS NULL"
    )
    return [
        StoredKey(
            Principal(r["key_id"], r["name"], r["role"], frozenset(r["store_ids"])),
            bytes(r["secret_hash"]),
        )
        for r in rows
    ]


async def create_key(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    name: str,
    role: str,
    store_ids: Sequence[str] = (),
    key: str | None = None,
) -> str:
    """Store a key (a new random one unless ``key`` is given) and return it, once."""
    key = key or generate_key()
    await conn.execute(
        """
        INSERT INTO api_keys (key_id, name, role, secret_hash, store_ids)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (key_id) DO UPDATE
            SET name = EXCLUDED.name, role = EXCLUDED.role, store_ids = EXCLUDED.store_ids,
                revoked_at = NULL
        """,
        key_id_for(key),
        name,
        role,
        key_digest(key),
        list(store_ids),
    )
    return key


async def revoke_key(conn: asyncpg.Connection | asyncpg.Pool, key_id: str) -> bool:
    status = await conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE key_id = $1 AND revoked_at IS NULL", key_id
    )
    return bool(status.endswith(" 1"))
