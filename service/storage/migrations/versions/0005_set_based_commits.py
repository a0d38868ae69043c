"""Group commit, set-based: a batch's plain card sales written by one statement.

Revision 0004 sent a batch in one statement, but ``loyalty_commit_many`` still ran
``loyalty_commit`` once per sale: about fourteen statements per sale (lock, replay check,
balance, lots, one write per table...), each paying Postgres's per-statement costs
(executor start-up, CHECK expressions read back from the catalog's text, foreign-key
trigger queues): over a third of Postgres's samples under the commit benchmark (perf).

Now every card of the batch is locked first, in card-number order, and the batch's plain
card sales (a card that exists and appears once in the batch, no promo code, no referral
to grant) are decided and written together by one statement: one INSERT or UPDATE per
table for all of them. A refused sale still writes nothing: every write reads only the
sales decided ``committed``. The other sales (anonymous ones, promo codes, a referral's
first purchase, a card with several sales in the batch, an unknown card) then go through
``loyalty_commit`` one by one, in batch order, as before. Outcomes come back in the order
of the batch.

The set-based statement does what ``loyalty_commit`` does for such a sale, with the same
outcomes and the same rows (tests/integration/test_commit_set_based.py holds the two
equal on random batches). Two differences in detail, neither visible to a caller: the
balance in the answer is worked out from the sums read before the writes (what was
active, less what was taken, plus the new lot if it is already active) instead of being
read again after them; and the tier a sale reaches is worked out from the spend read
before the writes plus the sale's own spend.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from service.storage.sqlscript import execute_script

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE OR REPLACE FUNCTION loyalty_commit_many(p jsonb) RETURNS SETOF jsonb
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_plain int[];
    v_done  jsonb;
    v_sale  record;
BEGIN
    -- The cards of the whole batch, locked in card-number order (as the caller sorts
    -- the sales): batches lock cards in the same order, whichever path a sale takes.
    PERFORM 1 FROM cards
    WHERE number = ANY (ARRAY(SELECT s ->> 'card' FROM jsonb_array_elements(p) AS s))
    ORDER BY number FOR UPDATE;

    SELECT coalesce(array_agg(e.ord), '{}') INTO v_plain
    FROM (SELECT s, ord, count(*) OVER (PARTITION BY s ->> 'card') AS sales
          FROM jsonb_array_elements(p) WITH ORDINALITY AS t(s, ord)) e
    JOIN cards c ON c.number = e.s ->> 'card'
    WHERE e.sales = 1
      AND jsonb_array_length(coalesce(e.s -> 'promo_codes', '[]')) = 0
      AND NOT (c.referred_by IS NOT NULL AND c.purchase_count = 0 AND c.status = 'active'
               AND coalesce((e.s ->> 'referral_points')::bigint, 0) > 0);

    -- The plain sales. Each card's rows are looked up LATERAL (... OFFSET 0), so that the
    -- plan reads them by index whatever number of sales it assumes; and the function
    -- keeps one generic plan (SET below): planning this statement anew costs about a
    -- millisecond, more than running it for a few sales.
    IF cardinality(v_plain) > 0 THEN
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
        ), lots AS (  -- each card's open lots, as its sale's clock sees them
            SELECT s.card_id, l.lot_id, l.remaining, l.expires_at,
                   l.activates_at <= s.now AND (l.expires_at IS NULL OR l.expires_at > s.now)
                       AS active,
                   l.activates_at > s.now AS pending
            FROM sale s CROSS JOIN LATERAL (
                SELECT lot_id, remaining, activates_at, expires_at FROM point_lots
                WHERE card_id = s.card_id AND remaining > 0 OFFSET 0) l
        ), held AS (
            SELECT s.ord,
                   coalesce(sum(l.remaining) FILTER (WHERE l.active), 0) AS active,
                   coalesce(sum(l.remaining) FILTER (WHERE l.pending), 0) AS pending
            FROM sale s LEFT JOIN lots l USING (card_id) GROUP BY s.ord
        ), decided AS (  -- loyalty_commit's checks, in its order
            SELECT s.*, h.active, h.pending, r.response AS stored,
                   CASE WHEN s.earned > 0 THEN least(s.debt, s.earned) ELSE 0 END AS repay,
                   CASE
                       WHEN r.found THEN
                           CASE WHEN r.request_hash = s.hash THEN 'replay' ELSE 'conflict' END
                       WHEN s.status <> 'active' AND (s.redeem > 0 OR s.earned > 0)
                           THEN 'card_not_active'
                       WHEN s.redeem > 0 AND h.active - s.debt < s.redeem THEN 'insufficient'
                       ELSE 'committed'
                   END AS outcome
            FROM sale s JOIN held h USING (ord)
            LEFT JOIN LATERAL (
                SELECT true AS found, request_hash, response FROM receipts
                WHERE store_id = s.store AND transaction_id = s.tx OFFSET 0) r ON true
        ), ok AS (
            SELECT * FROM decided WHERE outcome = 'committed'
        ), taken AS (  -- from the active lots, those expiring first first
            SELECT * FROM (
                SELECT o.ord, l.card_id, l.lot_id,
                       least(l.remaining, o.redeem - (sum(l.remaining) OVER w - l.remaining))
                           AS take,
                       row_number() OVER w AS n
                FROM ok o JOIN lots l ON l.card_id = o.card_id AND l.active
                WHERE o.redeem > 0
                WINDOW w AS (PARTITION BY l.card_id ORDER BY l.expires_at NULLS LAST, l.lot_id
                             ROWS UNBOUNDED PRECEDING)
            ) t WHERE take > 0
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
        ), reached AS (  -- the spend in the window, this sale's included
            SELECT o.ord,
                   (SELECT jsonb_build_array(t.value ->> 0, t.rank)
                    FROM jsonb_array_elements(o.s -> 'tiers') WITH ORDINALITY AS t(value, rank)
                    WHERE w.spend >= (t.value ->> 1)::bigint
                    ORDER BY t.rank DESC LIMIT 1) AS tier,
                   (SELECT max(t.rank)
                    FROM jsonb_array_elements(o.s -> 'tiers') WITH ORDINALITY AS t(value, rank)
                    WHERE t.value ->> 0 = o.tier) AS current_rank
            FROM ok o CROSS JOIN LATERAL (
                SELECT coalesce(sum(ts.amount), 0)
                       + CASE WHEN o.spend <> 0 AND (o.window_start IS NULL
                                                     OR o.occurred_at >= o.window_start)
                              THEN o.spend ELSE 0 END
                FROM tier_spend ts
                WHERE ts.card_id = o.card_id
                  AND (o.window_start IS NULL OR ts.occurred_at >= o.window_start)
            ) AS w(spend)
        ), upgraded AS (
            SELECT ord, CASE WHEN (tier ->> 1)::bigint > coalesce(current_rank, -1)
                             THEN tier ->> 0 END AS new_tier
            FROM reached
        ), bumped AS (
            UPDATE cards c SET purchase_count = c.purchase_count + 1,
                               ledger_version = c.ledger_version + 1,
                               debt = c.debt - o.repay,
                               tier = coalesce(u.new_tier, c.tier)
            FROM ok o JOIN upgraded u USING (ord)
            WHERE c.card_id = o.card_id
            RETURNING c.card_id, c.ledger_version
        ), events AS (
            INSERT INTO outbox (card_id, kind, payload)
            SELECT card_id, kind, payload FROM (
                SELECT o.ord, 0 AS k, o.card_id, 'tier_change' AS kind,
                       jsonb_build_object('card', o.number, 'from', o.tier, 'to', u.new_tier)
                           AS payload
                FROM ok o JOIN upgraded u USING (ord) WHERE u.new_tier IS NOT NULL
                UNION ALL
                SELECT o.ord, 1, o.card_id, 'sale',
                       jsonb_build_object('card', o.number, 'store_id', o.store,
                                          'transaction_id', o.tx, 'points_earned', o.earned,
                                          'points_redeemed', o.redeem)
                FROM ok o WHERE o.earned > 0 OR o.redeem > 0
            ) x ORDER BY ord, k
        ), budgets AS (  -- one update per campaign for the whole batch, in rule order
            INSERT INTO campaign_budgets (rule_id, used)
            SELECT b ->> 0, sum((b ->> 1)::bigint)
            FROM ok o, jsonb_array_elements(coalesce(o.s -> 'budgets', '[]')) AS b
            GROUP BY b ->> 0 ORDER BY b ->> 0
            ON CONFLICT (rule_id) DO UPDATE SET used = campaign_budgets.used + EXCLUDED.used
        ), answered AS (
            SELECT o.ord, b.ledger_version,
                   (o.s -> 'response') || jsonb_build_object('card', jsonb_build_object(
                       'number', o.number,
                       'status', o.status,
                       'tier', coalesce(u.new_tier, o.tier),
                       'balance', o.active - o.redeem - (o.debt - o.repay)
                                  + CASE WHEN o.earned > o.repay AND o.activates_at <= o.now
                                              AND (o.expires_at IS NULL OR o.expires_at > o.now)
                                         THEN o.earned - o.repay ELSE 0 END,
                       'pending', o.pending
                                  + CASE WHEN o.earned > o.repay AND o.activates_at > o.now
                                         THEN o.earned - o.repay ELSE 0 END)) AS response
            FROM ok o JOIN upgraded u USING (ord) JOIN bumped b USING (card_id)
        ), written AS (
            INSERT INTO receipts (store_id, transaction_id, card_id, calculation_id,
                                  program_version, occurred_at, committed_at, request_hash,
                                  subtotal, discount, points_redeemed, points_paid, amount_due,
                                  points_earned, lines, response)
            SELECT o.store, o.tx, o.card_id, o.s ->> 'calculation_id',
                   (o.s ->> 'program_version')::int, o.occurred_at, o.now, o.hash,
                   (o.s ->> 'subtotal')::bigint, (o.s ->> 'discount')::bigint, o.redeem,
                   (o.s ->> 'points_paid')::bigint, (o.s ->> 'amount_due')::bigint, o.earned,
                   o.s -> 'lines', a.response
            FROM ok o JOIN answered a USING (ord) ORDER BY o.ord
        )
        SELECT jsonb_object_agg(d.ord::text, CASE d.outcome
            WHEN 'committed' THEN jsonb_build_object(
                'outcome', 'committed', 'response', a.response, 'referrer', NULL,
                'ledger_version', a.ledger_version)
            WHEN 'replay' THEN jsonb_build_object('outcome', 'replay', 'response', d.stored)
            WHEN 'conflict' THEN jsonb_build_object('outcome', 'conflict')
            WHEN 'card_not_active' THEN jsonb_build_object('outcome', 'card_not_active',
                                                           'status', d.status)
            ELSE jsonb_build_object('outcome', 'insufficient',
                                    'balance', greatest(d.active - d.debt, 0))
        END) INTO v_done
        FROM decided d LEFT JOIN answered a USING (ord);
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
"""

# Revision 0004's loop over loyalty_commit.
DOWNGRADE = r"""
CREATE OR REPLACE FUNCTION loyalty_commit_many(p jsonb) RETURNS SETOF jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_sale jsonb;
BEGIN
    FOR v_sale IN SELECT value FROM jsonb_array_elements(p)
    LOOP
        RETURN NEXT loyalty_commit(v_sale);
    END LOOP;
END $$;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
