-- Whether a sale that earned p_earned and redeemed p_redeemed points owes the outbox a
-- 'sale' event: only when an active webhook subscription listens for what it did
-- ('accrual' for points earned, 'redemption' for points spent; the fan-out turns the
-- event into those deliveries). Nobody listening, the event would be written, fanned out
-- to no one and marked published: about 970 B of WAL per sale, a sixth of a sale's
-- (the row and its two index entries, then the fan-out's lock and new row version;
-- docs/performance.md, issue 21). The back-office jobs skip the 'expiring' and 'birthday'
-- events nobody wants the same way (background.run_back_office_jobs).
--
-- A subscription made now gets the events of the sales committed after it, as it gets the
-- other kinds'.
CREATE OR REPLACE FUNCTION loyalty_sale_event_wanted(p_earned bigint, p_redeem bigint)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT (p_earned > 0 OR p_redeem > 0) AND EXISTS (
        SELECT 1 FROM webhook_subscriptions
        WHERE active AND ((p_earned > 0 AND 'accrual' = ANY (events))
                          OR (p_redeem > 0 AND 'redemption' = ANY (events))))
$$;
