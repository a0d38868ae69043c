-- The trigger that keeps a card's running point figures (cards.points_active and
-- points_pending, settled as of cards.points_at; migration 0016) exact under every write
-- of a lot: a lot's remaining points count in points_active while the lot is active at
-- points_at, in points_pending while it activates after points_at, and in neither once
-- it has expired by then; a write of lots moves the figures by as much.
-- loyalty_balance reads the figures and the few lots that changed state since
-- points_at, never the card's whole history.
--
-- A trigger rather than code in each writer, so that every writer (refunds, expiry,
-- adjustments, grants, the demo, the benchmark and test fixtures, and any written later)
-- keeps the figures without knowing them. Per statement, over the statement's rows
-- (its transition tables), so that a statement writing many lots (the expiry job, a
-- fixture) rewrites each card row once: per row, the benchmark's fixture (1,000 cards of
-- 200 lots, one INSERT) wrote each card's row 200 times in one transaction, every write
-- walking the row's earlier versions, and took minutes. The set-based commit, which
-- rewrites the card row anyway, sets the figures itself and turns this off for its
-- statement (the triggers' WHEN: ``loyalty.figures`` = 'kept'; see loyalty_commit_many).
-- A write that leaves a card's figures as they were (lots that had expired by
-- points_at) does not touch its row.
CREATE OR REPLACE FUNCTION loyalty_lot_figures() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_card_id      bigint[] := '{}';
    v_points       bigint[] := '{}';
    v_activates_at timestamptz[] := '{}';
    v_expires_at   timestamptz[] := '{}';
BEGIN
    -- The lots as they are now count in, as they were count out.
    IF TG_OP <> 'DELETE' THEN
        SELECT coalesce(array_agg(card_id), '{}'), coalesce(array_agg(remaining), '{}'),
               coalesce(array_agg(activates_at), '{}'), coalesce(array_agg(expires_at), '{}')
        INTO v_card_id, v_points, v_activates_at, v_expires_at
        FROM lots_now;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        SELECT v_card_id || coalesce(array_agg(card_id), '{}'),
               v_points || coalesce(array_agg(-remaining), '{}'),
               v_activates_at || coalesce(array_agg(activates_at), '{}'),
               v_expires_at || coalesce(array_agg(expires_at), '{}')
        INTO v_card_id, v_points, v_activates_at, v_expires_at
        FROM lots_before;
    END IF;
    UPDATE cards c SET points_active = c.points_active + d.active,
                       points_pending = c.points_pending + d.pending
    FROM (SELECT m.card_id,
                 coalesce(sum(m.points) FILTER (
                     WHERE m.activates_at <= k.points_at
                       AND (m.expires_at IS NULL OR m.expires_at > k.points_at)), 0) AS active,
                 coalesce(sum(m.points) FILTER (WHERE m.activates_at > k.points_at), 0)
                     AS pending
          FROM unnest(v_card_id, v_points, v_activates_at, v_expires_at)
               AS m(card_id, points, activates_at, expires_at)
          JOIN cards k ON k.card_id = m.card_id
          GROUP BY m.card_id) d
    WHERE c.card_id = d.card_id AND (d.active <> 0 OR d.pending <> 0);
    RETURN NULL;
END $$;
