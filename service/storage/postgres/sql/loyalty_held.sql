-- The points of a card that holds keep for other tills at p_at (SPEC §3.5), the one
-- definition of it: holds neither taken by their commit, nor released, nor lapsed;
-- p_except names the calculation whose own hold does not count against itself (its
-- commit, or NULL). What a till may spend is loyalty_balance's balance less this. The
-- Python twin, CardState.held_points, is held equal to it by tests/integration/test_holds.py.
--
-- Call it in FROM, as loyalty_balance (a LANGUAGE sql, STABLE, one-SELECT function is
-- inlined into the calling statement).
CREATE OR REPLACE FUNCTION loyalty_held(p_card_id bigint, p_at timestamptz, p_except text)
RETURNS TABLE (held bigint) LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(points), 0)::bigint FROM point_holds
    WHERE card_id = p_card_id AND taken_at IS NULL AND released_at IS NULL
      AND expires_at > p_at AND calculation_id IS DISTINCT FROM p_except
$$;
