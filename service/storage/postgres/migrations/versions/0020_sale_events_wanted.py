"""A sale writes its 'sale' outbox event only when a webhook subscription listens for
accruals or redemptions (``loyalty_sale_event_wanted``): unheard, the event cost about
970 B of WAL per sale, written, fanned out to no one and marked published (issue 21,
docs/performance.md). The two commit functions are loaded again with the check.

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
    load_functions("loyalty_sale_event_wanted", "loyalty_commit", "loyalty_commit_many")


# Below this revision every sale that moved points wrote its event. The commit functions
# as the tree has them call the check (the baseline loads every source, this one
# included), so the downgrade keeps the function and gives it that answer.
DOWNGRADE = """
CREATE OR REPLACE FUNCTION loyalty_sale_event_wanted(p_earned bigint, p_redeem bigint)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT p_earned > 0 OR p_redeem > 0 $$;
"""


def downgrade() -> None:
    execute_script(DOWNGRADE)
