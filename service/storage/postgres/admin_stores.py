"""Stores and regions as the back office edits them."""

from __future__ import annotations

from typing import Any

import asyncpg

from service.domain.errors import NotFound, invalid_field
from service.domain.receipt import StoreInfo
from service.storage.postgres import audit
from service.storage.postgres.pool import database_errors
from service.storage.postgres.stores import list_stores


class StoreAdmin:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def put_region(self, region_id: str, name: str, author: str) -> None:
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO regions (region_id, name) VALUES ($1, $2)"
                " ON CONFLICT (region_id) DO UPDATE SET name = EXCLUDED.name",
                region_id,
                name,
            )
            await audit.record(conn, author, "region.put", f"region:{region_id}", {"name": name})

    async def regions(self) -> list[dict[str, Any]]:
        async with database_errors():
            rows = await self._pool.fetch(
                """
                SELECT r.region_id, r.name,
                       coalesce(array_agg(s.store_id ORDER BY s.store_id)
                                FILTER (WHERE s.store_id IS NOT NULL), '{}') AS stores
                FROM regions r LEFT JOIN stores s ON s.region = r.region_id
                GROUP BY r.region_id ORDER BY r.region_id
                """
            )
        return [dict(row) for row in rows]

    async def put_store(
        self, store_id: str, name: str, region: str, timezone: str, active: bool, author: str
    ) -> None:
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM regions WHERE region_id = $1)", region
            ):
                raise invalid_field("region", f"unknown region {region!r}", code="region_not_found")
            await conn.execute(
                """
                INSERT INTO stores (store_id, name, region, timezone, active)
                VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (store_id) DO UPDATE SET name = EXCLUDED.name,
                    region = EXCLUDED.region, timezone = EXCLUDED.timezone,
                    active = EXCLUDED.active
                """,
                store_id,
                name,
                region,
                timezone,
                active,
            )
            details = {"region": region, "timezone": timezone, "active": active}
            await audit.record(conn, author, "store.put", f"store:{store_id}", details)

    async def stores(self, store_id: str | None = None) -> list[dict[str, Any]]:
        async with database_errors():
            rows = await self._pool.fetch(
                "SELECT store_id, name, region, timezone, active, created_at FROM stores"
                " WHERE $1::text IS NULL OR store_id = $1 ORDER BY store_id",
                store_id,
            )
        if store_id is not None and not rows:
            raise NotFound(f"unknown store {store_id!r}", code="store_not_found")
        return [dict(row) for row in rows]

    async def active_stores(self) -> list[StoreInfo]:
        """The active stores as a till's sale needs them: id, region, time zone."""
        return await list_stores(self._pool)
