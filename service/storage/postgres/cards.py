"""Cards and their state as the calculation needs it, read from the ledger of record."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import asyncpg

from service.domain.card import CardState, PointLot
from service.storage.postgres.pool import database_errors

_CARD_STATE_SQL = """
SELECT loyalty_card_state(card_id, $2, $3) FROM cards WHERE number = $1
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
    state: dict[str, Any] | None = await conn.fetchval(
        _CARD_STATE_SQL, number, tier_window_start, day_start
    )
    return None if state is None else card_state_from(state)


def card_state_from(raw: dict[str, Any]) -> CardState:
    """A card state from ``loyalty_card_state``'s JSON."""
    birthday = raw["birthday"]
    return CardState(
        number=raw["number"],
        status=raw["status"],
        tier=raw["tier"],
        tier_spend=int(raw["tier_spend"]),
        lots=tuple(_lot(lot) for lot in raw["lots"]),
        birthday=None if birthday is None else date.fromisoformat(birthday),
        segments=frozenset(raw["segments"]),
        purchase_count=raw["purchase_count"],
        personal_discount_bp=raw["personal_discount_bp"],
        points_earned_today=int(raw["earned_today"]),
        promo_uses={str(k): int(v) for k, v in raw["promo_uses"].items()},
        rule_uses={str(k): int(v) for k, v in raw["rule_uses"].items()},
        stamps={str(k): int(v) for k, v in raw.get("stamps", {}).items()},
        holds=tuple(
            (calc, int(points), datetime.fromisoformat(until))
            for calc, points, until in raw["holds"]
        ),
        customer_id=raw["customer_id"],
        ledger_version=raw["ledger_version"],
        debt=raw["debt"],
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
                card_id,
                before,
                limit,
            )
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
