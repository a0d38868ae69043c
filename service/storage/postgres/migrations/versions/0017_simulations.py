"""Simulation jobs: a period of receipts replayed under a draft program beside the
current one in the background (``POST /v1/admin/programs/{version}/simulate``), its
progress and result kept for the back office (``GET /v1/admin/simulations/{id}``).
``updated_at`` moves with the progress: a running job that has not moved for a minute
was left by a worker that stopped.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from service.storage.postgres.sqlscript import execute_script

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE simulation_jobs (
    job_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    draft_version   integer NOT NULL,
    current_version integer NOT NULL,
    author          text NOT NULL,
    status          text NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    total           integer NOT NULL CHECK (total >= 0),
    done            integer NOT NULL DEFAULT 0 CHECK (done BETWEEN 0 AND total),
    result          jsonb,
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script("DROP TABLE simulation_jobs;")
