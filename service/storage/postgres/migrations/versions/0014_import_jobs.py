"""Import jobs: a long import (a 1C export of 100,000 customers) run in the background,
its progress and report kept for the back office to read (``GET
/v1/admin/import/jobs/{id}``). ``updated_at`` moves with every chunk: a running job that
has not moved for a minute was left by a worker that stopped.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from service.storage.postgres.sqlscript import execute_script

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE import_jobs (
    job_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('customers', 'cards')),
    dry_run     boolean NOT NULL,
    author      text NOT NULL,
    status      text NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    total       integer NOT NULL CHECK (total >= 0),
    done        integer NOT NULL DEFAULT 0 CHECK (done BETWEEN 0 AND total),
    report      jsonb,
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script("DROP TABLE import_jobs;")
