-- The tier a card's spend reaches, the one definition of it: ``tier``, the highest tier
-- whose threshold the card's spend since p_window_start (NULL: ever), plus p_more, reaches
-- (NULL below the lowest); ``upgrade``, whether that tier ranks above p_current (or
-- p_current is none of the program's); ``downgrade``, whether it ranks below p_current;
-- ``spend``, that spend (the commits settle the card's running figure with it).
-- p_tiers: [[code, threshold], ...] in ascending order, as the program's tiers.
-- p_more is spend the calling statement writes itself and so cannot read back (the
-- set-based commit adds the sale's own spend there); 0 otherwise.
--
-- Every query that moves a tier reads it here: the commit functions (loyalty_commit,
-- loyalty_commit_many) for the upgrade at the sale that crosses a threshold, the
-- scheduled downgrade (expiry.py). The Python twin, CompiledProgram.tier_for, is held
-- equal to it by tests/integration/test_schema.py.
--
-- The spend is read from the card's running figure (migration 0016): cards.spend, its
-- rows since cards.spend_from, kept exact by the trigger loyalty_spend_figures (or the
-- set-based commit itself), moved to p_window_start by the rows between the two: as the
-- window's start moves forward with time, the rows that dropped out of it since the
-- card's last sale, which settled the figure; not every row of the window (at ~106 rows
-- per card that sum took 0.63 ms of a 2.9 ms batch of 4 sales, docs/performance.md).
--
-- Call it in FROM, as loyalty_balance: a LANGUAGE sql, STABLE set-returning function
-- whose body is one SELECT, inlined by the planner into the calling statement.
CREATE OR REPLACE FUNCTION loyalty_tier_reached(
    p_card_id bigint, p_current text, p_window_start timestamptz, p_tiers jsonb, p_more bigint
) RETURNS TABLE (tier text, upgrade boolean, downgrade boolean, spend bigint)
LANGUAGE sql STABLE AS $$
    SELECT r.code,
           coalesce(r.rank, 0) > coalesce(cur.rank, 0),
           coalesce(coalesce(r.rank, 0) < cur.rank, false),
           s.spend::bigint
    FROM (  -- from lo to hi, the span between spend_from and the window's start
        SELECT coalesce(c.spend, 0) + p_more
               - CASE WHEN w.start >= c.spend_from THEN 1 ELSE -1 END * coalesce((
                     SELECT sum(amount) FROM tier_spend
                     WHERE card_id = p_card_id
                       AND occurred_at >= least(w.start, c.spend_from)
                       AND occurred_at < greatest(w.start, c.spend_from)), 0) AS spend
        FROM (SELECT coalesce(p_window_start, '-infinity') AS start) w
        LEFT JOIN cards c ON c.card_id = p_card_id
        OFFSET 0) s  -- summed once: pulled up, each use of s.spend would sum again
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
