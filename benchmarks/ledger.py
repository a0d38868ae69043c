"""The ledger alone: what Postgres on this machine can write of /v1/commit's work.

After the service's commit runs (benchmarks/service.py), the last sale it committed is
turned back into the ledger's parameters (its receipt row, its accrual lot, its tier
spend, the program's tiers: what ``service.storage.postgres.ledger.sale_json`` sends), and
``CLIENTS`` connections send that sale again and again for the given seconds, each with
a new transaction id and the next benchmark card, in batches of ``BATCH`` (card order,
one ``loyalty_commit_many`` statement each, as the service's group commit does), with
``synchronous_commit=on``. No HTTP and no Python service in front: the figure is the
ceiling the ledger sets for /v1/commit here, to set beside pgbench -N.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg

from service.storage.postgres.pool import connect

CLIENTS = 4  # the service's 2 workers x 2 batches in flight
BATCH = 4

_LAST_SALE = """
SELECT r.store_id, r.program_version, r.occurred_at, r.subtotal, r.discount, r.points_paid,
       r.amount_due, r.points_redeemed, r.points_earned, r.lines, r.response - 'card' AS response,
       encode(r.request_hash, 'hex') AS request_hash, t.amount AS tier_spend,
       l.activates_at, l.expires_at, v.document -> 'tiers' AS tiers
FROM receipts r
JOIN tier_spend t USING (card_id, store_id, transaction_id)
JOIN ledger_entries e ON e.card_id = r.card_id AND e.store_id = r.store_id
                     AND e.transaction_id = r.transaction_id AND e.kind = 'accrual'
JOIN point_lots l ON l.card_id = e.card_id AND l.lot_id = e.lot_id
JOIN program_versions v ON v.version = r.program_version
WHERE r.points_redeemed > 0
ORDER BY r.committed_at DESC LIMIT 1
"""


async def _template(conn: asyncpg.Connection) -> dict[str, Any]:
    row = await conn.fetchrow(_LAST_SALE)
    if row is None:
        raise RuntimeError("no committed sale with points to replay: run the commits first")
    sale = dict(row)
    tiers = sale.pop("tiers")
    return {
        **sale,
        "occurred_at": sale["occurred_at"].isoformat(),
        "activates_at": sale["activates_at"].isoformat(),
        "expires_at": None if sale["expires_at"] is None else sale["expires_at"].isoformat(),
        "tiers": [[level["code"], level["threshold"]] for level in tiers["levels"]],
        "tier_window_start": None,
        "calculation_id": None,
        "promo_codes": [],
        "budgets": [],
        "referral_points": 0,
    }


async def _client(
    dsn: str, template: dict[str, Any], cards: int, start: int, until: float, run: str
) -> int:
    conn = await connect(dsn)
    sent = 0
    numbers = itertools.count(start)
    try:
        while time.monotonic() < until:
            now = time.time()
            batch = sorted(
                (
                    {
                        **template,
                        "now": _iso(now),
                        "card": f"88{k % cards:011d}",
                        "transaction_id": f"{run}-{k}",
                    }
                    for k in itertools.islice(numbers, BATCH)
                ),
                key=lambda sale: sale["card"],
            )
            rows = await conn.fetch("SELECT * FROM loyalty_commit_many($1::jsonb)", batch)
            if any(row[0]["outcome"] != "committed" for row in rows):
                raise RuntimeError(f"the ledger refused a replayed sale: {rows[0][0]}")
            sent += len(rows)
    finally:
        await conn.close()
    return sent


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


async def _measure(dsn: str, cards: int, seconds: int) -> float:
    conn = await connect(dsn)
    try:
        template = await _template(conn)
    finally:
        await conn.close()
    run = f"ledger-{time.time_ns()}"
    started = time.monotonic()
    until = started + seconds
    counts = await asyncio.gather(
        *(_client(dsn, template, cards, i * 10_000_000, until, run) for i in range(CLIENTS))
    )
    return sum(counts) / (time.monotonic() - started)


def measure_ledger(dsn: str, cards: int, seconds: int) -> float:
    """Sales per second the ledger alone writes (see the module's docstring)."""
    return asyncio.run(_measure(dsn, cards, seconds))
