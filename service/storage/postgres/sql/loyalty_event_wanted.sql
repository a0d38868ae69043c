-- Whether an event of kind p_kind ('tier_change', ...) owes the outbox a row: only when an
-- active webhook subscription listens for it. Unheard, the event is written, fanned out
-- to no one and marked published: three writes for nothing (a sale's event so cost ~970 B
-- of WAL, session 11; unheard ``tier_change`` events were 400-600 B per sale of the
-- benchmark's commit run, whose cards move up a tier in their first sales;
-- docs/performance.md, issue 21, session 12). The 'sale'
-- event has its own check (loyalty_sale_event_wanted: it stands for two kinds); the
-- back-office jobs ask the same of 'expiring' and 'birthday' (webhooks.wanted).
--
-- A subscription made now gets the events that happen after it, as every kind.
CREATE OR REPLACE FUNCTION loyalty_event_wanted(p_kind text)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM webhook_subscriptions WHERE active AND p_kind = ANY (events))
$$;
