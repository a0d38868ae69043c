-- A card's balance at p_at, the one definition of it: ``balance``, the points the card
-- may spend (its active lots, less the points it owes: below zero while its debt
-- exceeds them), and ``pending``, the points of lots not active yet. An expired lot
-- counts for nothing, whether or not the expiry job has emptied it. No row for an
-- unknown card. The Python twin, CardState.balance / pending_points, is held equal to
-- it by tests/integration/test_schema.py.
--
-- Read from the card's running figures (migration 0016), not from all its open lots:
-- cards.points_active and points_pending are the remaining points of its lots active,
-- and not active yet, at cards.points_at, kept exact by every write of a lot (the
-- trigger loyalty_lot_figures, or the set-based commit itself). The balance at p_at is
-- those figures moved from points_at to p_at by the lots whose state changed in
-- between, and only those: lots that activated in that span (through the index
-- point_lots_activation) and lots active at its start that expired in it (through
-- point_lots_open). Every commit settles the figures at its own time (it rewrites the
-- card row anyway), so a commit reads the lots that changed state since the card's last
-- sale, mostly none, whatever the card's history: reading them all, twice, the set-based
-- commit ran at 33-34% of its 1-lot rate at 200 open lots per card; now at 90-109%
-- (the ledger alone, docs/performance.md "Issue 23"). A time before points_at works
-- the same way backwards.
-- tests/integration/test_card_figures.py holds the figures equal to the sum over every
-- lot under random sales, returns, expiry and adjustments, and the ledger checks
-- (invariants.py) hold them so on every database the tests leave.
--
-- Every query that checks or shows a balance reads it here: the commit functions
-- (loyalty_commit, loyalty_commit_many), the back office's card view and debits
-- (admin_cards.py), the balances report (reports.py), the returns' answer (refunds.py).
--
-- Call it in FROM: ``SELECT b.balance FROM loyalty_balance($1, $2) b`` or
-- ``... CROSS JOIN LATERAL loyalty_balance(c.card_id, $2) b``. A LANGUAGE sql, STABLE,
-- non-STRICT set-returning function whose body is one SELECT is inlined there by the
-- planner: it becomes a subquery of the calling statement, planned (and, in PL/pgSQL,
-- cached) with it, the card's lots read through the indexes; there is no call per row.
-- In a select list it is not inlined: a function call per row, planned apart
-- (tests/integration/test_schema.py checks that it stays inlinable).
CREATE OR REPLACE FUNCTION loyalty_balance(p_card_id bigint, p_at timestamptz)
RETURNS TABLE (balance bigint, pending bigint) LANGUAGE sql STABLE AS $$
    -- From lo to hi, the span between points_at and p_at; way: +1 forwards, -1 back.
    SELECT (c.points_active + s.way * (a.activated - e.expired) - c.debt)::bigint,
           (c.points_pending - s.way * a.moved)::bigint
    FROM cards c
    CROSS JOIN LATERAL (
        SELECT CASE WHEN p_at >= c.points_at THEN 1 ELSE -1 END AS way,
               least(p_at, c.points_at) AS lo, greatest(p_at, c.points_at) AS hi) s
    CROSS JOIN LATERAL (  -- pending at lo, not at hi: active at hi unless expired by then
        SELECT coalesce(sum(remaining), 0) AS moved,
               coalesce(sum(remaining) FILTER (WHERE expires_at IS NULL OR expires_at > s.hi),
                        0) AS activated
        FROM point_lots
        WHERE card_id = c.card_id AND is_open
          AND activates_at > s.lo AND activates_at <= s.hi) a
    CROSS JOIN LATERAL (  -- active at lo, expired by hi
        SELECT coalesce(sum(remaining), 0) AS expired
        FROM point_lots
        WHERE card_id = c.card_id AND is_open
          AND expires_at > s.lo AND expires_at <= s.hi AND activates_at <= s.lo) e
    WHERE c.card_id = p_card_id
$$;
