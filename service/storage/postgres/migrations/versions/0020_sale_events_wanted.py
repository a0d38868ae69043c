"""Two cuts of a commit's cost (issue 21, docs/performance.md):
- a sale writes its 'sale' outbox event only when a webhook subscription listens for
  accruals or redemptions (``loyalty_sale_event_wanted``): unheard, the event cost about
  970 B of WAL per sale, written, fanned out to no one and marked published;
- ``loyalty_lots_to_take`` tells the planner it returns a couple of rows (``ROWS 2``), so
  that the set-based commit updates the lots it takes by their key, not by a hash join
  over a scan of every lot in the ledger;
- ``loyalty_commit_many`` looks once whether any sale of the batch takes a campaign
  budget or a rule use cap, and runs the four statements that make and lock them only
  then (most batches take none).
The functions are loaded again from their sources.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from service.storage.postgres.sqlscript import execute_script, load_functions

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    load_functions(
        "loyalty_sale_event_wanted", "loyalty_lots_to_take", "loyalty_commit",
        "loyalty_commit_many",
    )  # fmt: skip


# Below this revision every sale that moved points wrote its event. The commit functions
# as the tree has them call the check (the baseline loads every source, this one
# included), so the downgrade keeps the function and gives it that answer.
DOWNGRADE = """
CREATE OR REPLACE FUNCTION loyalty_sale_event_wanted(p_earned bigint, p_redeem bigint)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT p_earned > 0 OR p_redeem > 0 $$;
ALTER FUNCTION loyalty_lots_to_take(bigint, bigint, timestamptz) ROWS 1000;
"""


def downgrade() -> None:
    execute_script(DOWNGRADE)
