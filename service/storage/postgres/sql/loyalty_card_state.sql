-- The card's state as a calculation needs it, in one value: read on a cache miss
-- (service/storage/postgres/cards.py). It returns the lots and the debt; the Python side works
-- out the balance from them (CardState.balance), held equal to loyalty_balance by
-- tests/integration/test_schema.py.
-- PL/pgSQL, not SQL, on purpose: PL/pgSQL caches its plans per session, while a SQL
-- function that the planner cannot inline is planned again on every call (that cost
-- 2.1 ms per commit on Postgres 15 when loyalty_commit returned this state, against
-- 0.2 ms cached).
CREATE OR REPLACE FUNCTION loyalty_card_state(
    p_card_id bigint, p_window_start timestamptz, p_day_start timestamptz
) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT jsonb_build_object(
        'number', c.number, 'status', c.status, 'tier', c.tier,
        'personal_discount_bp', c.personal_discount_bp, 'purchase_count', c.purchase_count,
        'ledger_version', c.ledger_version, 'debt', c.debt, 'customer_id', c.customer_id,
        'birthday', cu.birthday, 'segments', coalesce(cu.segments, '{}'),
        'tier_spend', (SELECT coalesce(sum(t.amount), 0) FROM tier_spend t
                        WHERE t.card_id = c.card_id
                          AND (p_window_start IS NULL OR t.occurred_at >= p_window_start)),
        'earned_today', (SELECT coalesce(sum(l.points), 0) FROM ledger_entries l
                          WHERE l.card_id = c.card_id AND l.kind = 'accrual'
                            AND l.created_at >= p_day_start),
        'lots', (SELECT coalesce(jsonb_agg(jsonb_build_array(p.lot_id, p.remaining,
                                                             p.activates_at, p.expires_at)
                                           ORDER BY p.expires_at NULLS LAST, p.lot_id), '[]')
                   FROM point_lots p WHERE p.card_id = c.card_id AND p.is_open),
        'promo_uses', (SELECT coalesce(jsonb_object_agg(u.code, u.n), '{}')
                         FROM (SELECT code, count(*) AS n FROM promo_code_uses
                                WHERE card_id = c.card_id AND released_at IS NULL
                                GROUP BY code) u),
        -- Its uses of capped rules, by limits.use_key: for good, and in recent periods.
        'rule_uses', (SELECT coalesce(jsonb_object_agg(
                          CASE WHEN r.period = '' THEN r.rule_id
                               ELSE r.rule_id || ' ' || r.period END, r.n), '{}')
                        FROM (SELECT rule_id, period, count(*) AS n FROM rule_uses
                               WHERE card_id = c.card_id AND period IS NOT NULL
                                 AND released_at IS NULL
                                 AND (period = '' OR used_at >= p_day_start - interval '32 days')
                               GROUP BY rule_id, period) r),
        -- Its stamp cards' progress, by rule (migration 0019).
        'stamps', (SELECT coalesce(jsonb_object_agg(s.rule_id, s.have), '{}')
                     FROM card_stamps s WHERE s.card_id = c.card_id),
        -- Points held for calculations (loyalty_held): [calculation, points, until].
        'holds', (SELECT coalesce(jsonb_agg(jsonb_build_array(h.calculation_id, h.points,
                                                              h.expires_at)), '[]')
                    FROM point_holds h
                   WHERE h.card_id = c.card_id AND h.taken_at IS NULL
                     AND h.released_at IS NULL AND h.expires_at > now()))
    FROM cards c LEFT JOIN customers cu USING (customer_id)
    WHERE c.card_id = p_card_id);
END $$;
