"""Idempotency keys of back-office operations that move points or money.

An admin request carrying ``Idempotency-Key`` (Stripe's semantics) is recorded here in
the transaction that does its work: the first one claims the key, a concurrent copy
waits on the key's row and then reads the stored answer, a later retry reads it too,
and a different request under the same key is refused. Keys are scoped by the API key
that sent them, so two integrations cannot collide.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from service.storage.sqlscript import execute_script

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE idempotency_keys (
    scope        text NOT NULL,
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    operation    text NOT NULL,
    request_hash bytea NOT NULL,
    response     jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
"""

DOWNGRADE = r"""
DROP TABLE idempotency_keys;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
