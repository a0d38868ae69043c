"""A sale's receipt row keeps its answer without the per-line results that the row's
``lines`` already hold (issue 21: ~450 B less WAL for a 3-line sale,
docs/performance.md). ``loyalty_receipt_answer`` gives the whole answer back from the
two columns; the commit functions answer and replay through it. Rows written before keep
their answers whole and are read as they are.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""

from service.storage.postgres.sqlscript import execute_script, load_functions

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    load_functions("loyalty_receipt_answer", "loyalty_commit", "loyalty_commit_many")


# Below this revision every reader takes ``response`` as it is: the rows stored without
# their lines get them back. The commit functions as the tree has them call
# loyalty_receipt_answer (the baseline loads every source), so it stays.
DOWNGRADE = """
UPDATE receipts SET response = loyalty_receipt_answer(lines, response)
WHERE NOT response ? 'lines';
"""


def downgrade() -> None:
    execute_script(DOWNGRADE)
