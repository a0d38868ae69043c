"""The ledger's own committed receipts of a period for a simulation (SPEC §10.1):
``loyalty simulate --from-ledger`` and the API's simulation job read them here, then
``service.simulation.receipts.from_ledger`` turns them into columns; the analytics
(SPEC §10.3) read the figures each sale recorded beside them. Read-only."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import numpy as np
import numpy.typing as npt

from service.domain.receipt import StoreInfo
from service.simulation import _state
from service.simulation.receipts import ReceiptSet, from_ledger

_SALES = """
SELECT r.store_id, r.transaction_id, r.occurred_at, c.number AS card, r.points_redeemed,
       r.lines, r.discount, r.points_earned, r.points_paid, r.channel, r.payment_method
FROM receipts r LEFT JOIN cards c ON c.card_id = r.card_id
WHERE r.occurred_at >= $1 AND r.occurred_at < $2
ORDER BY r.occurred_at, r.store_id, r.transaction_id
"""

# The returns of those sales (a cancellation is one: of all that was left), each placed in
# the period at the time of the latest sale of its card that the ledger had committed
# before it (``placed_at``): the return comes after the sales the ledger had taken by then
# and before the others, as it did. For a ledger that takes each sale as it happens this
# is about the return's own time; for one sent the period late (make replay) it is the
# card's sale just before the return in the ledger's own order. Returns placed after the
# period's end are left out.
_REFUNDS = """
SELECT * FROM (
    SELECT f.store_id, f.transaction_id, f.refund_id, f.lines, f.created_at,
           greatest(r.occurred_at, (SELECT max(o.occurred_at) FROM receipts o
                                    WHERE o.card_id = r.card_id
                                      AND o.committed_at <= f.created_at)) AS placed_at
    FROM refunds f JOIN receipts r USING (store_id, transaction_id)
    WHERE r.occurred_at >= $1 AND r.occurred_at < $2
) placed
WHERE placed_at < $2
ORDER BY created_at, store_id, refund_id
"""

_STORES = "SELECT store_id, region, timezone FROM stores"


async def ledger_receipts(conn: asyncpg.Connection, since: datetime, until: datetime) -> ReceiptSet:
    """The sales that happened in ``[since, until)`` and their returns placed before
    ``until`` (``_REFUNDS``), as the simulation's receipts."""
    receipts, _ = await ledger_period(conn, since, until)
    return receipts


async def ledger_period(
    conn: asyncpg.Connection, since: datetime, until: datetime
) -> tuple[ReceiptSet, npt.NDArray[np.int64]]:
    """``ledger_receipts``, and beside them what each sale recorded: a row per receipt,
    in the set's order, shaped as a simulation's (``_state.P_*``: discount, points earned,
    redeemed and their kopecks; the tier and touched columns left 0). One snapshot."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        sales = await conn.fetch(_SALES, since, until)
        refunds = await conn.fetch(_REFUNDS, since, until)
        store_rows = await conn.fetch(_STORES)
    stores = {row["store_id"]: StoreInfo(row["store_id"], row["region"], row["timezone"])
              for row in store_rows}  # fmt: skip
    receipts = from_ledger([dict(r) for r in sales], [dict(r) for r in refunds], stores)
    # from_ledger keeps the sales' order (time order already: its sort is stable)
    recorded = np.zeros((len(sales), _state.RECEIPT_COLUMNS), dtype=np.int64)
    for column, name in (
        (_state.P_DISCOUNT, "discount"),
        (_state.P_EARNED, "points_earned"),
        (_state.P_REDEEMED, "points_redeemed"),
        (_state.P_PAID, "points_paid"),
    ):
        recorded[:, column] = [row[name] for row in sales]
    return receipts, recorded
