"""Offline allowances (SPEC §3.5): points held for one till for a few hours, spent from
while it is offline.

An allowance is a hold (``point_holds``, its id ``a_...``) whose points its commits spend
down, so a hold may now reach 0 points (and is then taken). ``signing_keys`` keeps the
deployment's secrets, made on first use, so that every worker signs and checks the
allowance tokens alike with nothing to configure.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from service.storage.postgres.sqlscript import execute_script, load_functions

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE point_holds DROP CONSTRAINT point_holds_points_check;
ALTER TABLE point_holds ADD CONSTRAINT point_holds_points_check CHECK (points >= 0);
CREATE TABLE signing_keys (
    name       text PRIMARY KEY,
    secret     bytea NOT NULL CHECK (length(secret) >= 32),
    created_at timestamptz NOT NULL DEFAULT now()
);
"""

DOWNGRADE = """
DROP TABLE signing_keys;
DELETE FROM point_holds WHERE points = 0;
ALTER TABLE point_holds DROP CONSTRAINT point_holds_points_check;
ALTER TABLE point_holds ADD CONSTRAINT point_holds_points_check CHECK (points > 0);
"""


def upgrade() -> None:
    execute_script(UPGRADE)
    load_functions("loyalty_commit", "loyalty_commit_many")


def downgrade() -> None:
    execute_script(DOWNGRADE)
