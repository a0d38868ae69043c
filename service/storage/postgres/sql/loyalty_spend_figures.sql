-- The trigger that keeps a card's running tier spend (cards.spend: its tier_spend rows
-- dated cards.spend_from or later; migration 0016) exact under every new row, a sale's,
-- a return's (negative) or an adjustment's, however late it is dated: a row dated before
-- spend_from is outside the figure. loyalty_tier_reached reads the figure and only the
-- rows between spend_from and the window it is asked about. tier_spend is append-only,
-- so rows are only ever added. Per statement, as loyalty_lot_figures (one write of a
-- card's row for all the rows a statement adds); the set-based commit sets the figure
-- itself (see loyalty_commit_many).
CREATE OR REPLACE FUNCTION loyalty_spend_figures() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE cards c SET spend = c.spend + d.amount
    FROM (SELECT a.card_id, sum(a.amount) AS amount
          FROM spend_added a JOIN cards k ON k.card_id = a.card_id
          WHERE a.occurred_at >= k.spend_from
          GROUP BY a.card_id) d
    WHERE c.card_id = d.card_id AND d.amount <> 0;
    RETURN NULL;
END $$;
