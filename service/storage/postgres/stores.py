"""Stores of the chain: id, region, time zone."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from service.domain.receipt import StoreInfo


async def list_stores(conn: asyncpg.Connection | asyncpg.Pool) -> list[StoreInfo]:
    rows = await conn.fetch(
        "SELECT store_id, region, timezone FROM stores WHERE active ORDER BY store_id"
    )
    return [StoreInfo(r["store_id"], r["region"], r["timezone"]) for r in rows]


async def upsert_stores(
    conn: asyncpg.Connection | asyncpg.Pool, stores: Iterable[tuple[StoreInfo, str]]
) -> None:
    """Insert or update stores given as (store, display name)."""
    await conn.executemany(
        """
        INSERT INTO stores (store_id, name, region, timezone) VALUES ($1, $2, $3, $4)
        ON CONFLICT (store_id) DO UPDATE
            SET name = EXCLUDED.name, region = EXCLUDED.region, timezone = EXCLUDED.timezone
        """,
        [(s.store_id, name, s.region, s.timezone) for s, name in stores],
    )
