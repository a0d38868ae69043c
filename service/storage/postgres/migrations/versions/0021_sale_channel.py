"""The channel and payment method of each sale, as the till sent them (issue 19): the
analytics per channel (SPEC §10.3) and a simulation of the ledger's own receipts read
them back. Sales committed before this revision count as offline, with no method.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from service.storage.postgres.sqlscript import execute_script, load_functions

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

# A constant default: no table rewrite (the old rows read it from the catalogue).
UPGRADE = """
ALTER TABLE receipts
    ADD COLUMN channel text NOT NULL DEFAULT 'offline' CHECK (channel IN ('offline', 'online')),
    ADD COLUMN payment_method text CHECK (length(payment_method) <= 64);
"""

DOWNGRADE = """
ALTER TABLE receipts DROP COLUMN payment_method, DROP COLUMN channel;
"""


def upgrade() -> None:
    execute_script(UPGRADE)
    load_functions("loyalty_commit", "loyalty_commit_many")


def downgrade() -> None:
    # The commit bodies in the tree write the columns: below this revision they fail until
    # it is applied again (see ../README.md: earlier bodies are not kept).
    execute_script(DOWNGRADE)
