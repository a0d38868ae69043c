"""The invariants every test session ends with (service/storage/postgres/invariants.py) find a
broken card."""

from __future__ import annotations

import asyncpg

from service.storage.postgres.invariants import broken_invariants
from tests.e2e.admin_helpers import card_number


async def test_a_lot_without_its_ledger_entry_is_found(db: asyncpg.Connection) -> None:
    number = card_number()
    card_id = await db.fetchval("INSERT INTO cards (number) VALUES ($1) RETURNING card_id", number)
    await db.execute(
        "INSERT INTO point_lots (card_id, points, remaining, activates_at, source)"
        " VALUES ($1, 50, 50, now(), 'adjustment')",
        card_id,
    )
    broken = await broken_invariants(db)
    [row] = [
        r
        for r in broken["every card's ledger entries = its lots less its debt"]
        if r["number"] == number
    ]
    assert (row["entries"], row["lots"]) == (0, 50)
