"""A card's running figures (migration 0016: cards.points_active / points_pending settled
at cards.points_at, cards.spend since cards.spend_from) stay equal to the sums over every
lot and spend row, whatever writes them and however time moves.

Random sequences over a few cards, each inside a transaction rolled back after it: sales
through the set-based commit and the procedural one (a clock that mostly moves forward,
by minutes to weeks, and sometimes back), points taken back and given back as returns
do, negative and late tier spend, expiry (expiry.expire_batch), grants and debits as
adjustments make them, lots inserted straight into the table. After every step: the
figures equal the full sums at their own time (the ledger check of invariants.py), and
loyalty_balance and loyalty_tier_reached, at times and windows around the clock, equal
the full sums over every lot and row: the definitions the figures replaced.
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from service.local.demo import load_demo
from service.storage.postgres.expiry import expire_batch
from service.storage.postgres.invariants import INVARIANTS
from service.storage.postgres.pool import connect
from tests.conftest import fresh_database

START = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
TIERS = [["base", 0], ["silver", 50_000], ["gold", 200_000]]
KINDS = ("batch", "commit", "take", "give", "spend", "expire", "grant", "debit", "insert")
SEQUENCES = 12
STEPS = 40

_FIGURES = "every card's running figures = the sums over its lots and spend rows"
_FIGURES_CHECK = f"SELECT * FROM ({dict(INVARIANTS)[_FIGURES]}) x WHERE number = $1"

# The balance and the window's spend as they were defined before the figures: every lot,
# every row.
_FULL_BALANCE = """
SELECT (coalesce(sum(l.remaining) FILTER (
            WHERE l.activates_at <= $2 AND (l.expires_at IS NULL OR l.expires_at > $2)), 0)
        - min(c.debt))::bigint,
       coalesce(sum(l.remaining) FILTER (WHERE l.activates_at > $2), 0)::bigint
FROM cards c LEFT JOIN point_lots l ON l.card_id = c.card_id AND l.remaining > 0
WHERE c.card_id = $1
"""
_FULL_SPEND = """
SELECT coalesce(sum(amount), 0)::bigint FROM tier_spend
WHERE card_id = $1 AND ($2::timestamptz IS NULL OR occurred_at >= $2)
"""


def _sale(rng: random.Random, card: str, now: datetime, tx: str, version: int) -> dict[str, Any]:
    subtotal = rng.choice([10_000, 99_900, 250_000])
    redeemed = rng.choice([0, 0, 10, 300])
    activates = now + timedelta(days=rng.choice([0, 14]))
    expires = activates + timedelta(days=rng.choice([5, 365]))
    window = now - timedelta(days=rng.choice([10, 365]))
    occurred = now - timedelta(days=rng.choice([0, 0, 3]))  # a late receipt now and then
    return {
        "now": now.isoformat(), "store_id": "msk-001", "transaction_id": tx,
        "request_hash": hashlib.sha256(tx.encode()).hexdigest(), "calculation_id": None,
        "program_version": version, "card": card, "occurred_at": occurred.isoformat(),
        "subtotal": subtotal, "discount": 0, "points_paid": min(redeemed * 100, subtotal),
        "amount_due": max(subtotal - redeemed * 100, 0), "points_redeemed": redeemed,
        "points_earned": rng.choice([0, 25, 999]), "lines": [], "response": {},
        "activates_at": activates.isoformat(),
        "expires_at": rng.choice([None, expires.isoformat()]),
        "tier_spend": rng.choice([0, subtotal]),
        "tier_window_start": rng.choice([None, window.isoformat()]),
        "tiers": TIERS, "promo_codes": [], "budgets": [], "rule_uses": [],
        "referral_points": 0,
    }  # fmt: skip


async def _step(
    conn: asyncpg.Connection, rng: random.Random, card_id: int, number: str, now: datetime,
    tx: str, version: int,
) -> str:  # fmt: skip
    """One write of the card's lots or spend, as one of the ledger's writers makes it."""
    kind = rng.choice(["batch", *KINDS])
    if kind == "batch":
        await conn.fetch(
            "SELECT * FROM loyalty_commit_many($1::jsonb)", [_sale(rng, number, now, tx, version)]
        )
    elif kind == "commit":
        await conn.fetchval(
            "SELECT loyalty_commit($1::jsonb)", _sale(rng, number, now, tx, version)
        )
    elif kind == "take":  # a return takes earned points back
        await conn.fetchval(
            "SELECT loyalty_take_points($1, $2, $3, 'refund_accrual', 'msk-001', $4, $4)",
            card_id, rng.choice([5, 200]), now, tx,
        )  # fmt: skip
    elif kind == "give":  # a return gives spent points back to their lot
        await conn.execute(
            "UPDATE point_lots SET remaining = remaining + least(points - remaining, $2)"
            " WHERE card_id = $1 AND lot_id = (SELECT min(lot_id) FROM point_lots"
            " WHERE card_id = $1 AND remaining < points)",
            card_id, rng.choice([1, 50]),
        )  # fmt: skip
    elif kind == "spend":  # a return's negative spend, or an adjustment dated long ago
        await conn.execute(
            "INSERT INTO tier_spend (card_id, amount, occurred_at) VALUES ($1, $2, $3)",
            card_id, rng.choice([-5_000, 30_000]), now - timedelta(days=rng.choice([0, 20, 400])),
        )  # fmt: skip
    elif kind == "expire":
        await expire_batch(conn, now, 10)
    elif kind == "grant":
        activates = now + timedelta(days=rng.choice([-20, -1, 0, 3]))
        expires = rng.choice([None, activates + timedelta(days=rng.choice([1, 30]))])
        await conn.fetchval(
            "SELECT loyalty_grant($1, $2, 'adjustment', $3, $4, NULL, NULL)",
            card_id, rng.choice([10, 500]), activates, expires,
        )  # fmt: skip
    elif kind == "debit":  # an adjustment empties a lot
        await conn.execute(
            "UPDATE point_lots SET remaining = 0 WHERE card_id = $1 AND lot_id = (SELECT"
            " max(lot_id) FROM point_lots WHERE card_id = $1 AND remaining > 0)",
            card_id,
        )
    else:  # a fixture's lots, straight into the table, several in one statement
        await conn.execute(
            "INSERT INTO point_lots (card_id, points, remaining, activates_at, expires_at,"
            " source) SELECT $1, 100, 100 - abs(g) * 10, $2::timestamptz + g * interval '1 day',"
            " $2::timestamptz + interval '10 days', 'adjustment' FROM generate_series(-3, 3) g",
            card_id, now,
        )  # fmt: skip
    return kind


async def _assert_exact(
    conn: asyncpg.Connection, card_id: int, number: str, now: datetime, where: str
) -> None:
    assert await conn.fetch(_FIGURES_CHECK, number) == [], where
    for shift in (-40 * 86_400, -1, 0, 1e-6, 2 * 86_400, 20 * 86_400):
        at = now + timedelta(seconds=shift)
        read = await conn.fetchrow("SELECT * FROM loyalty_balance($1, $2)", card_id, at)
        full = await conn.fetchrow(_FULL_BALANCE, card_id, at)
        assert tuple(read) == tuple(full), (where, at)
    for start in (
        None,
        now - timedelta(days=365),
        now - timedelta(days=10),
        now + timedelta(days=1),
    ):
        spend = await conn.fetchval(
            "SELECT spend FROM loyalty_tier_reached($1, NULL, $2, $3, 0)", card_id, start, TIERS
        )
        assert spend == await conn.fetchval(_FULL_SPEND, card_id, start), (where, start)


async def test_the_figures_equal_the_sums_over_every_lot_at_every_step(server_url: str) -> None:
    """In a database of its own: the expiry job expires every card's due lots."""
    async with fresh_database(server_url, "loyalty_figures") as url:
        conn = await connect(url)
        try:
            await load_demo(conn)
            kinds = await _sequences(conn)
        finally:
            await conn.close()
    assert kinds == set(KINDS), kinds


async def _sequences(ledger_db: asyncpg.Connection) -> set[str]:
    version = await ledger_db.fetchval("SELECT max(version) FROM program_versions")
    kinds: set[str] = set()
    for seed in range(SEQUENCES):
        rng = random.Random(seed)
        prefix = f"58{seed:04d}{random.randrange(10**6):06d}"
        transaction = ledger_db.transaction()
        await transaction.start()
        try:
            cards = []
            for k in range(2):
                number = f"{prefix}{k}"
                card_id = await ledger_db.fetchval(
                    "INSERT INTO cards (number, debt) VALUES ($1, $2) RETURNING card_id",
                    number, rng.choice([0, 40]),
                )  # fmt: skip
                cards.append((card_id, number))
            now = START
            for step in range(STEPS):
                now += rng.choice([timedelta(minutes=5), timedelta(days=1), timedelta(days=6),
                                   timedelta(days=30), -timedelta(hours=2)])  # fmt: skip
                card_id, number = rng.choice(cards)
                kind = await _step(
                    ledger_db, rng, card_id, number, now, f"{prefix}-{step}", version
                )
                kinds.add(kind)
                for card_id, number in cards:
                    await _assert_exact(ledger_db, card_id, number, now, f"{seed}/{step} {kind}")
        finally:
            await transaction.rollback()
    return kinds
