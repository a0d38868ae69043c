"""Scheduled ledger jobs: points and wallets expiry, and tier downgrades.

Expiry: expired points leave the lots with an ``expiration`` entry each; an expired
wallet's money leaves it with an ``expiry`` entry (wallets.expire_wallets).
Spending never depended on this job (expired points are not spendable whether or not
it ran); it makes the ledger say what happened. Batches lock their cards first, in
card order, as commits do, so the job and the tills never deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

from service.rules.document import TierSettings
from service.storage.postgres.wallets import expire_wallets

# Any constant: one expiry run at a time across every worker and pod.
_ADVISORY_KEY = 0x10_7A17


async def expire_batch(conn: asyncpg.Connection, now: datetime, limit: int) -> list[str]:
    """Expire the due lots of up to ``limit`` cards; returns the numbers of those cards."""
    async with conn.transaction():
        card_ids = await conn.fetchval(
            """
            SELECT coalesce(array_agg(card_id ORDER BY card_id), '{}') FROM (
                SELECT DISTINCT card_id FROM point_lots
                WHERE is_open AND expires_at <= $1 LIMIT $2) due
            """,
            now,
            limit,
        )
        if not card_ids:
            return []
        numbers = await conn.fetch(
            "SELECT number FROM cards WHERE card_id = ANY($1) ORDER BY card_id FOR UPDATE",
            card_ids,
        )
        await conn.execute(
            """
            WITH due AS (
                SELECT card_id, lot_id, remaining FROM point_lots
                WHERE card_id = ANY($2) AND is_open AND expires_at <= $1
                FOR UPDATE
            ), emptied AS (
                UPDATE point_lots p SET remaining = 0 FROM due
                WHERE p.card_id = due.card_id AND p.lot_id = due.lot_id
            ), entries AS (
                INSERT INTO ledger_entries (card_id, kind, points, lot_id, reason, created_at)
                SELECT card_id, 'expiration', -remaining, lot_id, 'validity ended', $1 FROM due
            ), events AS (
                INSERT INTO outbox (card_id, kind, payload)
                SELECT card_id, 'expiration',
                       jsonb_build_object('points', sum(remaining), 'at', $1::timestamptz)
                FROM due GROUP BY card_id
            )
            UPDATE cards SET ledger_version = ledger_version + 1 WHERE card_id = ANY($2)
            """,
            now,
            card_ids,
        )
        return [row["number"] for row in numbers]


async def downgrade_tiers(
    pool: asyncpg.Pool, window_start: datetime, levels: Sequence[tuple[str, int]]
) -> list[str]:
    """Move down the cards whose spend in the window no longer reaches their tier.

    ``levels`` are (code, threshold) in ascending order. Upgrades happen at the sale that
    crosses a threshold; downgrades only here, on schedule. Returns the cards moved.
    """
    rows = await pool.fetch(
        """
        WITH moved AS (
            UPDATE cards c SET tier = r.tier, ledger_version = c.ledger_version + 1
            FROM cards o CROSS JOIN LATERAL loyalty_tier_reached(o.card_id, o.tier, $1, $2, 0) r
            WHERE o.tier IS NOT NULL AND r.downgrade
              AND c.card_id = o.card_id AND c.tier = o.tier
            RETURNING c.card_id, c.number, o.tier AS old_tier, r.tier AS new_tier
        ), events AS (
            INSERT INTO outbox (card_id, kind, payload)
            SELECT card_id, 'tier_change',
                   jsonb_build_object('card', number, 'from', old_tier, 'to', new_tier)
            FROM moved WHERE loyalty_event_wanted('tier_change')
        )
        SELECT number FROM moved
        """,
        window_start,
        [list(level) for level in levels],  # jsonb: [[code, threshold], ...]
    )
    return [row["number"] for row in rows]


async def expire_due(pool: asyncpg.Pool, now: datetime, batch: int = 500) -> list[str] | None:
    """Expire everything due at ``now``; None if another worker is already at it."""
    async with pool.acquire() as lock_conn:
        if not await lock_conn.fetchval("SELECT pg_try_advisory_lock($1)", _ADVISORY_KEY):
            return None
        try:
            expired: list[str] = []
            async with pool.acquire() as conn:
                while numbers := await expire_batch(conn, now, batch):
                    expired.extend(numbers)
                await expire_wallets(conn, now, batch)  # no card's cached state moves
            return expired
        finally:
            await lock_conn.execute("SELECT pg_advisory_unlock($1)", _ADVISORY_KEY)


async def run_ledger_jobs(
    pool: asyncpg.Pool, tiers: TierSettings, now: datetime
) -> list[str] | None:
    """Expire points, then move down tiers whose window spend fell. Returns the cards
    touched (their cached state is stale), or None when another worker is at it."""
    numbers = await expire_due(pool, now)
    if numbers is None:
        return None
    if tiers.window_days is not None and tiers.levels:
        levels = [(level.code, level.threshold) for level in tiers.levels]
        numbers += await downgrade_tiers(pool, now - timedelta(days=tiers.window_days), levels)
    return numbers
