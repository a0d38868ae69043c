"""Points held for a calculation (SPEC §3.5), in the ledger: ``loyalty_hold`` holds under
the card's lock; the commit functions take a hold, or spend around the others'."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

from service.storage.postgres.pool import database_errors
from service.usecases.ports import Released


class PointHolds:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def hold(
        self,
        card: str,
        calculation_id: str,
        store_id: str,
        points: int,
        now: datetime,
        until: datetime,
    ) -> int:
        async with database_errors():
            outcome = await self._pool.fetchval(
                "SELECT loyalty_hold($1, $2, $3, $4, $5, $6)",
                card, calculation_id, store_id, points, now, until,
            )  # fmt: skip
        return int(outcome["held"])

    async def release(
        self, calculation_id: str, now: datetime, may_release: Callable[[str], None]
    ) -> Released | None:
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """
                SELECT h.store_id, h.points, c.number, h.taken_at, h.released_at,
                       h.expires_at <= $2 AS lapsed
                FROM point_holds h JOIN cards c USING (card_id)
                WHERE h.calculation_id = $1 FOR UPDATE OF h, c
                """,
                calculation_id,
                now,
            )
            if row is None:
                return None
            may_release(row["store_id"])  # raises for a till of another store: nothing freed
            free = row["taken_at"] is None and row["released_at"] is None and not row["lapsed"]
            if free:
                await conn.execute(
                    "UPDATE point_holds SET released_at = $2 WHERE calculation_id = $1",
                    calculation_id,
                    now,
                )
                await conn.execute(
                    "UPDATE cards SET ledger_version = ledger_version + 1 WHERE number = $1",
                    row["number"],
                )
        return Released(row["number"], row["store_id"], row["points"] if free else 0)
