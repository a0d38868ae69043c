-- Credit points as a new lot with its ledger entry (welcome, referral, adjustment...);
-- bumps the card's ledger version. Returns the new lot's id.
CREATE OR REPLACE FUNCTION loyalty_grant(
    p_card_id bigint, p_points bigint, p_kind text, p_activates timestamptz,
    p_expires timestamptz, p_store text, p_tx text
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_lot_id bigint;
BEGIN
    INSERT INTO point_lots (card_id, points, remaining, activates_at, expires_at, source)
    VALUES (p_card_id, p_points, p_points, p_activates, p_expires, p_kind)
    RETURNING lot_id INTO v_lot_id;
    INSERT INTO ledger_entries (card_id, kind, points, lot_id, store_id, transaction_id)
    VALUES (p_card_id, p_kind, p_points, v_lot_id, p_store, p_tx);
    UPDATE cards SET ledger_version = ledger_version + 1 WHERE card_id = p_card_id;
    RETURN v_lot_id;
END $$;
