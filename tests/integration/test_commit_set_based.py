"""``loyalty_commit_many`` (service/storage/postgres/sql/loyalty_commit_many.sql) writes a batch's
plain card sales set-based; ``loyalty_commit`` writes one sale. Both must record the same
thing, and answer the same (each answer's balance read by ``loyalty_balance``).

Random batches over a handful of cards in every state a sale meets (points active,
pending, expired and owed, a blocked card, tiers about to be reached, receipts already
committed, unknown cards, a card's several sales, a referral's first purchase, promo
codes, campaign budgets and rule use caps) are written both ways, each inside a
transaction that is then rolled back: sale by sale through ``loyalty_commit``, in batch
order, and as one batch. The outcomes and everything written (cards, their running
figures included (settled at the sales' time, or not: an untouched card's are as of its
creation), lots, ledger entries, tier spend, receipts, outbox events, budgets,
rule uses) must be equal, up to the generated ids.
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
TIERS = [["base", 0], ["silver", 50_000], ["gold", 200_000]]
BATCHES = 40
# [rule, amount the sale takes, the budget]: rule b's budget takes one sale of 7, not two.
BUDGETS = [[], [["diff-rule-a", 500, 10**9]], [["diff-rule-a", 1, 10**9], ["diff-rule-b", 7, 10]]]
# [rule, period, max_uses, max_uses_per_card]: two sales of cap a in all, one a day per card.
RULE_USES = [[], [], [["diff-cap-a", "", 2, None]], [["diff-cap-b", "d2026-06-15", None, 1]]]


async def _cards(conn: asyncpg.Connection, rng: random.Random, prefix: str) -> list[str]:
    """Six cards set up at random, and the referrer of the sixth (never sold to)."""
    referrer = f"{prefix}9"
    await conn.execute("INSERT INTO cards (number) VALUES ($1)", referrer)
    numbers = []
    for k in range(6):
        number = f"{prefix}{k}"
        numbers.append(number)
        card_id = await conn.fetchval(
            "INSERT INTO cards (number, status, tier, debt, referred_by) VALUES ($1, $2, $3,"
            " $4, CASE WHEN $5 THEN (SELECT card_id FROM cards WHERE number = $6) END)"
            " RETURNING card_id",
            number,
            "blocked" if k == 4 else "active",
            rng.choice([None, "base", "silver"]),
            rng.choice([0, 0, 30, 5_000]),
            k == 5,
            referrer,
        )
        for _ in range(rng.randint(0, 3)):
            points = rng.choice([10, 100, 1_000])
            activates = NOW + timedelta(days=rng.choice([-30, -1, 7]))
            expires = rng.choice([None, NOW + timedelta(days=rng.choice([-2, 1, 200]))])
            if expires is not None and expires <= activates:
                expires = activates + timedelta(days=1)
            remaining = rng.choice([points, points // 2, 0])
            await conn.execute(
                "INSERT INTO point_lots (card_id, points, remaining, activates_at, expires_at,"
                " source) VALUES ($1, $2, $3, $4, $5, 'adjustment')",
                card_id,
                points,
                remaining,
                activates,
                expires,
            )
        if rng.random() < 0.5:
            await conn.execute(
                "INSERT INTO tier_spend (card_id, amount, occurred_at) VALUES ($1, $2, $3)",
                card_id,
                rng.choice([10_000, 45_000, 150_000]),
                NOW - timedelta(days=rng.choice([3, 400])),
            )
    return numbers


def _sale(
    rng: random.Random, card: str | None, store: str, tx: str, version: int
) -> dict[str, Any]:
    subtotal = rng.choice([10_000, 99_900, 250_000])
    discount = rng.choice([0, subtotal // 10])
    redeemed = rng.choice([0, 0, 10, 300, 5_000])
    points_paid = min(redeemed * 100, subtotal - discount)
    earned = rng.choice([0, 25, 999])
    activates = NOW + timedelta(days=rng.choice([0, 14]))
    return {
        "now": NOW.isoformat(),
        "store_id": store,
        "transaction_id": tx,
        "request_hash": hashlib.sha256(tx.encode() + bytes([rng.randint(0, 1)])).hexdigest(),
        "calculation_id": rng.choice([None, "calc-1"]),
        "program_version": version,
        "card": card,
        "occurred_at": (NOW - timedelta(minutes=1)).isoformat(),
        "subtotal": subtotal,
        "discount": discount,
        "points_paid": points_paid,
        "amount_due": subtotal - discount - points_paid,
        "points_redeemed": redeemed,
        "points_earned": earned,
        "lines": [{"id": "1", "amount": subtotal}],
        "response": {"transaction_id": tx, "status": "committed", "totals": {"x": 1}},
        "activates_at": activates.isoformat(),
        "expires_at": rng.choice([None, (activates + timedelta(days=365)).isoformat()]),
        "tier_spend": rng.choice([0, subtotal - discount]),
        "tier_window_start": rng.choice([None, (NOW - timedelta(days=365)).isoformat()]),
        "tiers": TIERS,
        "promo_codes": ["NO-SUCH-CODE"] if rng.random() < 0.05 else [],
        "budgets": rng.choice(BUDGETS),
        "rule_uses": rng.choice(RULE_USES),
        "referral_points": rng.choice([0, 50]),
    }


async def _batch(
    conn: asyncpg.Connection, rng: random.Random, prefix: str, numbers: list[str], version: int
) -> list[dict[str, Any]]:
    """Sales over the cards, some of them anonymous, unknown, replayed or conflicting;
    in card order as the service sends them (a card's own sales keep their order)."""
    sales = []
    for k in range(rng.randint(1, 10)):
        card = rng.choice([*numbers, *numbers, None, f"{prefix}7"])
        sales.append(_sale(rng, card, rng.choice(["msk-001", "ekb-001"]), f"{prefix}-{k}", version))
    # A sale committed before the batch: sent again (same hash or not) in the batch.
    first = _sale(rng, rng.choice(numbers), "msk-001", f"{prefix}-old", version)
    await conn.fetchval("SELECT loyalty_commit($1::jsonb)", first)
    if rng.random() < 0.5:
        sales.append({**first, "request_hash": rng.choice([first["request_hash"], "00"])})
    return sorted(sales, key=lambda s: s["card"] or "")


_STATE = """
SELECT jsonb_build_object(
  'cards', (SELECT jsonb_agg(jsonb_build_array(number, status, tier, purchase_count, debt,
                                               ledger_version, points_at = $2, points_active,
                                               points_pending, spend_from, spend) ORDER BY number)
            FROM cards WHERE number LIKE $1 || '%'),
  'lots', (SELECT jsonb_agg(x ORDER BY x::text) FROM (
             SELECT jsonb_build_array(c.number, l.points, l.remaining, l.activates_at,
                                      l.expires_at, l.source) AS x
             FROM point_lots l JOIN cards c USING (card_id) WHERE c.number LIKE $1 || '%') t),
  'entries', (SELECT jsonb_agg(x ORDER BY x::text) FROM (
             SELECT jsonb_build_array(c.number, e.kind, e.points, e.store_id, e.transaction_id,
                                      l.points, l.source, l.activates_at) AS x
             FROM ledger_entries e JOIN cards c USING (card_id)
             LEFT JOIN point_lots l ON l.card_id = e.card_id AND l.lot_id = e.lot_id
             WHERE c.number LIKE $1 || '%') t),
  'spend', (SELECT jsonb_agg(x ORDER BY x::text) FROM (
             SELECT jsonb_build_array(c.number, s.amount, s.occurred_at, s.store_id,
                                      s.transaction_id) AS x
             FROM tier_spend s JOIN cards c USING (card_id) WHERE c.number LIKE $1 || '%') t),
  'receipts', (SELECT jsonb_agg(to_jsonb(r) - 'card_id' || jsonb_build_object('card', c.number)
                                ORDER BY r.store_id, r.transaction_id)
               FROM receipts r LEFT JOIN cards c USING (card_id)
               WHERE r.transaction_id LIKE $1 || '%'),
  'outbox', (SELECT jsonb_agg(jsonb_build_array(o.kind, o.payload) ORDER BY o.kind, o.payload::text)
             FROM outbox o JOIN cards c USING (card_id) WHERE c.number LIKE $1 || '%'),
  'budgets', (SELECT jsonb_agg(jsonb_build_array(rule_id, used) ORDER BY rule_id)
              FROM campaign_budgets WHERE rule_id LIKE 'diff-rule-%' AND used > 0),
  'rule_counts', (SELECT jsonb_agg(jsonb_build_array(rule_id, period, uses) ORDER BY rule_id)
                  FROM rule_use_counts WHERE rule_id LIKE 'diff-cap-%' AND uses > 0),
  'rule_uses', (SELECT jsonb_agg(jsonb_build_array(u.rule_id, u.period, c.number, u.budget_used)
                                 ORDER BY u.transaction_id, u.rule_id)
                FROM rule_uses u LEFT JOIN cards c USING (card_id)
                WHERE u.transaction_id LIKE $1 || '%'))
"""


async def _written(
    conn: asyncpg.Connection, prefix: str, seed: int, version: int, by_batch: bool
) -> tuple[list[Any], Any]:
    rng = random.Random(seed)
    transaction = conn.transaction()
    await transaction.start()
    try:
        numbers = await _cards(conn, rng, prefix)
        sales = await _batch(conn, rng, prefix, numbers, version)
        if by_batch:
            rows = await conn.fetch("SELECT * FROM loyalty_commit_many($1::jsonb)", sales)
            outcomes = [row[0] for row in rows]
        else:
            outcomes = [await conn.fetchval("SELECT loyalty_commit($1::jsonb)", s) for s in sales]
        return outcomes, await conn.fetchval(_STATE, prefix, NOW)
    finally:
        await transaction.rollback()


async def test_a_batch_writes_what_its_sales_write_one_by_one(
    ledger_db: asyncpg.Connection,
) -> None:
    version = await ledger_db.fetchval("SELECT max(version) FROM program_versions")
    kinds: set[str] = set()
    for seed in range(BATCHES):
        prefix = f"55{seed:04d}{random.randrange(10**6):06d}"
        alone = await _written(ledger_db, prefix, seed, version, by_batch=False)
        together = await _written(ledger_db, prefix, seed, version, by_batch=True)
        assert together[0] == alone[0], seed
        assert together[1] == alone[1], seed
        kinds.update(outcome["outcome"] for outcome in alone[0])
    # The batches met every outcome a sale can have here.
    assert kinds >= {
        "committed",
        "replay",
        "conflict",
        "card_not_found",
        "card_not_active",
        "limit_reached",
        "insufficient",
        "promo_rejected",
    }, kinds


async def test_two_plain_sales_with_one_receipt_id_fail_the_batch_and_write_nothing(
    ledger_db: asyncpg.Connection,
) -> None:
    """Two cards' sales under one (store, transaction id) pass the checks together (the
    receipt is not there yet); the receipt's key refuses the second, the whole statement
    is undone, and the service then commits the batch's sales one by one."""
    version = await ledger_db.fetchval("SELECT max(version) FROM program_versions")
    rng = random.Random(7)
    prefix = f"56{random.randrange(10**8):08d}"
    for k in range(2):
        await ledger_db.execute("INSERT INTO cards (number) VALUES ($1)", f"{prefix}{k}")
    sales = [_sale(rng, f"{prefix}{k}", "msk-001", f"{prefix}-same", version) for k in range(2)]
    sales = [
        {
            **s,
            "points_redeemed": 0,
            "points_paid": 0,
            "promo_codes": [],
            "budgets": [],
            "rule_uses": [],
            "amount_due": s["subtotal"] - s["discount"],
        }
        for s in sales
    ]
    with pytest.raises(asyncpg.UniqueViolationError):
        await ledger_db.fetch("SELECT * FROM loyalty_commit_many($1::jsonb)", sales)
    written = await ledger_db.fetchval(_STATE, prefix, NOW)
    assert written["receipts"] is None and written["entries"] is None, written
    assert [row[1:6] for row in written["cards"]] == [["active", None, 0, 0, 0]] * 2
