-- The tier a card's spend reaches, the one definition of it: ``tier``, the highest tier
-- whose threshold the card's spend since p_window_start (NULL: ever), plus p_more, reaches
-- (NULL below the lowest); ``upgrade``, whether that tier ranks above p_current (or
-- p_current is none of the program's); ``downgrade``, whether it ranks below p_current.
-- p_tiers: [[code, threshold], ...] in ascending order, as the program's tiers.
-- p_more is spend the calling statement writes itself and so cannot read back (the
-- set-based commit adds the sale's own spend there); 0 otherwise.
--
-- Every query that moves a tier reads it here: the commit functions (loyalty_commit,
-- loyalty_commit_many) for the upgrade at the sale that crosses a threshold, the
-- scheduled downgrade (expiry.py). The Python twin, CompiledProgram.tier_for, is held
-- equal to it by tests/integration/test_schema.py.
--
-- Call it in FROM, as loyalty_balance: a LANGUAGE sql, STABLE set-returning function
-- whose body is one SELECT, inlined by the planner into the calling statement.
CREATE OR REPLACE FUNCTION loyalty_tier_reached(
    p_card_id bigint, p_current text, p_window_start timestamptz, p_tiers jsonb, p_more bigint
) RETURNS TABLE (tier text, upgrade boolean, downgrade boolean) LANGUAGE sql STABLE AS $$
    SELECT r.code,
           coalesce(r.rank, 0) > coalesce(cur.rank, 0),
           coalesce(coalesce(r.rank, 0) < cur.rank, false)
    FROM (SELECT coalesce(sum(amount), 0) + p_more AS spend FROM tier_spend
          WHERE card_id = p_card_id
            AND (p_window_start IS NULL OR occurred_at >= p_window_start)) s
    LEFT JOIN LATERAL (
        SELECT t.value ->> 0 AS code, t.rank
        FROM jsonb_array_elements(p_tiers) WITH ORDINALITY AS t(value, rank)
        WHERE s.spend >= (t.value ->> 1)::bigint
        ORDER BY t.rank DESC LIMIT 1) r ON true
    LEFT JOIN LATERAL (
        SELECT max(t.rank) AS rank
        FROM jsonb_array_elements(p_tiers) WITH ORDINALITY AS t(value, rank)
        WHERE t.value ->> 0 = p_current) cur ON true
$$;
