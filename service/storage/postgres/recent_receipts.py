"""The latest committed receipts with their lines, for a dry run of a real basket in the
console (SPEC §11). Read-only; newest first by commit time (its index)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import asyncpg
import orjson

_RECENT = """
SELECT r.store_id, r.transaction_id, r.occurred_at, c.number AS card, r.lines
FROM receipts r LEFT JOIN cards c ON c.card_id = r.card_id
WHERE r.status = 'committed' AND ($1::text IS NULL OR r.store_id = $1)
ORDER BY r.committed_at DESC, r.store_id, r.transaction_id
LIMIT $2
"""


def _line(line: dict[str, Any]) -> dict[str, Any]:
    """A committed line as a receipt's line: quantity as decimal text (it is kept in
    thousandths), the unit price (older rows keep only the amount: rounded from it)."""
    thousandths = int(line["quantity"])
    price = line.get("unit_price")
    if price is None:
        price = (int(line["amount"]) * 1000 + thousandths // 2) // max(thousandths, 1)
    return {
        "line_id": str(line["line_id"]), "sku": str(line["sku"]),
        "category": line.get("category"), "brand": line.get("brand"),
        "quantity": f"{Decimal(thousandths).scaleb(-3):f}".rstrip("0").rstrip("."),
        "unit_price": int(price), "excluded": bool(line.get("excluded", False)),
    }  # fmt: skip


async def recent(pool: asyncpg.Pool, store_id: str | None, limit: int) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(_RECENT, store_id, limit)
    return [
        {
            "store_id": row["store_id"], "transaction_id": row["transaction_id"],
            "occurred_at": row["occurred_at"], "card": row["card"],
            "lines": [_line(line) for line in _lines(row["lines"])],
        }
        for row in rows
    ]  # fmt: skip


def _lines(value: Any) -> list[dict[str, Any]]:
    return list(orjson.loads(value) if isinstance(value, str | bytes) else value)
