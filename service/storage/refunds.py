"""Returns and cancellations on the ledger: one transaction each, idempotent by refund id.

The sale's receipt row is locked first, then its card: a refund and a commit of the
same card serialise on the card row, two refunds of one sale on the receipt row.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from service.domain.errors import Conflict, IdempotencyConflict, NotFound
from service.domain.reversal import ReturnRequest, Reversal, SoldLine, reverse
from service.domain.units import quantity_text
from service.storage.postgres import database_errors


def _sold_lines(raw: list[dict[str, Any]]) -> list[SoldLine]:
    return [
        SoldLine(line["line_id"], line["quantity"], line["amount"], line["discount"],
                 line["points_paid"], line["final_amount"], line["points_earned"])
        for line in raw
    ]  # fmt: skip


async def _returned_so_far(conn: asyncpg.Connection, store_id: str, tx: str) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT lines FROM refunds WHERE store_id = $1 AND transaction_id = $2", store_id, tx
    )
    returned: dict[str, int] = {}
    for row in rows:
        for line in row["lines"]:
            returned[line["line_id"]] = returned.get(line["line_id"], 0) + line["quantity"]
    return returned


async def _take_back_earned(
    conn: asyncpg.Connection, card_id: int, req: ReturnRequest, points: int
) -> int:
    """Take back earned points: from the sale's own lot first, then any active lot.
    Returns the shortfall: points already spent that no lot can cover."""
    if points == 0:
        return 0
    lot = await conn.fetchrow(
        """
        SELECT l.lot_id, l.remaining FROM ledger_entries e
        JOIN point_lots l ON l.card_id = e.card_id AND l.lot_id = e.lot_id
        WHERE e.card_id = $1 AND e.kind = 'accrual' AND e.store_id = $2
          AND e.transaction_id = $3
        FOR UPDATE OF l
        """,
        card_id, req.store_id, req.transaction_id,
    )  # fmt: skip
    left = points
    if lot is not None and lot["remaining"] > 0:
        take = min(lot["remaining"], left)
        await conn.execute(
            "UPDATE point_lots SET remaining = remaining - $3 WHERE card_id = $1 AND lot_id = $2",
            card_id, lot["lot_id"], take,
        )  # fmt: skip
        await _entry(conn, card_id, "refund_accrual", -take, lot["lot_id"], req)
        left -= take
    if left > 0:
        taken: int = await conn.fetchval(
            "SELECT loyalty_take_points($1, $2, $3, 'refund_accrual', $4, $5, $6)",
            card_id, left, req.now, req.store_id, req.transaction_id, req.refund_id,
        )  # fmt: skip
        left -= taken
    return left


async def _give_back_spent(
    conn: asyncpg.Connection, card_id: int, req: ReturnRequest, points: int
) -> None:
    """Give spent points back to the lots they came from, keeping their original expiry."""
    rows = await conn.fetch(
        """
        SELECT e.lot_id, -sum(e.points) AS out FROM ledger_entries e
        WHERE e.card_id = $1 AND e.store_id = $2 AND e.transaction_id = $3
          AND e.kind IN ('redemption', 'refund_redemption') AND e.lot_id IS NOT NULL
        GROUP BY e.lot_id HAVING -sum(e.points) > 0
        ORDER BY max(e.entry_id) DESC
        """,
        card_id, req.store_id, req.transaction_id,
    )  # fmt: skip
    left = points
    for row in rows:
        if left == 0:
            break
        give = min(row["out"], left)
        await conn.execute(
            "UPDATE point_lots SET remaining = remaining + $3 WHERE card_id = $1 AND lot_id = $2",
            card_id, row["lot_id"], give,
        )  # fmt: skip
        await _entry(conn, card_id, "refund_redemption", give, row["lot_id"], req)
        left -= give


async def _entry(
    conn: asyncpg.Connection, card_id: int, kind: str, points: int, lot_id: int | None,
    req: ReturnRequest,
) -> None:  # fmt: skip
    if req.cancel:
        kind = kind.replace("refund_", "cancel_")
    await conn.execute(
        """
        INSERT INTO ledger_entries (card_id, kind, points, lot_id, store_id, transaction_id,
                                    refund_id, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        """,
        card_id, kind, points, lot_id, req.store_id, req.transaction_id, req.refund_id, req.now,
    )  # fmt: skip


async def _settle_shortfall(
    conn: asyncpg.Connection, card_id: int, req: ReturnRequest, shortfall: int, money: int
) -> dict[str, int]:
    """Earned points already spent: withheld from the cash refund (``withhold`` policy,
    as far as it goes), the rest owed by the card (repaid from its next accruals)."""
    withheld_points = 0
    if req.policy == "withhold":  # in whole points, as far as the cash refund goes
        withheld_points = min(shortfall, money // req.point_value)
    debt = shortfall - withheld_points
    if debt:
        await conn.execute("UPDATE cards SET debt = debt + $2 WHERE card_id = $1", card_id, debt)
        await _entry(conn, card_id, "refund_accrual", -debt, None, req)
    return {"withhold": withheld_points * req.point_value, "debt": debt}


async def _release_promo_codes(conn: asyncpg.Connection, req: ReturnRequest) -> None:
    codes = await conn.fetch(
        """
        UPDATE promo_code_uses SET released_at = $3
        WHERE store_id = $1 AND transaction_id = $2 AND released_at IS NULL
        RETURNING code
        """,
        req.store_id, req.transaction_id, req.now,
    )  # fmt: skip
    await conn.execute(
        "UPDATE promo_codes SET uses = uses - 1 WHERE code = ANY($1) AND max_uses IS NOT NULL",
        [row["code"] for row in codes],
    )


async def _apply_to_card(
    conn: asyncpg.Connection, card_id: int, req: ReturnRequest, reversal: Reversal
) -> dict[str, Any]:
    await conn.execute("SELECT 1 FROM cards WHERE card_id = $1 FOR UPDATE", card_id)
    shortfall = await _take_back_earned(conn, card_id, req, reversal.points_earned_back)
    await _give_back_spent(conn, card_id, req, reversal.points_paid_back)
    settled = await _settle_shortfall(conn, card_id, req, shortfall, reversal.money)
    if reversal.tier_spend:
        await conn.execute(
            "INSERT INTO tier_spend (card_id, amount, occurred_at, store_id, transaction_id)"
            " VALUES ($1, $2, $3, $4, $5)",
            card_id, -reversal.tier_spend, req.now, req.store_id, req.transaction_id,
        )  # fmt: skip
    card = await conn.fetchrow(
        """
        UPDATE cards SET ledger_version = ledger_version + 1 WHERE card_id = $1
        RETURNING number, status, tier, debt,
                  loyalty_spendable(card_id, $2) - debt AS balance,
                  (SELECT coalesce(sum(remaining), 0)::bigint FROM point_lots p
                    WHERE p.card_id = cards.card_id AND remaining > 0
                      AND activates_at > $2) AS pending
        """,
        card_id, req.now,
    )  # fmt: skip
    await conn.execute(
        "INSERT INTO outbox (card_id, kind, payload) VALUES ($1, $2, $3)",
        card_id, "cancel" if req.cancel else "refund",
        {"card": card["number"], "store_id": req.store_id, "transaction_id": req.transaction_id,
         "refund_id": req.refund_id, "points_taken": reversal.points_earned_back,
         "points_returned": reversal.points_paid_back},
    )  # fmt: skip
    view = {k: card[k] for k in ("number", "status", "tier", "balance", "pending")}
    return {**settled, "card": view}


def _response(
    req: ReturnRequest, reversal: Reversal, settled: dict[str, Any] | None
) -> dict[str, Any]:
    withhold = 0 if settled is None else settled["withhold"]
    return {
        "refund_id": req.refund_id,
        "transaction_id": req.transaction_id,
        "status": "cancelled" if req.cancel else "refunded",
        "lines": [
            {"line_id": line.line_id, "quantity": quantity_text(line.quantity),
             "amount": line.money, "points_returned": line.points_paid_back,
             "points_taken": line.points_earned_back}
            for line in reversal.lines
        ],
        "totals": {
            "amount": reversal.money, "withhold": withhold,
            "cash_refund": reversal.money - withhold,
            "points_returned": reversal.points_paid_back,
            "points_taken": reversal.points_earned_back,
            "debt": 0 if settled is None else settled["debt"],
        },
        "policy": req.policy,
        "card": None if settled is None else settled["card"],
    }  # fmt: skip


async def _replay(conn: asyncpg.Connection, req: ReturnRequest) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT transaction_id, request_hash, response FROM refunds"
        " WHERE store_id = $1 AND refund_id = $2",
        req.store_id, req.refund_id,
    )  # fmt: skip
    if row is None:
        return None
    if (
        row["transaction_id"] != req.transaction_id
        or bytes(row["request_hash"]) != req.request_hash
    ):
        raise IdempotencyConflict("this refund_id was already used for another return")
    response: dict[str, Any] = row["response"]
    return response


class ReturnsLedger:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def return_goods(self, req: ReturnRequest) -> tuple[dict[str, Any], str | None]:
        """Record a return (or a cancellation); returns (response, card number or None)."""
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            return await _return_goods(conn, req)


async def _return_goods(
    conn: asyncpg.Connection, req: ReturnRequest
) -> tuple[dict[str, Any], str | None]:
    sale = await conn.fetchrow(
        "SELECT card_id, status, lines, points_redeemed FROM receipts"
        " WHERE store_id = $1 AND transaction_id = $2 FOR UPDATE",
        req.store_id, req.transaction_id,
    )  # fmt: skip
    if sale is None:
        raise NotFound("no committed sale with this transaction_id", code="sale_not_found")
    replayed = await _replay(conn, req)
    if replayed is not None:
        return replayed, None
    if sale["status"] == "cancelled":
        raise Conflict("the sale was cancelled", code="sale_cancelled")
    lines = _sold_lines(sale["lines"])
    returned = await _returned_so_far(conn, req.store_id, req.transaction_id)
    reversal = reverse(lines, sale["points_redeemed"], returned, req.lines)
    settled = None
    if sale["card_id"] is not None:
        settled = await _apply_to_card(conn, sale["card_id"], req, reversal)
    if reversal.complete:
        await _release_promo_codes(conn, req)
    if req.cancel:
        await conn.execute(
            "UPDATE receipts SET status = 'cancelled' WHERE store_id = $1 AND transaction_id = $2",
            req.store_id, req.transaction_id,
        )  # fmt: skip
    # The answer is the stored one, read back: a replay of this refund returns the same
    # bytes (jsonb orders an object's keys its own way).
    response = await conn.fetchval(
        "INSERT INTO refunds (store_id, refund_id, transaction_id, card_id, request_hash,"
        " lines, response, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " RETURNING response",
        req.store_id, req.refund_id, req.transaction_id, sale["card_id"], req.request_hash,
        [{"line_id": line.line_id, "quantity": line.quantity} for line in reversal.lines],
        _response(req, reversal, settled), req.now,
    )  # fmt: skip
    number = None if settled is None else settled["card"]["number"]
    return response, number
