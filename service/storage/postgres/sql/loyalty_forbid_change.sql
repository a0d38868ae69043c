-- Trigger function: refuses UPDATE and DELETE on an append-only table (the ledger's
-- entries, tier spend, adjustments, the audit log, published program versions).
CREATE OR REPLACE FUNCTION loyalty_forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'raise_exception';
END $$;
