"""Less WAL per sale (issue 21, docs/performance.md "WAL per sale, session 12"):

- a sale's receipt row keeps its answer without the per-line results that the row's
  ``lines`` already hold (123-312 B less for a 1- to 12-line receipt);
  ``loyalty_receipt_answer`` gives the whole answer back from the two columns, and the
  commit functions answer and replay through it. Rows written before keep their answers
  whole and are read as they are;
- a point lot's partial indexes are on ``is_open``, a stored column generated from
  ``remaining > 0``, instead of on ``remaining > 0`` itself: an update of ``remaining``
  that leaves the lot open (a redemption that takes part of it) changes no indexed
  column and no index predicate, so Postgres can write it as a heap-only (HOT) update, in
  place of a new row version with four index entries; ``point_lots`` and ``cards`` keep
  a tenth of each page free for those updates (fillfactor 90). Adding the column rewrites
  point_lots once. Every query that read open lots by ``remaining > 0`` reads
  ``is_open`` (the partial indexes' predicate), loaded again from their sources;
- a ``tier_change`` event is written only when a webhook subscription listens for it
  (``loyalty_event_wanted``), as the sale events since 0020.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""

from service.storage.postgres.sqlscript import execute_script, load_functions

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE point_lots ADD COLUMN is_open boolean GENERATED ALWAYS AS (remaining > 0) STORED;
DROP INDEX point_lots_open;
DROP INDEX point_lots_activation;
DROP INDEX point_lots_expiry;
CREATE INDEX point_lots_open ON point_lots (card_id, expires_at, lot_id) WHERE is_open;
CREATE INDEX point_lots_activation ON point_lots (card_id, activates_at) WHERE is_open;
CREATE INDEX point_lots_expiry ON point_lots (expires_at) WHERE is_open;
ALTER TABLE point_lots SET (fillfactor = 90);
ALTER TABLE cards SET (fillfactor = 90);
"""


def upgrade() -> None:
    execute_script(UPGRADE)
    load_functions(
        "loyalty_receipt_answer", "loyalty_event_wanted", "loyalty_balance",
        "loyalty_lots_to_take", "loyalty_card_state", "loyalty_commit", "loyalty_commit_many",
    )  # fmt: skip


# Below this revision every reader takes ``response`` as it is: the rows stored without
# their lines get them back. The commit functions as the tree has them call
# loyalty_receipt_answer (the baseline loads every source), so it stays. The functions
# that read ``is_open`` are not loaded back (the tree has only today's sources), so the
# column stays too, with the indexes on ``remaining > 0`` beside it. Below it every tier
# change wrote its event: the check kept, answering so.
DOWNGRADE = """
CREATE OR REPLACE FUNCTION loyalty_event_wanted(p_kind text)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT true $$;
UPDATE receipts SET response = loyalty_receipt_answer(lines, response)
WHERE NOT response ? 'lines';
DROP INDEX point_lots_open;
DROP INDEX point_lots_activation;
DROP INDEX point_lots_expiry;
CREATE INDEX point_lots_open ON point_lots (card_id, expires_at, lot_id) WHERE remaining > 0;
CREATE INDEX point_lots_activation ON point_lots (card_id, activates_at) WHERE remaining > 0;
CREATE INDEX point_lots_expiry ON point_lots (expires_at) WHERE remaining > 0;
ALTER TABLE point_lots RESET (fillfactor);
ALTER TABLE cards RESET (fillfactor);
"""


def downgrade() -> None:
    execute_script(DOWNGRADE)
