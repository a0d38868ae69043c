"""One tier rule: loyalty_tier_reached, and the functions that now read it.

The tier a card's spend reaches, and whether that is an upgrade or a downgrade, is
defined once, by ``loyalty_tier_reached`` (sql/loyalty_tier_reached.sql): the procedural
commit and the set-based one read it for the upgrade at the sale that crosses a
threshold, and the scheduled downgrade (expiry.py) for the move down. The procedural
``loyalty_upgraded_tier`` and the set-based commit's own copy of it are gone.

Downgrade leaves the new function and the commit bodies: the bodies before this revision
are no longer in the tree (see ../README.md); it brings ``loyalty_upgraded_tier`` back
for nothing, since no loaded body calls it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from service.storage.postgres.sqlscript import drop_functions, load_functions

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    load_functions("loyalty_tier_reached", "loyalty_commit", "loyalty_commit_many")
    drop_functions("loyalty_upgraded_tier")


def downgrade() -> None:
    pass
