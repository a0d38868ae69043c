"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from service.storage.postgres.sqlscript import execute_script

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None

# Tables, indexes, triggers here. A function is never written here: edit its file in
# service/storage/postgres/sql/ and reload it, sqlscript.load_functions("loyalty_...") in
# upgrade() (see ../README.md).
UPGRADE = r"""
"""

DOWNGRADE = r"""
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
