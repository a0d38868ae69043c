"""The ledger's invariants, each a query returning the rows that break it (none: it holds).

One definition of each, for everything that checks a whole ledger: the test session at
its end (tests/ledger_checks.py), the full-year replay (``make replay``) and the fault
run (``make fault-test``). They read every row: for checks and reports, not the hot path.
"""

from __future__ import annotations

from typing import Any

import asyncpg

INVARIANTS: tuple[tuple[str, str], ...] = (
    ("every card's ledger entries = its lots less its debt", """
        SELECT c.number, coalesce(e.points, 0) AS entries, coalesce(l.remaining, 0) AS lots,
               c.debt
        FROM cards c
        LEFT JOIN (SELECT card_id, sum(points) AS points FROM ledger_entries GROUP BY card_id) e
            USING (card_id)
        LEFT JOIN (SELECT card_id, sum(remaining) AS remaining FROM point_lots GROUP BY card_id) l
            USING (card_id)
        WHERE coalesce(e.points, 0) <> coalesce(l.remaining, 0) - c.debt
    """),
    ("no lot below 0 or above its points", """
        SELECT card_id, lot_id, points, remaining FROM point_lots
        WHERE remaining < 0 OR remaining > points
    """),
    ("each sale's ledger entries: its redemption, one accrual of its points", """
        SELECT r.store_id, r.transaction_id, r.points_redeemed, r.points_earned,
               -coalesce(sum(e.points) FILTER (WHERE e.kind = 'redemption'), 0) AS redeemed,
               coalesce(sum(e.points) FILTER (WHERE e.kind = 'accrual'), 0) AS accrued,
               count(e.*) FILTER (WHERE e.kind = 'accrual') AS accruals
        FROM receipts r LEFT JOIN ledger_entries e ON e.card_id = r.card_id
            AND e.store_id = r.store_id AND e.transaction_id = r.transaction_id
        WHERE r.card_id IS NOT NULL
        GROUP BY r.store_id, r.transaction_id, r.points_redeemed, r.points_earned
        HAVING -coalesce(sum(e.points) FILTER (WHERE e.kind = 'redemption'), 0)
                   <> r.points_redeemed
            OR coalesce(sum(e.points) FILTER (WHERE e.kind = 'accrual'), 0) <> r.points_earned
            OR count(e.*) FILTER (WHERE e.kind = 'accrual') > 1
    """),
    ("returns never give back more points than the sale spent, nor take more than it earned", """
        SELECT r.store_id, r.transaction_id, r.points_redeemed, r.points_earned,
               coalesce(sum(e.points) FILTER (WHERE e.kind LIKE '%redemption'), 0) AS given_back,
               -coalesce(sum(e.points) FILTER (WHERE e.kind LIKE '%accrual'), 0) AS taken_back
        FROM receipts r JOIN ledger_entries e ON e.card_id = r.card_id
            AND e.store_id = r.store_id AND e.transaction_id = r.transaction_id
        WHERE e.kind IN ('refund_redemption', 'cancel_redemption', 'refund_accrual',
                         'cancel_accrual')
        GROUP BY r.store_id, r.transaction_id, r.points_redeemed, r.points_earned
        HAVING coalesce(sum(e.points) FILTER (WHERE e.kind LIKE '%redemption'), 0)
                   > r.points_redeemed
            OR -coalesce(sum(e.points) FILTER (WHERE e.kind LIKE '%accrual'), 0)
                   > r.points_earned
    """),
    ("no line returned beyond the quantity sold", """
        SELECT f.store_id, f.transaction_id, l ->> 'line_id' AS line_id,
               sum((l ->> 'quantity')::numeric) AS returned, min(s.sold) AS sold
        FROM refunds f CROSS JOIN LATERAL jsonb_array_elements(f.lines) AS l
        JOIN receipts r USING (store_id, transaction_id)
        CROSS JOIN LATERAL (
            SELECT (x ->> 'quantity')::numeric AS sold FROM jsonb_array_elements(r.lines) AS x
            WHERE x ->> 'line_id' = l ->> 'line_id') s
        GROUP BY f.store_id, f.transaction_id, l ->> 'line_id'
        HAVING sum((l ->> 'quantity')::numeric) > min(s.sold)
    """),
    ("a sale is cancelled exactly when its cancel is recorded", """
        SELECT r.store_id, r.transaction_id, r.status FROM receipts r
        LEFT JOIN refunds f
            ON f.store_id = r.store_id AND f.refund_id = 'cancel:' || r.transaction_id
        WHERE (r.status = 'cancelled') <> (f.refund_id IS NOT NULL)
    """),
    ("each use count of a capped rule = the uses its sales hold", """
        SELECT c.rule_id, c.period, c.uses, count(u.*) AS held
        FROM rule_use_counts c LEFT JOIN rule_uses u ON u.rule_id = c.rule_id
            AND u.period = c.period AND u.released_at IS NULL
        GROUP BY c.rule_id, c.period, c.uses
        HAVING c.uses <> count(u.*)
    """),
    ("every card's running figures = the sums over its lots and spend rows", """
        SELECT c.number, c.points_at, c.points_active, c.points_pending, c.spend_from,
               c.spend, coalesce(l.active, 0) AS active, coalesce(l.pending, 0) AS pending,
               coalesce(s.spend, 0) AS spent
        FROM cards c
        LEFT JOIN LATERAL (
            SELECT sum(remaining) FILTER (WHERE activates_at <= c.points_at
                       AND (expires_at IS NULL OR expires_at > c.points_at)) AS active,
                   sum(remaining) FILTER (WHERE activates_at > c.points_at) AS pending
            FROM point_lots WHERE card_id = c.card_id) l ON true
        LEFT JOIN LATERAL (
            SELECT sum(amount) AS spend FROM tier_spend
            WHERE card_id = c.card_id AND occurred_at >= c.spend_from) s ON true
        WHERE (c.points_active, c.points_pending, c.spend)
              <> (coalesce(l.active, 0), coalesce(l.pending, 0), coalesce(s.spend, 0))
    """),
    ("no campaign budget used beyond what its sales hold of it", """
        SELECT b.rule_id, b.used, sum(u.budget_used - u.budget_returned) AS held
        FROM campaign_budgets b JOIN rule_uses u USING (rule_id)
        GROUP BY b.rule_id, b.used
        HAVING b.used <> sum(u.budget_used - u.budget_returned)
    """),
    ("every card's stamps on a stamp card = what its sales moved and kept", """
        SELECT s.card_id, s.rule_id, s.have, coalesce(sum(m.added - m.used), 0) AS moved
        FROM card_stamps s LEFT JOIN stamp_moves m ON m.card_id = s.card_id
            AND m.rule_id = s.rule_id AND m.released_at IS NULL
        GROUP BY s.card_id, s.rule_id, s.have
        HAVING s.have <> coalesce(sum(m.added - m.used), 0)
    """),
    ("every wallet's balance = the sum of its entries", """
        SELECT w.number, w.balance, coalesce(sum(e.amount), 0) AS entries
        FROM wallets w LEFT JOIN wallet_entries e USING (number)
        GROUP BY w.number, w.balance
        HAVING w.balance <> coalesce(sum(e.amount), 0)
    """),
    ("only a live wallet holds money", """
        SELECT number, status, balance FROM wallets
        WHERE balance <> 0 AND status NOT IN ('active', 'blocked')
    """),
    ("each sale's wallet payment = what its lines were paid from the wallet", """
        SELECT r.store_id, r.transaction_id, -e.amount AS paid, l.lines_paid
        FROM wallet_entries e
        JOIN receipts r ON r.store_id = e.store_id AND r.transaction_id = e.transaction_id
        CROSS JOIN LATERAL (SELECT sum((x ->> 'wallet_paid')::bigint) AS lines_paid
                            FROM jsonb_array_elements(r.lines) x) l
        WHERE e.kind = 'payment' AND l.lines_paid IS DISTINCT FROM -e.amount
    """),
    ("returns never give a wallet back more than the sale paid from it", """
        SELECT p.store_id, p.transaction_id, -p.amount AS paid, sum(b.amount) AS back
        FROM wallet_entries p JOIN wallet_entries b ON b.kind = 'refund'
            AND b.store_id = p.store_id AND b.transaction_id = p.transaction_id
        WHERE p.kind = 'payment'
        GROUP BY p.store_id, p.transaction_id, p.amount
        HAVING sum(b.amount) > -p.amount
    """),
    ("each sale's reward entries = the points of the rewards it redeemed", """
        SELECT r.store_id, r.transaction_id, r.points,
               -coalesce(sum(e.points), 0) AS taken
        FROM (SELECT store_id, transaction_id, card_id, sum(points) AS points
              FROM reward_redemptions GROUP BY store_id, transaction_id, card_id) r
        LEFT JOIN ledger_entries e ON e.card_id = r.card_id AND e.store_id = r.store_id
            AND e.transaction_id = r.transaction_id AND e.kind = 'reward'
        GROUP BY r.store_id, r.transaction_id, r.points
        HAVING -coalesce(sum(e.points), 0) <> r.points
    """),
    ("returns never give back more points than a sale spent on rewards", """
        SELECT e.store_id, e.transaction_id, sum(e.points) AS given_back,
               (SELECT coalesce(sum(points), 0) FROM reward_redemptions d
                WHERE d.store_id = e.store_id AND d.transaction_id = e.transaction_id) AS spent
        FROM ledger_entries e WHERE e.kind IN ('refund_reward', 'cancel_reward')
        GROUP BY e.store_id, e.transaction_id
        HAVING sum(e.points) > (SELECT coalesce(sum(points), 0) FROM reward_redemptions d
                                WHERE d.store_id = e.store_id
                                  AND d.transaction_id = e.transaction_id)
    """),
    ("a coupon is its issuing sale's card's, used at most once", """
        SELECT p.code, p.card_id, d.card_id AS sold_to, p.uses FROM promo_codes p
        JOIN reward_redemptions d ON p.code = ANY (d.coupons)
        WHERE p.card_id IS DISTINCT FROM d.card_id OR p.uses > 1 OR p.max_uses <> 1
    """),
)  # fmt: skip


async def broken_invariants(conn: asyncpg.Connection) -> dict[str, list[dict[str, Any]]]:
    """Each invariant that does not hold, with the rows that break it."""
    broken: dict[str, list[dict[str, Any]]] = {}
    for name, sql in INVARIANTS:
        rows = await conn.fetch(sql)
        if rows:
            broken[name] = [dict(row) for row in rows]
    return broken
