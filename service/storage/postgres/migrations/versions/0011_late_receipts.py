"""Late receipts: when each program version was in force.

``program_switches`` records every switch of the current program (a publish, a scheduled
publish, a rollback): the version in force at a moment is the last one switched to at or
before it, and a receipt a till sends late is calculated under that version (SPEC §3.3).
The switch the database already made is its first row.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from service.storage.postgres.sqlscript import execute_script

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE program_switches (
    switched_at timestamptz NOT NULL,
    version     integer NOT NULL REFERENCES program_versions,
    PRIMARY KEY (switched_at, version)
);
INSERT INTO program_switches (switched_at, version)
SELECT switched_at, version FROM program_current;
"""

DOWNGRADE = """
DROP TABLE program_switches;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
