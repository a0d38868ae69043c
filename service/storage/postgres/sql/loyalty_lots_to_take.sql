-- The lots a redemption of p_points takes at p_now, the one definition of it: the
-- card's active lots, those expiring first first (then the oldest), each for as much as
-- it holds until p_points are covered; fewer points in all when the active lots do not
-- cover them. Read-only: loyalty_take_points writes what it returns, and the set-based
-- commit (loyalty_commit_many) writes it for its sales in one statement.
--
-- A loop that stops at the last lot it needs, rather than one query that orders and sums
-- every open lot of the card: the lots come in expiry order from the index
-- point_lots_open, so a sale reads the few lots it spends from, whatever the card's
-- history (the set-based commit summed every open lot before, about 0.5 ms of a 2.9 ms
-- batch of 4 sales at ~106 open lots per card, docs/performance.md).
CREATE OR REPLACE FUNCTION loyalty_lots_to_take(
    p_card_id bigint, p_points bigint, p_now timestamptz
) RETURNS TABLE (lot_id bigint, take bigint) LANGUAGE plpgsql STABLE
-- What the planner assumes a call returns (1,000 unless told): a redemption takes one or
-- two lots. With 1,000 the set-based commit's generic plan updated the taken lots by a
-- hash join over a sequential scan of the whole point_lots table, every batch: 8.4 of a
-- batch's ~8 ms of Postgres CPU at 53,000 lots, growing with the ledger (issue 21,
-- docs/performance.md); with 2, by the primary key.
ROWS 2 AS $$
DECLARE
    v_left bigint := p_points;
    -- A declared cursor is planned for its first rows (PL/pgSQL's cursor options; a FOR
    -- over a plain query is planned for all of them): the ordered scan of
    -- point_lots_open (card_id, expires_at, lot_id), which stops early. Over a plain
    -- query the generic plan read every open lot through point_lots_activation and
    -- sorted them: 0.80 ms a call at 200 open lots against 0.43 at 1; as here, 0.37-0.45
    -- at either (one connection, 500 calls, a busy machine).
    v_lots CURSOR FOR
        SELECT l.lot_id, l.remaining FROM point_lots l
        WHERE l.card_id = p_card_id AND l.is_open AND l.activates_at <= p_now
          AND (l.expires_at IS NULL OR l.expires_at > p_now)
        ORDER BY l.expires_at NULLS LAST, l.lot_id;
BEGIN
    FOR v_lot IN v_lots
    LOOP
        EXIT WHEN v_left <= 0;
        lot_id := v_lot.lot_id;
        take := least(v_lot.remaining, v_left);
        RETURN NEXT;
        v_left := v_left - take;
    END LOOP;
END $$;
