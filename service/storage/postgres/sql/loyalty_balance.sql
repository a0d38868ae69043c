-- A card's balance at p_at, the one definition of it: ``balance``, the points the card
-- may spend (its active lots, less the points it owes: below zero while its debt
-- exceeds them), and ``pending``, the points of lots not active yet. An expired lot
-- counts for nothing, whether or not the expiry job has emptied it. No row for an
-- unknown card. The Python twin, CardState.balance / pending_points, is held equal to
-- it by tests/integration/test_schema.py.
--
-- Every query that checks or shows a balance reads it here: the commit functions
-- (loyalty_commit, loyalty_commit_many), the back office's card view and debits
-- (admin_cards.py), the balances report (reports.py), the returns' answer (refunds.py).
--
-- Call it in FROM: ``SELECT b.balance FROM loyalty_balance($1, $2) b`` or
-- ``... CROSS JOIN LATERAL loyalty_balance(c.card_id, $2) b``. A LANGUAGE sql, STABLE,
-- non-STRICT set-returning function whose body is one SELECT is inlined there by the
-- planner: it becomes a subquery of the calling statement, planned (and, in PL/pgSQL,
-- cached) with it, the card's lots read through point_lots_open; there is no call per
-- row. In a select list it is not inlined: a function call per row, planned apart
-- (tests/integration/test_schema.py checks that it stays inlinable).
CREATE OR REPLACE FUNCTION loyalty_balance(p_card_id bigint, p_at timestamptz)
RETURNS TABLE (balance bigint, pending bigint) LANGUAGE sql STABLE AS $$
    SELECT (l.active - c.debt)::bigint, l.pending::bigint
    FROM cards c CROSS JOIN LATERAL (
        SELECT coalesce(sum(remaining) FILTER (
                   WHERE activates_at <= p_at AND (expires_at IS NULL OR expires_at > p_at)),
                   0) AS active,
               coalesce(sum(remaining) FILTER (WHERE activates_at > p_at), 0) AS pending
        FROM point_lots WHERE card_id = c.card_id AND remaining > 0) l
    WHERE c.card_id = p_card_id
$$;
