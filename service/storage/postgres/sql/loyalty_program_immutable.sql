-- Trigger function: a program version's document may change only while it is a draft.
CREATE OR REPLACE FUNCTION loyalty_program_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'draft' AND NEW.document IS DISTINCT FROM OLD.document THEN
        RAISE EXCEPTION 'program version % is published and immutable', OLD.version
            USING ERRCODE = 'raise_exception';
    END IF;
    RETURN NEW;
END $$;
