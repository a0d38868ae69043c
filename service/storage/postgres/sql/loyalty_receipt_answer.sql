-- The answer a committed sale was given, from its receipt row: ``response`` as stored,
-- with its per-line results taken from the row's ``lines`` when the response was stored
-- without them.
--
-- A sale's answer repeats, line by line, what its receipt's ``lines`` hold (the amount,
-- discount, points and fiscal positions of each line): ``lines`` is those results plus
-- what the receipt said of the line (sku, quantity, unit price, category, brand,
-- excluded), which the answer does not show. Stored twice, they made the receipt row,
-- the largest part of the WAL a sale writes, 123-312 B larger for 1 to 12 lines (less
-- than the bytes repeated: Postgres compresses a row's ``lines`` when the row is over
-- ~2 KB; docs/performance.md, issue 21, session 12). Since migration 0022 the ledger stores the
-- response without ``lines`` when each shown line is exactly its receipt line less those
-- six fields (storage/postgres/ledger.py checks it per sale), and every reader of a
-- stored answer (a replay in loyalty_commit and loyalty_commit_many, the ledger's
-- recorded_sale) reads it here. Rows stored before keep their lines and come back as
-- they are. jsonb keeps no key order, so the rebuilt answer equals the first one as a
-- value, as a stored one always did.
CREATE OR REPLACE FUNCTION loyalty_receipt_answer(p_lines jsonb, p_response jsonb)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN p_response ? 'lines' THEN p_response
        ELSE p_response || jsonb_build_object('lines', coalesce(
            (SELECT jsonb_agg(l - '{sku,quantity,unit_price,category,brand,excluded}'::text[]
                              ORDER BY n)
             FROM jsonb_array_elements(p_lines) WITH ORDINALITY AS x(l, n)), '[]'::jsonb))
    END
$$;
