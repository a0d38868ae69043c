"""Cards and their state as the calculation needs it, read from the ledger of record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from service.domain.card import CardState, PointLot
from service.storage.postgres import database_errors

_CARD_STATE_SQL = """
SELECT c.card_id, c.number, c.status, c.tier, c.personal_discount_bp, c.purchase_count,
       c.ledger_version, c.debt, c.customer_id, cu.birthday,
       coalesce(cu.segments, '{}') AS segments,
       (SELECT coalesce(sum(t.amount), 0) FROM tier_spend t
         WHERE t.card_id = c.card_id AND ($2::timestamptz IS NULL OR t.occurred_at >= $2)
       ) AS tier_spend,
       (SELECT coalesce(sum(l.points), 0) FROM ledger_entries l
         WHERE l.card_id = c.card_id AND l.kind = 'accrual' AND l.created_at >= $3
       ) AS earned_today,
       (SELECT coalesce(json_agg(json_build_array(p.lot_id, p.remaining, p.activates_at,
                                                  p.expires_at)
                                 ORDER BY p.expires_at NULLS LAST, p.lot_id), '[]')
          FROM point_lots p WHERE p.card_id = c.card_id AND p.remaining > 0
       ) AS lots,
       (SELECT coalesce(json_object_agg(u.code, u.n), '{}')
          FROM (SELECT code, count(*) AS n FROM promo_code_uses
                 WHERE card_id = c.card_id AND released_at IS NULL GROUP BY code) u
       ) AS promo_uses
FROM cards c LEFT JOIN customers cu USING (customer_id)
WHERE c.number = $1
"""


def _lot(raw: list[object]) -> PointLot:
    lot_id, remaining, activates_at, expires_at = raw
    return PointLot(
        lot_id=int(lot_id),  # type: ignore[call-overload]
        points=int(remaining),  # type: ignore[call-overload]
        activates_at=datetime.fromisoformat(str(activates_at)),
        expires_at=None if expires_at is None else datetime.fromisoformat(str(expires_at)),
    )


async def load_card_state(
    conn: asyncpg.Connection | asyncpg.Pool,
    number: str,
    *,
    tier_window_start: datetime | None,
    day_start: datetime,
) -> CardState | None:
    """The card's state in one round trip, or None for an unknown card.

    ``tier_window_start`` bounds the tier spend (None: lifetime); ``day_start`` is the
    start of the current day for the per-card daily earning cap.
    """
    row = await conn.fetchrow(_CARD_STATE_SQL, number, tier_window_start, day_start)
    if row is None:
        return None
    return CardState(
        number=row["number"],
        status=row["status"],
        tier=row["tier"],
        tier_spend=int(row["tier_spend"]),
        lots=tuple(_lot(raw) for raw in row["lots"]),
        birthday=row["birthday"],
        segments=frozenset(row["segments"]),
        purchase_count=row["purchase_count"],
        personal_discount_bp=row["personal_discount_bp"],
        points_earned_today=int(row["earned_today"]),
        promo_uses={str(k): int(v) for k, v in row["promo_uses"].items()},
        customer_id=row["customer_id"],
        ledger_version=row["ledger_version"],
        debt=row["debt"],
    )


class CardQueries:
    """Read-only lookups for the POS and support: history pages, cards by phone."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def history(
        self, number: str, *, before: int | None, limit: int
    ) -> list[dict[str, Any]] | None:
        """Ledger entries newest first, ``limit`` of them below entry id ``before``;
        None for an unknown card."""
        async with database_errors():
            card_id = await self._pool.fetchval(
                "SELECT card_id FROM cards WHERE number = $1", number
            )
            if card_id is None:
                return None
            rows = await self._pool.fetch(
                """
                SELECT e.entry_id, e.kind, e.points, e.created_at, e.store_id, e.transaction_id,
                       e.refund_id, e.reason, l.expires_at
                FROM ledger_entries e
                LEFT JOIN point_lots l ON l.card_id = e.card_id AND l.lot_id = e.lot_id
                WHERE e.card_id = $1 AND ($2::bigint IS NULL OR e.entry_id < $2)
                ORDER BY e.entry_id DESC LIMIT $3
                """,
                card_id, before, limit,
            )  # fmt: skip
        return [dict(row) for row in rows]

    async def by_phone(self, phone: str) -> list[str]:
        async with database_errors():
            rows = await self._pool.fetch(
                """
                SELECT c.number FROM cards c JOIN customers cu USING (customer_id)
                WHERE cu.phone = $1 AND cu.erased_at IS NULL ORDER BY c.card_id
                """,
                phone,
            )
        return [row["number"] for row in rows]
