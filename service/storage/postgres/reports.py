"""Reports for marketing and finance, read from the ledger of record. Every report is
paged by a keyset cursor (an opaque string: the sort key of the last row), so that a
CSV export can stream any number of rows and a page costs the same wherever it starts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from service.domain.errors import NotFound, invalid_field
from service.storage.postgres.pool import database_errors
from service.usecases.admin_reports import Page, Period


def _page(rows: list[asyncpg.Record], limit: int, cursor_of: Any) -> Page:
    out = [dict(row) for row in rows]
    return out, (cursor_of(out[-1]) if len(out) == limit else None)


def _int_cursor(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit() or len(cursor) > 18:
        raise invalid_field("cursor", "not a cursor this report gave")
    return int(cursor)


class Reports:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with database_errors():
            rows: list[asyncpg.Record] = await self._pool.fetch(sql, *args)
        return rows

    async def balances(self, now: datetime, cursor: str | None, limit: int) -> Page:
        rows = await self._fetch(
            """
            SELECT c.card_id, c.number, c.status, c.tier, c.customer_id, c.debt, b.balance,
                   b.pending
            FROM cards c CROSS JOIN LATERAL loyalty_balance(c.card_id, $1) b
            WHERE c.card_id > $2 ORDER BY c.card_id LIMIT $3
            """,
            now,
            _int_cursor(cursor),
            limit,
        )
        return _page(rows, limit, lambda r: str(r["card_id"]))

    async def card_history(
        self, number: str, period: Period, cursor: str | None, limit: int
    ) -> Page:
        card_id = await self._card_id(number)
        rows = await self._fetch(
            f"{_ENTRIES} WHERE e.card_id = $1 AND e.created_at >= $2 AND e.created_at < $3"
            " AND e.entry_id > $4 ORDER BY e.entry_id LIMIT $5",
            card_id,
            period.since,
            period.until,
            _int_cursor(cursor),
            limit,
        )
        return _page(rows, limit, lambda r: str(r["entry_id"]))

    async def store_history(
        self, store_id: str, period: Period, cursor: str | None, limit: int
    ) -> Page:
        after = _store_cursor(cursor, period.since)
        rows = await self._fetch(
            f"{_ENTRIES} WHERE e.store_id = $1 AND e.created_at < $3"
            " AND (e.created_at, e.card_id, e.entry_id) > ($2, $4, $5)"
            " ORDER BY e.created_at, e.card_id, e.entry_id LIMIT $6",
            store_id,
            after[0],
            period.until,
            after[1],
            after[2],
            limit,
        )
        return _page(
            rows, limit, lambda r: f"{r['created_at'].isoformat()}|{r['card_id']}|{r['entry_id']}"
        )

    async def promotions(self, period: Period, cursor: str | None, limit: int) -> Page:
        rows = await self._fetch(_PROMOTIONS, period.since, period.until, cursor, limit)
        return _page(rows, limit, lambda r: r["rule_id"])

    async def health(self, period: Period) -> dict[str, Any]:
        rows = await self._fetch(_HEALTH, period.since, period.until)
        return dict(rows[0])

    async def liability(self, now: datetime, cursor: str | None, limit: int) -> Page:
        rows = await self._fetch(_LIABILITY, now, cursor, limit)
        return _page(rows, limit, lambda r: r["month"])

    async def breakage(self, cursor: str | None, limit: int) -> Page:
        rows = await self._fetch(_BREAKAGE, cursor, limit)
        return _page(rows, limit, lambda r: r["month"])

    async def _card_id(self, number: str) -> int:
        async with database_errors():
            card_id: int | None = await self._pool.fetchval(
                "SELECT card_id FROM cards WHERE number = $1", number
            )
        if card_id is None:
            raise NotFound("no such loyalty card", code="card_not_found")
        return card_id


def _store_cursor(cursor: str | None, since: datetime) -> tuple[datetime, int, int]:
    """(created_at, card_id, entry_id) of the last row seen; before the period at first."""
    if cursor is None:
        return since, 0, 0
    try:
        at, card_id, entry_id = cursor.split("|")
        return datetime.fromisoformat(at), int(card_id), int(entry_id)
    except ValueError:
        raise invalid_field("cursor", "not a cursor this report gave") from None


_ENTRIES = """
SELECT e.entry_id, e.card_id, c.number AS card, e.created_at, e.kind, e.points, e.store_id,
       e.transaction_id, e.refund_id, coalesce(e.reason, a.reason) AS reason,
       coalesce(e.author, a.author) AS author
FROM ledger_entries e JOIN cards c USING (card_id)
LEFT JOIN adjustments a
       ON e.transaction_id LIKE 'adj:%' AND a.adjustment_id::text = substr(e.transaction_id, 5)
"""

# Discounts are per rule and line in the committed receipts; points are per receipt, so a
# rule is credited with the points of the receipts it applied to.
_PROMOTIONS = """
WITH per_receipt AS (
    SELECT a ->> 'rule_id' AS rule_id, max(a ->> 'name') AS name, r.points_earned,
           sum((a ->> 'amount')::bigint) AS discount
    FROM receipts r
    CROSS JOIN LATERAL jsonb_array_elements(r.lines) AS l
    CROSS JOIN LATERAL jsonb_array_elements(l -> 'applied') AS a
    WHERE r.status = 'committed' AND r.occurred_at >= $1 AND r.occurred_at < $2
    GROUP BY r.store_id, r.transaction_id, r.points_earned, a ->> 'rule_id'
)
SELECT rule_id, max(name) AS name, count(*) AS receipts, sum(discount)::bigint AS discount,
       sum(points_earned)::bigint AS points_on_receipts
FROM per_receipt WHERE $3::text IS NULL OR rule_id > $3
GROUP BY rule_id ORDER BY rule_id LIMIT $4
"""

_HEALTH = """
SELECT count(*) AS receipts,
       count(card_id) AS receipts_with_card,
       count(DISTINCT card_id) AS active_cards,
       coalesce(sum(points_earned), 0)::bigint AS points_earned,
       coalesce(sum(points_redeemed), 0)::bigint AS points_redeemed,
       coalesce(sum(subtotal - discount) FILTER (WHERE card_id IS NOT NULL), 0)::bigint
           AS sales_with_card,
       coalesce(sum(subtotal - discount) FILTER (WHERE card_id IS NULL), 0)::bigint
           AS sales_without_card
FROM receipts
WHERE status = 'committed' AND occurred_at >= $1 AND occurred_at < $2
"""

_LIABILITY = """
SELECT coalesce(to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM'), 'never') AS month,
       coalesce(sum(remaining) FILTER (WHERE activates_at <= $1), 0)::bigint AS active,
       coalesce(sum(remaining) FILTER (WHERE activates_at > $1), 0)::bigint AS pending,
       sum(remaining)::bigint AS points
FROM point_lots
WHERE is_open AND (expires_at IS NULL OR expires_at > $1)
GROUP BY 1 HAVING $2::text IS NULL OR coalesce(to_char(expires_at AT TIME ZONE 'UTC',
                                                       'YYYY-MM'), 'never') > $2
ORDER BY 1 LIMIT $3
"""

_BREAKAGE = """
SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month,
       (-sum(points))::bigint AS points_expired, count(DISTINCT card_id) AS cards
FROM ledger_entries WHERE kind = 'expiration'
GROUP BY 1 HAVING $1::text IS NULL OR to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM') > $1
ORDER BY 1 LIMIT $2
"""
