-- loyalty_hold: hold up to p_points of a card for a calculation (SPEC §3.5), under the
-- card's row lock, as every writer of its points: at most what the card may spend now
-- (its balance less what other calculations hold). Returns the points held (0: none, no
-- row), and the card's new ledger version, with which the caller refreshes its cached
-- state so that other tills see the hold. A hold ends when its commit takes it, when
-- the till releases it, or by itself at p_until.
CREATE OR REPLACE FUNCTION loyalty_hold(
    p_card text, p_calculation text, p_store text, p_points bigint, p_now timestamptz,
    p_until timestamptz
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_card_id bigint;
    v_free    bigint;
    v_held    bigint;
    v_version bigint;
BEGIN
    SELECT card_id INTO v_card_id FROM cards WHERE number = p_card AND status = 'active'
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('held', 0);
    END IF;
    SELECT b.balance - h.held INTO v_free
    FROM loyalty_balance(v_card_id, p_now) b, loyalty_held(v_card_id, p_now, p_calculation) h;
    v_held := least(p_points, greatest(v_free, 0));
    IF v_held > 0 THEN
        INSERT INTO point_holds (calculation_id, card_id, store_id, points, created_at,
                                 expires_at)
        VALUES (p_calculation, v_card_id, p_store, v_held, p_now, p_until);
    END IF;
    UPDATE cards SET ledger_version = ledger_version + 1 WHERE card_id = v_card_id
    RETURNING ledger_version INTO v_version;
    RETURN jsonb_build_object('held', v_held, 'free', greatest(v_free, 0),
                              'ledger_version', v_version);
END $$;
