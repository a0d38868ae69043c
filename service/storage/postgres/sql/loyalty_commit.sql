-- loyalty_commit: one sale written to the ledger in one round trip.
--
-- Python computes the sale (what the customer was shown); this function records it
-- atomically and re-checks what only the database can know: whether the receipt id is
-- new, whether the card is still active, whether the points asked for are still there
-- (under the card's row lock, never read-then-write in Python, less what other
-- calculations hold: loyalty_held; its own hold it takes), whether promo codes
-- still have uses left, whether the campaign budgets and the use caps of the rules it
-- applied still have room (under those rows' locks: loyalty_commit_many takes a batch's
-- in key order after its cards). Every refusal (replay, conflict, card missing or not
-- active, points no longer there, a wallet's money no longer there, a promo code
-- revoked, used up or bound to another card, a budget or a cap reached, a stamp card's
-- free unit no longer covered) is decided before the first write, so a refused sale
-- writes nothing and needs no rollback. It answers with an
-- ``outcome``; a committed sale returns its response (the card's balance read after the
-- writes, loyalty_balance; stored without its lines when the caller sent it so, and
-- answered whole, as a replay reads it: loyalty_receipt_answer) and the card's new
-- ledger version, with which the caller marks the cached state stale.
--
-- Kept for the sales that loyalty_commit_many does not write set-based (anonymous sales,
-- promo codes, a referral's first purchase, a card's several sales in one batch, an
-- unknown card, a payment from a wallet, rewards redeemed): loyalty_commit_many calls it for each of
-- them, in batch order; and
-- tests/integration/test_commit_set_based.py holds the two paths equal.
CREATE OR REPLACE FUNCTION loyalty_commit(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_now      timestamptz := (p ->> 'now')::timestamptz;
    v_store    text := p ->> 'store_id';
    v_tx       text := p ->> 'transaction_id';
    v_hash     bytea := decode(p ->> 'request_hash', 'hex');
    v_redeem   bigint := (p ->> 'points_redeemed')::bigint;
    v_earned   bigint := (p ->> 'points_earned')::bigint;
    v_codes    jsonb := coalesce(p -> 'promo_codes', '[]');
    v_budgets  jsonb := coalesce(p -> 'budgets', '[]');
    v_uses     jsonb := coalesce(p -> 'rule_uses', '[]');
    v_use      jsonb;
    v_count    bigint;
    v_card     cards%ROWTYPE;
    v_existing receipts%ROWTYPE;
    v_balance  bigint;
    v_repay    bigint := 0;
    v_lot_id   bigint;
    v_new_tier text;
    v_spend    bigint;
    v_code     text;
    v_promo    promo_codes%ROWTYPE;
    v_limited  text[] := '{}';
    v_budget   jsonb;
    v_response jsonb;
    v_referral bigint := coalesce((p ->> 'referral_points')::bigint, 0);
    v_referrer text;
    v_version  bigint;
    v_wallet   wallets%ROWTYPE;
    v_pay      bigint := coalesce((p #>> '{wallet,amount}')::bigint, 0);
    -- Rewards from the catalogue (SPEC §4 item 31): their points leave the card as spent
    -- points do, checked with them against the balance.
    v_rewards  jsonb := coalesce(p -> 'rewards', '[]');
    v_reward   bigint := (SELECT coalesce(sum((r ->> 'points')::bigint), 0)
                          FROM jsonb_array_elements(coalesce(p -> 'rewards', '[]')) AS r);
    v_item     jsonb;
BEGIN
    -- Checks first: nothing below this block refuses, so a refused sale writes nothing.
    IF p ->> 'card' IS NOT NULL THEN
        -- The card lock serialises every sale, refund and spend of this card.
        SELECT * INTO v_card FROM cards WHERE number = p ->> 'card' FOR UPDATE;
        IF NOT FOUND THEN
            RETURN jsonb_build_object('outcome', 'card_not_found');
        END IF;
    END IF;

    SELECT * INTO v_existing FROM receipts WHERE store_id = v_store AND transaction_id = v_tx;
    IF FOUND THEN
        IF v_existing.request_hash = v_hash THEN
            RETURN jsonb_build_object('outcome', 'replay', 'response',
                                      loyalty_receipt_answer(v_existing.lines,
                                                             v_existing.response));
        END IF;
        RETURN jsonb_build_object('outcome', 'conflict');
    END IF;

    IF v_card.card_id IS NOT NULL AND v_card.status <> 'active'
       AND (v_redeem > 0 OR v_earned > 0 OR v_reward > 0 OR p ? 'stamps')
    THEN
        RETURN jsonb_build_object('outcome', 'card_not_active', 'status', v_card.status);
    END IF;

    IF p ->> 'allowance' IS NOT NULL THEN
        -- An offline till's sale within its allowance: accepted whatever happened to the
        -- card meanwhile, as far as the allowance's hold still has the points.
        SELECT points INTO v_count FROM point_holds
        WHERE calculation_id = p ->> 'allowance' AND card_id = v_card.card_id
          AND taken_at IS NULL AND released_at IS NULL AND expires_at > v_now
        FOR UPDATE;
        IF NOT FOUND OR v_count < v_redeem + v_reward THEN
            RETURN jsonb_build_object('outcome', 'allowance_refused',
                                      'balance', coalesce(v_count, 0));
        END IF;
    ELSIF v_redeem + v_reward > 0 THEN
        -- What the card may spend: its balance less what other calculations hold.
        SELECT b.balance - h.held INTO v_balance
        FROM loyalty_balance(v_card.card_id, v_now) b,
             loyalty_held(v_card.card_id, v_now, p ->> 'calculation_id') h;
        IF v_balance < v_redeem + v_reward THEN
            RETURN jsonb_build_object('outcome', 'insufficient', 'balance', greatest(v_balance, 0));
        END IF;
    END IF;

    IF v_pay > 0 THEN
        -- Money from a wallet (SPEC §4 item 34), under the wallet's row lock, taken after
        -- the card's as every writer that holds both: what it holds, less what other
        -- calculations hold of it.
        SELECT * INTO v_wallet FROM wallets WHERE number = p #>> '{wallet,number}' FOR UPDATE;
        IF NOT FOUND THEN
            RETURN jsonb_build_object('outcome', 'wallet_not_found');
        END IF;
        IF v_wallet.status <> 'active' OR v_wallet.expires_at <= v_now THEN
            RETURN jsonb_build_object('outcome', 'wallet_not_active', 'status',
                CASE WHEN v_wallet.status = 'active' THEN 'expired' ELSE v_wallet.status END);
        END IF;
        SELECT v_wallet.balance - coalesce(sum(amount), 0) INTO v_count FROM wallet_holds
        WHERE number = v_wallet.number AND taken_at IS NULL AND released_at IS NULL
          AND expires_at > v_now AND calculation_id IS DISTINCT FROM p ->> 'calculation_id';
        IF v_count < v_pay THEN
            RETURN jsonb_build_object('outcome', 'wallet_insufficient',
                                      'balance', greatest(v_count, 0));
        END IF;
    END IF;

    -- Promo codes: limits are checked under lock; a code without a total limit is not
    -- locked, so that a popular campaign code does not serialise every sale.
    IF jsonb_array_length(v_codes) > 0 THEN
        FOR v_code IN SELECT jsonb_array_elements_text(v_codes)
        LOOP
            SELECT * INTO v_promo FROM promo_codes WHERE code = v_code;
            IF NOT FOUND OR v_promo.revoked_at IS NOT NULL OR (v_promo.card_id IS NOT NULL
               AND v_promo.card_id IS DISTINCT FROM v_card.card_id) THEN  -- a coupon's card
                RETURN jsonb_build_object('outcome', 'promo_rejected', 'code', v_code);
            END IF;
            IF v_card.card_id IS NOT NULL AND v_promo.per_card_limit IS NOT NULL AND (
                SELECT count(*) FROM promo_code_uses
                WHERE card_id = v_card.card_id AND code = v_code AND released_at IS NULL
            ) >= v_promo.per_card_limit THEN
                RETURN jsonb_build_object('outcome', 'promo_used_up', 'code', v_code);
            END IF;
            IF v_promo.max_uses IS NOT NULL THEN
                SELECT * INTO v_promo FROM promo_codes WHERE code = v_code FOR UPDATE;
                IF v_promo.uses >= v_promo.max_uses THEN
                    RETURN jsonb_build_object('outcome', 'promo_used_up', 'code', v_code);
                END IF;
                v_limited := v_limited || v_code;
            END IF;
        END LOOP;
    END IF;

    -- Stamp cards ([rule, added, free units, every]): a free unit is given only while the
    -- card still holds its stamps (another sale of the card may have used them since
    -- the calculation).
    IF p ? 'stamps' THEN
        SELECT s ->> 0 INTO v_code
        FROM jsonb_array_elements(p -> 'stamps') AS s
        LEFT JOIN card_stamps c ON c.card_id = v_card.card_id AND c.rule_id = s ->> 0
        WHERE (s ->> 2)::int > 0
          AND coalesce(c.have, 0) + (s ->> 1)::int < (s ->> 2)::int * (s ->> 3)::int
        LIMIT 1;
        IF FOUND THEN
            RETURN jsonb_build_object('outcome', 'stamps_changed', 'code', v_code);
        END IF;
    END IF;

    -- Budgets ([rule, amount, budget]) and use caps ([rule, period, max_uses,
    -- max_uses_per_card]), each list in key order: a row is made before it is locked, so
    -- that the first uses of a period wait for each other too.
    FOR v_budget IN SELECT * FROM jsonb_array_elements(v_budgets)
    LOOP
        INSERT INTO campaign_budgets (rule_id, used) VALUES (v_budget ->> 0, 0)
        ON CONFLICT (rule_id) DO NOTHING;
        SELECT used INTO v_count FROM campaign_budgets WHERE rule_id = v_budget ->> 0 FOR UPDATE;
        IF v_count + (v_budget ->> 1)::bigint > (v_budget ->> 2)::bigint THEN
            RETURN jsonb_build_object('outcome', 'limit_reached', 'code', v_budget ->> 0);
        END IF;
    END LOOP;
    FOR v_use IN SELECT * FROM jsonb_array_elements(v_uses)
    LOOP
        IF v_use ->> 2 IS NOT NULL THEN
            INSERT INTO rule_use_counts (rule_id, period) VALUES (v_use ->> 0, v_use ->> 1)
            ON CONFLICT (rule_id, period) DO NOTHING;
            SELECT uses INTO v_count FROM rule_use_counts
            WHERE rule_id = v_use ->> 0 AND period = v_use ->> 1 FOR UPDATE;
            IF v_count >= (v_use ->> 2)::bigint THEN
                RETURN jsonb_build_object('outcome', 'limit_reached', 'code', v_use ->> 0);
            END IF;
        END IF;
        IF v_use ->> 3 IS NOT NULL AND (v_card.card_id IS NULL OR (
            SELECT count(*) FROM rule_uses
            WHERE card_id = v_card.card_id AND rule_id = v_use ->> 0
              AND period = v_use ->> 1 AND released_at IS NULL
        ) >= (v_use ->> 3)::bigint) THEN
            RETURN jsonb_build_object('outcome', 'limit_reached', 'code', v_use ->> 0);
        END IF;
    END LOOP;

    -- Writes: every check passed.
    IF jsonb_array_length(v_codes) > 0 THEN
        UPDATE promo_codes SET uses = uses + 1 WHERE code = ANY (v_limited);
        INSERT INTO promo_code_uses (card_id, code, store_id, transaction_id, used_at)
        SELECT v_card.card_id, c, v_store, v_tx, v_now
        FROM jsonb_array_elements_text(v_codes) AS c;
    END IF;

    IF v_redeem > 0 THEN
        v_count := v_redeem - loyalty_take_points(v_card.card_id, v_redeem, v_now,
                                                  'redemption', v_store, v_tx, NULL);
        IF v_count > 0 AND p ->> 'allowance' IS NOT NULL THEN
            -- an allowance's points gone meanwhile (expired lots): the card owes them
            UPDATE cards SET debt = debt + v_count WHERE card_id = v_card.card_id;
            INSERT INTO ledger_entries (card_id, kind, points, store_id, transaction_id)
            VALUES (v_card.card_id, 'redemption', -v_count, v_store, v_tx);
        END IF;
    END IF;
    IF v_reward > 0 THEN
        v_count := v_reward - loyalty_take_points(v_card.card_id, v_reward, v_now,
                                                  'reward', v_store, v_tx, NULL);
        IF v_count > 0 AND p ->> 'allowance' IS NOT NULL THEN  -- as for redemption above
            UPDATE cards SET debt = debt + v_count WHERE card_id = v_card.card_id;
            INSERT INTO ledger_entries (card_id, kind, points, store_id, transaction_id)
            VALUES (v_card.card_id, 'reward', -v_count, v_store, v_tx);
        END IF;
        FOR v_item IN SELECT * FROM jsonb_array_elements(v_rewards)
        LOOP
            INSERT INTO reward_redemptions (store_id, transaction_id, reward_code, card_id, kind,
                                            count, points, discount, coupons, redeemed_at)
            VALUES (v_store, v_tx, v_item ->> 'code', v_card.card_id, v_item ->> 'kind',
                    (v_item ->> 'count')::int, (v_item ->> 'points')::bigint,
                    (v_item ->> 'discount')::bigint,
                    ARRAY(SELECT jsonb_array_elements_text(coalesce(v_item -> 'coupons', '[]'))),
                    v_now);
            -- A coupon: a single-use promo code bound to the card, for the reward's rule,
            -- valid from the sale (a later receipt, even one a till sends late).
            INSERT INTO promo_codes (code, rule_ids, program_version, max_uses, per_card_limit,
                                     valid_from, valid_to, card_id, created_at)
            SELECT c, ARRAY[v_item ->> 'rule_id'], (p ->> 'program_version')::int, 1, 1,
                   (p ->> 'occurred_at')::timestamptz, (v_item ->> 'valid_to')::timestamptz,
                   v_card.card_id, v_now
            FROM jsonb_array_elements_text(coalesce(v_item -> 'coupons', '[]')) AS c;
            INSERT INTO outbox (card_id, kind, payload) VALUES (v_card.card_id, 'reward_issued',
                jsonb_build_object('card', v_card.number, 'store_id', v_store,
                                   'transaction_id', v_tx, 'reward', v_item ->> 'code',
                                   'kind', v_item ->> 'kind', 'count', (v_item ->> 'count')::int,
                                   'points', (v_item ->> 'points')::bigint,
                                   'discount', (v_item ->> 'discount')::bigint,
                                   'coupons', coalesce(v_item -> 'coupons', '[]'),
                                   'valid_to', v_item -> 'valid_to'));
        END LOOP;
    END IF;
    IF p ->> 'allowance' IS NOT NULL THEN  -- spent from the allowance's hold
        UPDATE point_holds
        SET points = points - (v_redeem + v_reward),
            taken_at = CASE WHEN points = v_redeem + v_reward THEN v_now END
        WHERE calculation_id = p ->> 'allowance';
    END IF;
    IF (p ->> 'held')::boolean THEN  -- the calculation's hold, taken by its commit
        UPDATE point_holds SET taken_at = v_now
        WHERE calculation_id = p ->> 'calculation_id' AND taken_at IS NULL;
    END IF;

    IF v_pay > 0 THEN
        UPDATE wallets SET balance = balance - v_pay WHERE number = v_wallet.number;
        INSERT INTO wallet_entries (number, kind, amount, store_id, transaction_id, created_at)
        VALUES (v_wallet.number, 'payment', -v_pay, v_store, v_tx, v_now);
        UPDATE wallet_holds SET taken_at = v_now
        WHERE number = v_wallet.number AND calculation_id = p ->> 'calculation_id'
          AND taken_at IS NULL AND released_at IS NULL;
    END IF;

    IF v_card.card_id IS NOT NULL THEN
        IF v_earned > 0 THEN
            -- Points owed from an earlier refund are repaid first.
            v_repay := least(v_card.debt, v_earned);
            IF v_earned > v_repay THEN
                INSERT INTO point_lots (card_id, points, remaining, activates_at, expires_at,
                                        source)
                VALUES (v_card.card_id, v_earned - v_repay, v_earned - v_repay,
                        (p ->> 'activates_at')::timestamptz, (p ->> 'expires_at')::timestamptz,
                        'accrual')
                RETURNING lot_id INTO v_lot_id;
            END IF;
            INSERT INTO ledger_entries (card_id, kind, points, lot_id, store_id, transaction_id)
            VALUES (v_card.card_id, 'accrual', v_earned, v_lot_id, v_store, v_tx);
        END IF;
        -- Referral: both sides earn on the referee's first purchase (pending like accruals).
        IF v_card.referred_by IS NOT NULL AND v_card.purchase_count = 0 AND v_referral > 0
           AND v_card.status = 'active' THEN
            PERFORM loyalty_grant(v_card.card_id, v_referral, 'referral',
                                  (p ->> 'activates_at')::timestamptz,
                                  (p ->> 'expires_at')::timestamptz, v_store, v_tx);
            PERFORM loyalty_grant(v_card.referred_by, v_referral, 'referral',
                                  (p ->> 'activates_at')::timestamptz,
                                  (p ->> 'expires_at')::timestamptz, v_store, v_tx);
            SELECT number INTO v_referrer FROM cards WHERE card_id = v_card.referred_by;
        END IF;
        IF (p ->> 'tier_spend')::bigint <> 0 THEN
            INSERT INTO tier_spend (card_id, amount, occurred_at, store_id, transaction_id)
            VALUES (v_card.card_id, (p ->> 'tier_spend')::bigint,
                    (p ->> 'occurred_at')::timestamptz, v_store, v_tx);
        END IF;
        SELECT CASE WHEN r.upgrade THEN r.tier END, r.spend INTO v_new_tier, v_spend
        FROM loyalty_tier_reached(v_card.card_id, v_card.tier,
                                  (p ->> 'tier_window_start')::timestamptz, p -> 'tiers', 0) r;
        -- The card's running figures settled at this sale (migration 0016): the card's
        -- next sale reads only what changed after it. The triggers kept them exact under
        -- the writes above; the row is rewritten here anyway.
        UPDATE cards c SET purchase_count = c.purchase_count + 1,
                           ledger_version = c.ledger_version + 1,
                           debt = c.debt - v_repay,
                           tier = coalesce(v_new_tier, c.tier),
                           points_at = v_now,
                           points_active = b.balance + c.debt,
                           points_pending = b.pending,
                           spend_from = coalesce((p ->> 'tier_window_start')::timestamptz,
                                                 '-infinity'),
                           spend = v_spend
        FROM loyalty_balance(v_card.card_id, v_now) b
        WHERE c.card_id = v_card.card_id
        RETURNING c.ledger_version INTO v_version;
        IF p ? 'stamps' THEN
            -- Stamp cards ([rule, added, free units, every]): the card's count moves by
            -- what the sale added less what its free units used, under the card's lock;
            -- the move is kept for a cancel or a full return to undo (migration 0019).
            INSERT INTO stamp_moves (store_id, transaction_id, card_id, rule_id, added, used,
                                     moved_at)
            SELECT v_store, v_tx, v_card.card_id, s ->> 0, (s ->> 1)::int,
                   (s ->> 2)::int * (s ->> 3)::int, v_now
            FROM jsonb_array_elements(p -> 'stamps') AS s;
            INSERT INTO card_stamps AS c (card_id, rule_id, have)
            SELECT v_card.card_id, s ->> 0, (s ->> 1)::int - (s ->> 2)::int * (s ->> 3)::int
            FROM jsonb_array_elements(p -> 'stamps') AS s
            ON CONFLICT (card_id, rule_id) DO UPDATE SET have = c.have + excluded.have;
        END IF;
        IF v_new_tier IS NOT NULL AND loyalty_event_wanted('tier_change') THEN
            INSERT INTO outbox (card_id, kind, payload) VALUES (v_card.card_id, 'tier_change',
                jsonb_build_object('card', v_card.number, 'from', v_card.tier, 'to', v_new_tier));
        END IF;
        IF loyalty_sale_event_wanted(v_earned, v_redeem) THEN
            INSERT INTO outbox (card_id, kind, payload) VALUES (v_card.card_id, 'sale',
                jsonb_build_object('card', v_card.number, 'store_id', v_store,
                                   'transaction_id', v_tx, 'points_earned', v_earned,
                                   'points_redeemed', v_redeem));
        END IF;
    END IF;

    IF jsonb_array_length(v_budgets) > 0 OR jsonb_array_length(v_uses) > 0 THEN
        UPDATE campaign_budgets c SET used = c.used + (b ->> 1)::bigint
        FROM jsonb_array_elements(v_budgets) AS b WHERE c.rule_id = b ->> 0;
        UPDATE rule_use_counts c SET uses = c.uses + 1
        FROM jsonb_array_elements(v_uses) AS u
        WHERE u ->> 2 IS NOT NULL AND c.rule_id = u ->> 0 AND c.period = u ->> 1;
        -- The sale's share of each rule, for its returns: the use it counted (a period:
        -- a cap) and the budget it took.
        INSERT INTO rule_uses (store_id, transaction_id, rule_id, card_id, period,
                               budget_used, used_at)
        SELECT v_store, v_tx, coalesce(u ->> 0, b ->> 0), v_card.card_id, u ->> 1,
               coalesce((b ->> 1)::bigint, 0), v_now
        FROM (SELECT * FROM jsonb_array_elements(v_uses)) AS uu(u)
        FULL JOIN (SELECT * FROM jsonb_array_elements(v_budgets)) AS bb(b)
            ON u ->> 0 = b ->> 0;
    END IF;

    v_response := (p -> 'response') || jsonb_build_object('card', CASE
        WHEN v_card.card_id IS NULL THEN NULL
        ELSE (SELECT jsonb_build_object(
                'number', v_card.number,
                'status', v_card.status,
                'tier', coalesce(v_new_tier, v_card.tier),
                'balance', b.balance,
                'pending', b.pending)
              FROM loyalty_balance(v_card.card_id, v_now) b)
        END);
    INSERT INTO receipts (store_id, transaction_id, card_id, calculation_id, program_version,
                          occurred_at, committed_at, request_hash, subtotal, discount,
                          points_redeemed, points_paid, amount_due, points_earned, lines,
                          response, channel, payment_method)
    VALUES (v_store, v_tx, v_card.card_id, p ->> 'calculation_id',
            (p ->> 'program_version')::int, (p ->> 'occurred_at')::timestamptz, v_now, v_hash,
            (p ->> 'subtotal')::bigint, (p ->> 'discount')::bigint, v_redeem,
            (p ->> 'points_paid')::bigint, (p ->> 'amount_due')::bigint, v_earned,
            p -> 'lines', v_response, coalesce(p ->> 'channel', 'offline'),
            p ->> 'payment_method');
    RETURN jsonb_build_object('outcome', 'committed',
                              'response', loyalty_receipt_answer(p -> 'lines', v_response),
                              'referrer', v_referrer, 'ledger_version', v_version);
END $$;
