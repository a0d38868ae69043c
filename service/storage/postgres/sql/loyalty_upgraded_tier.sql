-- The tier reached by the card's spend in the window, if it ranks above its current tier
-- (NULL otherwise). p_tiers: [[code, threshold], ...] in ascending order.
CREATE OR REPLACE FUNCTION loyalty_upgraded_tier(
    p_card_id bigint, p_current text, p_window_start timestamptz, p_tiers jsonb
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_spend bigint;
    v_reached text;
    v_reached_rank int := -1;
    v_current_rank int := -1;
    v_tier record;
BEGIN
    SELECT coalesce(sum(amount), 0) INTO v_spend FROM tier_spend
    WHERE card_id = p_card_id AND (p_window_start IS NULL OR occurred_at >= p_window_start);
    FOR v_tier IN
        SELECT (t.value ->> 0) AS code, (t.value ->> 1)::bigint AS threshold, t.ordinality AS rank
        FROM jsonb_array_elements(p_tiers) WITH ORDINALITY AS t
    LOOP
        IF v_spend >= v_tier.threshold THEN
            v_reached := v_tier.code;
            v_reached_rank := v_tier.rank;
        END IF;
        IF v_tier.code = p_current THEN
            v_current_rank := v_tier.rank;
        END IF;
    END LOOP;
    IF v_reached_rank > v_current_rank THEN
        RETURN v_reached;
    END IF;
    RETURN NULL;
END $$;
