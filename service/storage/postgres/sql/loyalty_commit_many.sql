-- loyalty_commit_many: a batch of sales in one statement, one outcome each, in the
-- order given. The caller sends sales of cards in card-number order, so that two batches
-- lock cards in the same order and cannot deadlock on them. Each call is one
-- autocommitted statement: one round trip and one WAL flush for the whole batch, all of
-- it or none of it.
--
-- Every card of the batch is locked first, in card-number order, then the campaign
-- budgets and rule use counts its sales take, in key order. The batch's plain card
-- sales (a card that exists and appears once in the batch, no promo code, no referral to
-- grant, no budget or use cap to reserve, no hold or allowance to take, no wallet to
-- pay from, no reward to redeem, no stamp card to move) are then decided and written together, set-based: one INSERT or UPDATE per
-- table for all of them (a statement per sale and table, as loyalty_commit runs them,
-- pays Postgres's per-statement costs each time: executor start-up, CHECK expressions,
-- foreign-key trigger queues; over a third of Postgres's samples under the commit
-- benchmark). A refused sale still writes nothing: every write reads only the sales
-- decided ``committed``. Their receipts are written by the same statement, each answer
-- showing the card as its sale left it: the figures the card's update returns, settled at
-- the sale's time (until session 12 a second statement read them again through
-- loyalty_balance: a statement's fixed cost per batch and the card's rows read twice).
-- The other sales then go through loyalty_commit one by one, in batch order. Outcomes
-- come back in the order of the batch.
--
-- Balances are loyalty_balance's, as in loyalty_commit: read before the writes (the check,
-- and the card's running figures, which the statement settles at the sale's time with
-- its own writes added: the lots it takes, its accrual, its tier spend); the answer's
-- balance is those settled figures, which is what loyalty_balance reads at that time.
-- The read takes the card's figures and the lots that changed state since its last sale,
-- not its whole history (migration 0016).
--
-- The set-based statements do what loyalty_commit does for such a sale, with the same
-- outcomes and the same rows (tests/integration/test_commit_set_based.py holds the two
-- equal on random batches). One difference in detail, not visible to a caller: the tier
-- a sale reaches (loyalty_tier_reached) is worked out from the spend read before the
-- writes plus the sale's own spend.
CREATE OR REPLACE FUNCTION loyalty_commit_many(p jsonb) RETURNS SETOF jsonb
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_plain     int[];
    v_done      jsonb;
    v_sale      record;
    v_caps      boolean;
BEGIN
    -- The cards of the whole batch, locked in card-number order (as the caller sorts
    -- the sales): batches lock cards in the same order, whichever path a sale takes.
    PERFORM 1 FROM cards
    WHERE number = ANY (ARRAY(SELECT s ->> 'card' FROM jsonb_array_elements(p) AS s))
    ORDER BY number FOR UPDATE;

    -- Then the budgets and the use counts any sale of the batch takes, made if new and
    -- locked in key order, so that batches wait for each other here in one order too
    -- (loyalty_commit checks and moves them under these locks). Most batches take none:
    -- one look at the batch keeps the four statements out of them (each statement of a
    -- function costs its executor start-up, whether or not it finds a row).
    SELECT coalesce(bool_or(jsonb_array_length(coalesce(s -> 'budgets', '[]')) > 0
                            OR jsonb_array_length(coalesce(s -> 'rule_uses', '[]')) > 0), false)
    INTO v_caps FROM jsonb_array_elements(p) AS s;
    IF v_caps THEN
        INSERT INTO campaign_budgets (rule_id, used)
        SELECT DISTINCT b ->> 0, 0::bigint
        FROM jsonb_array_elements(p) AS s, jsonb_array_elements(coalesce(s -> 'budgets', '[]')) AS b
        ORDER BY 1 ON CONFLICT (rule_id) DO NOTHING;
        PERFORM 1 FROM campaign_budgets
        WHERE rule_id IN (SELECT b ->> 0 FROM jsonb_array_elements(p) AS s,
                          jsonb_array_elements(coalesce(s -> 'budgets', '[]')) AS b)
        ORDER BY rule_id FOR UPDATE;
        INSERT INTO rule_use_counts (rule_id, period)
        SELECT DISTINCT u ->> 0, u ->> 1
        FROM jsonb_array_elements(p) AS s, jsonb_array_elements(coalesce(s -> 'rule_uses', '[]')) AS u
        WHERE u ->> 2 IS NOT NULL
        ORDER BY 1, 2 ON CONFLICT (rule_id, period) DO NOTHING;
        PERFORM 1 FROM rule_use_counts
        WHERE (rule_id, period) IN (SELECT u ->> 0, u ->> 1 FROM jsonb_array_elements(p) AS s,
                                    jsonb_array_elements(coalesce(s -> 'rule_uses', '[]')) AS u
                                    WHERE u ->> 2 IS NOT NULL)
        ORDER BY rule_id, period FOR UPDATE;
    END IF;

    SELECT coalesce(array_agg(e.ord), '{}') INTO v_plain
    FROM (SELECT s, ord, count(*) OVER (PARTITION BY s ->> 'card') AS sales
          FROM jsonb_array_elements(p) WITH ORDINALITY AS t(s, ord)) e
    JOIN cards c ON c.number = e.s ->> 'card'
    WHERE e.sales = 1
      AND jsonb_array_length(coalesce(e.s -> 'promo_codes', '[]')) = 0
      AND jsonb_array_length(coalesce(e.s -> 'budgets', '[]')) = 0
      AND jsonb_array_length(coalesce(e.s -> 'rule_uses', '[]')) = 0
      AND NOT coalesce((e.s ->> 'held')::boolean, false) AND e.s ->> 'allowance' IS NULL
      AND NOT e.s ? 'wallet' AND NOT e.s ? 'rewards' AND NOT e.s ? 'stamps'
      AND NOT (c.referred_by IS NOT NULL AND c.purchase_count = 0 AND c.status = 'active'
               AND coalesce((e.s ->> 'referral_points')::bigint, 0) > 0);

    -- The plain sales, decided and written but for their receipts. Each card's rows are
    -- looked up LATERAL (... OFFSET 0, or inlined loyalty_balance), so that the plan reads
    -- them by index whatever number of sales it assumes; and the function keeps one
    -- generic plan (SET above): planning this statement anew costs about a millisecond,
    -- more than running it for a few sales.
    IF cardinality(v_plain) > 0 THEN
        -- The statement sets the cards' running figures itself (in ``bumped``), so the
        -- triggers that keep them under other writers (loyalty_lot_figures,
        -- loyalty_spend_figures) stay off for it: they would write each card row again
        -- for every lot and spend row it writes (migration 0016).
        PERFORM set_config('loyalty.figures', 'kept', true);
        WITH sale AS (
            SELECT e.ord, e.s, c.card_id, c.number, c.status, c.tier, c.debt,
                   (e.s ->> 'now')::timestamptz AS now,
                   e.s ->> 'store_id' AS store,
                   e.s ->> 'transaction_id' AS tx,
                   decode(e.s ->> 'request_hash', 'hex') AS hash,
                   (e.s ->> 'points_redeemed')::bigint AS redeem,
                   (e.s ->> 'points_earned')::bigint AS earned,
                   (e.s ->> 'tier_spend')::bigint AS spend,
                   (e.s ->> 'occurred_at')::timestamptz AS occurred_at,
                   (e.s ->> 'activates_at')::timestamptz AS activates_at,
                   (e.s ->> 'expires_at')::timestamptz AS expires_at,
                   (e.s ->> 'tier_window_start')::timestamptz AS window_start
            FROM jsonb_array_elements(p) WITH ORDINALITY AS e(s, ord)
            CROSS JOIN LATERAL (SELECT * FROM cards WHERE number = e.s ->> 'card' OFFSET 0) c
            WHERE e.ord = ANY (v_plain)
        ), decided AS (  -- loyalty_commit's checks, in its order
            SELECT s.*, b.balance - b.held AS balance, b.balance + s.debt AS points_active,
                   b.pending AS points_pending, r.response AS stored,
                   CASE WHEN s.earned > 0 THEN least(s.debt, s.earned) ELSE 0 END AS repay,
                   CASE
                       WHEN r.found THEN
                           CASE WHEN r.request_hash = s.hash THEN 'replay' ELSE 'conflict' END
                       WHEN s.status <> 'active' AND (s.redeem > 0 OR s.earned > 0)
                           THEN 'card_not_active'
                       WHEN s.redeem > 0 AND b.balance < s.redeem THEN 'insufficient'
                       ELSE 'committed'
                   END AS outcome
            FROM sale s
            LEFT JOIN LATERAL (  -- others' holds count against a sale that redeems
                SELECT lb.balance, lb.pending, lh.held
                FROM loyalty_balance(s.card_id, s.now) lb,
                     loyalty_held(s.card_id, s.now, s.s ->> 'calculation_id') lh
                OFFSET 0) b ON true
            LEFT JOIN LATERAL (
                SELECT true AS found, request_hash,
                       loyalty_receipt_answer(lines, response) AS response FROM receipts
                WHERE store_id = s.store AND transaction_id = s.tx OFFSET 0) r ON true
        ), ok AS (
            SELECT * FROM decided WHERE outcome = 'committed'
        ), taken AS (  -- from the active lots, those expiring first first
            SELECT o.ord, o.card_id, t.lot_id, t.take, t.n
            FROM ok o CROSS JOIN LATERAL loyalty_lots_to_take(o.card_id, o.redeem, o.now)
                WITH ORDINALITY AS t(lot_id, take, n)
            WHERE o.redeem > 0
        ), took AS (
            SELECT ord, sum(take) AS points FROM taken GROUP BY ord
        ), spent AS (
            UPDATE point_lots l SET remaining = l.remaining - t.take
            FROM taken t WHERE l.card_id = t.card_id AND l.lot_id = t.lot_id
        ), accrued AS (  -- points owed from an earlier refund are repaid first
            INSERT INTO point_lots (card_id, points, remaining, activates_at, expires_at,
                                    source)
            SELECT card_id, earned - repay, earned - repay, activates_at, expires_at, 'accrual'
            FROM ok WHERE earned > repay ORDER BY ord
            RETURNING card_id, lot_id
        ), entries AS (
            INSERT INTO ledger_entries (card_id, kind, points, lot_id, store_id, transaction_id)
            SELECT card_id, kind, points, lot_id, store, tx FROM (
                SELECT o.ord, t.n, o.card_id, 'redemption' AS kind, -t.take AS points,
                       t.lot_id, o.store, o.tx
                FROM ok o JOIN taken t USING (ord)
                UNION ALL
                SELECT o.ord, NULL, o.card_id, 'accrual', o.earned, a.lot_id, o.store, o.tx
                FROM ok o LEFT JOIN accrued a USING (card_id) WHERE o.earned > 0
            ) x ORDER BY ord, n NULLS LAST  -- a sale's redemptions, then its accrual
        ), spends AS (
            INSERT INTO tier_spend (card_id, amount, occurred_at, store_id, transaction_id)
            SELECT card_id, spend, occurred_at, store, tx FROM ok WHERE spend <> 0 ORDER BY ord
        ), upgraded AS (  -- the spend in the window, this sale's included
            SELECT o.ord, CASE WHEN r.upgrade THEN r.tier END AS new_tier, r.spend
            FROM ok o CROSS JOIN LATERAL loyalty_tier_reached(
                o.card_id, o.tier, o.window_start, o.s -> 'tiers',
                CASE WHEN o.window_start IS NULL OR o.occurred_at >= o.window_start
                     THEN o.spend ELSE 0 END) r
        ), bumped AS (  -- the running figures settled at the sale, its writes included
            UPDATE cards c SET purchase_count = c.purchase_count + 1,
                               ledger_version = c.ledger_version + 1,
                               debt = c.debt - o.repay,
                               tier = coalesce(u.new_tier, c.tier),
                               points_at = o.now,
                               points_active = o.points_active - coalesce(t.points, 0)
                                   + CASE WHEN o.earned > o.repay AND o.activates_at <= o.now
                                               AND (o.expires_at IS NULL OR o.expires_at > o.now)
                                          THEN o.earned - o.repay ELSE 0 END,
                               points_pending = o.points_pending
                                   + CASE WHEN o.earned > o.repay AND o.activates_at > o.now
                                          THEN o.earned - o.repay ELSE 0 END,
                               spend_from = coalesce(o.window_start, '-infinity'),
                               spend = u.spend
            FROM ok o JOIN upgraded u USING (ord) LEFT JOIN took t USING (ord)
            WHERE c.card_id = o.card_id
            -- the card as the sale leaves it: its figures settled at the sale's time, so
            -- loyalty_balance at that time is the figures themselves
            RETURNING o.ord, c.ledger_version, c.tier, c.points_active - c.debt AS balance,
                      c.points_pending AS pending
        ), answered AS (
            SELECT o.ord, o.s, b.ledger_version,
                   (o.s -> 'response') || jsonb_build_object('card', jsonb_build_object(
                       'number', o.number, 'status', o.status, 'tier', b.tier,
                       'balance', b.balance, 'pending', b.pending)) AS response
            FROM ok o JOIN bumped b USING (ord)
        ), written AS (
            INSERT INTO receipts (store_id, transaction_id, card_id, calculation_id,
                                  program_version, occurred_at, committed_at, request_hash,
                                  subtotal, discount, points_redeemed, points_paid, amount_due,
                                  points_earned, lines, response, channel, payment_method)
            SELECT a.s ->> 'store_id', a.s ->> 'transaction_id', o.card_id,
                   a.s ->> 'calculation_id', (a.s ->> 'program_version')::int,
                   o.occurred_at, o.now, o.hash, (a.s ->> 'subtotal')::bigint,
                   (a.s ->> 'discount')::bigint, o.redeem, (a.s ->> 'points_paid')::bigint,
                   (a.s ->> 'amount_due')::bigint, o.earned, a.s -> 'lines', a.response,
                   coalesce(a.s ->> 'channel', 'offline'), a.s ->> 'payment_method'
            FROM answered a JOIN ok o USING (ord) ORDER BY a.ord
        ), events AS (
            INSERT INTO outbox (card_id, kind, payload)
            SELECT card_id, kind, payload FROM (
                SELECT o.ord, 0 AS k, o.card_id, 'tier_change' AS kind,
                       jsonb_build_object('card', o.number, 'from', o.tier, 'to', u.new_tier)
                           AS payload
                FROM ok o JOIN upgraded u USING (ord)
                WHERE u.new_tier IS NOT NULL AND loyalty_event_wanted('tier_change')
                UNION ALL
                SELECT o.ord, 1, o.card_id, 'sale',
                       jsonb_build_object('card', o.number, 'store_id', o.store,
                                          'transaction_id', o.tx, 'points_earned', o.earned,
                                          'points_redeemed', o.redeem)
                FROM ok o WHERE loyalty_sale_event_wanted(o.earned, o.redeem)
            ) x ORDER BY ord, k
        )
        SELECT coalesce(jsonb_object_agg(ord::text, CASE outcome
                   WHEN 'replay' THEN jsonb_build_object('outcome', 'replay', 'response', stored)
                   WHEN 'conflict' THEN jsonb_build_object('outcome', 'conflict')
                   WHEN 'card_not_active' THEN jsonb_build_object('outcome', 'card_not_active',
                                                                  'status', status)
                   ELSE jsonb_build_object('outcome', 'insufficient',
                                           'balance', greatest(balance, 0))
               END) FILTER (WHERE outcome <> 'committed'), '{}')
               || coalesce((SELECT jsonb_object_agg(ord::text, jsonb_build_object(
                                'outcome', 'committed',
                                'response', loyalty_receipt_answer(s -> 'lines', response),
                                'referrer', NULL, 'ledger_version', ledger_version))
                            FROM answered), '{}')
        INTO v_done
        FROM decided;
        PERFORM set_config('loyalty.figures', '', true);
    END IF;

    -- The rest one by one, in batch order; then every outcome in batch order.
    FOR v_sale IN SELECT s, ord FROM jsonb_array_elements(p) WITH ORDINALITY AS t(s, ord)
    LOOP
        IF v_sale.ord = ANY (v_plain) THEN
            RETURN NEXT v_done -> v_sale.ord::text;
        ELSE
            RETURN NEXT loyalty_commit(v_sale.s);
        END IF;
    END LOOP;
END $$;
