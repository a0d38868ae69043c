-- Trigger function: a store names a region that exists, whichever path loaded the store
-- (the region is made on the fly).
CREATE OR REPLACE FUNCTION loyalty_store_region() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO regions (region_id) VALUES (NEW.region) ON CONFLICT DO NOTHING;
    RETURN NEW;
END $$;
