-- Take up to p_points from the card's active lots, those expiring first first; one
-- ledger entry per lot touched. Returns the points taken: fewer than p_points when the
-- active lots do not cover them (a sale checks the balance first, loyalty_balance; a
-- refund owes the rest). The caller holds the card's row lock, as every writer of a
-- card's lots does (commit, refund, expiry, adjustments), so the lots need no row locks
-- of their own (taking them cost a heap write and a WAL record per lot).
CREATE OR REPLACE FUNCTION loyalty_take_points(
    p_card_id bigint, p_points bigint, p_now timestamptz, p_kind text,
    p_store text, p_tx text, p_refund text
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_left bigint := p_points;
    v_take bigint;
    v_lot record;
BEGIN
    FOR v_lot IN
        SELECT lot_id, remaining FROM point_lots
        WHERE card_id = p_card_id AND remaining > 0 AND activates_at <= p_now
          AND (expires_at IS NULL OR expires_at > p_now)
        ORDER BY expires_at NULLS LAST, lot_id
    LOOP
        EXIT WHEN v_left <= 0;
        v_take := least(v_lot.remaining, v_left);
        UPDATE point_lots SET remaining = remaining - v_take
        WHERE card_id = p_card_id AND lot_id = v_lot.lot_id;
        INSERT INTO ledger_entries (card_id, kind, points, lot_id, store_id, transaction_id,
                                    refund_id)
        VALUES (p_card_id, p_kind, -v_take, v_lot.lot_id, p_store, p_tx, p_refund);
        v_left := v_left - v_take;
    END LOOP;
    RETURN p_points - v_left;
END $$;
