-- Take up to p_points from the card's active lots, those expiring first first (the lots
-- loyalty_lots_to_take names); one ledger entry per lot touched. Returns the points
-- taken: fewer than p_points when the active lots do not cover them (a sale checks the
-- balance first, loyalty_balance; a refund owes the rest). The caller holds the card's row lock, as every writer of a
-- card's lots does (commit, refund, expiry, adjustments), so the lots need no row locks
-- of their own (taking them cost a heap write and a WAL record per lot).
CREATE OR REPLACE FUNCTION loyalty_take_points(
    p_card_id bigint, p_points bigint, p_now timestamptz, p_kind text,
    p_store text, p_tx text, p_refund text
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_taken bigint := 0;
    v_lot   record;
BEGIN
    FOR v_lot IN SELECT t.lot_id, t.take FROM loyalty_lots_to_take(p_card_id, p_points, p_now) t
    LOOP
        UPDATE point_lots SET remaining = remaining - v_lot.take
        WHERE card_id = p_card_id AND lot_id = v_lot.lot_id;
        INSERT INTO ledger_entries (card_id, kind, points, lot_id, store_id, transaction_id,
                                    refund_id)
        VALUES (p_card_id, p_kind, -v_lot.take, v_lot.lot_id, p_store, p_tx, p_refund);
        v_taken := v_taken + v_lot.take;
    END LOOP;
    RETURN v_taken;
END $$;
