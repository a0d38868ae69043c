"""One balance: loyalty_balance, and the functions that now read it.

A card's balance (its active lots less its debt) and its pending points are defined once,
by ``loyalty_balance(card_id, at)`` (sql/loyalty_balance.sql), and every query that
checks or shows a balance reads it there: ``loyalty_commit``'s check and answer,
``loyalty_commit_many``'s set-based check and answer (its receipts now written by a
second statement, which sees the sales' writes, so that the answer is read after them as
``loyalty_commit`` reads it), the returns' card answer. ``loyalty_spendable``, the active
lots without the debt, which the returns read before, is dropped.

On a database made by revision 0006's baseline this reloads what that revision loaded
already; on one made by the revisions the baseline replaced, it brings these functions
up to date.

Downgrade leaves them: the bodies before this revision are no longer in the tree, and
these run on revision 0006's schema (see ../README.md).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from service.storage.postgres.sqlscript import drop_functions, load_functions

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    load_functions("loyalty_balance", "loyalty_commit", "loyalty_commit_many")
    drop_functions("loyalty_spendable")


def downgrade() -> None:
    pass
