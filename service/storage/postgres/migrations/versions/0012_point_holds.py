"""Points held for a till (SPEC §3.5): a calculation may hold the points it shows.

``point_holds`` holds points of a card for one calculation until its commit takes them
(``taken_at``), the till releases them (``released_at``) or they lapse (``expires_at``).
What another till may spend is the card's balance less the holds of others
(sql/loyalty_held.sql); the commit functions check it so under the card's lock, and take
their own calculation's hold.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from service.storage.postgres.sqlscript import drop_functions, execute_script, load_functions

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE point_holds (
    calculation_id text PRIMARY KEY,
    card_id        bigint NOT NULL REFERENCES cards,
    store_id       text NOT NULL,
    points         bigint NOT NULL CHECK (points > 0),
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    taken_at       timestamptz,
    released_at    timestamptz
);
CREATE INDEX point_holds_open ON point_holds (card_id, expires_at)
    WHERE taken_at IS NULL AND released_at IS NULL;
"""


def upgrade() -> None:
    execute_script(UPGRADE)
    load_functions(
        "loyalty_held", "loyalty_hold", "loyalty_commit", "loyalty_commit_many",
        "loyalty_card_state",
    )  # fmt: skip


def downgrade() -> None:
    # The commit bodies in the tree read loyalty_held: below this revision they fail
    # until it is applied again (see ../README.md: earlier bodies are not kept).
    drop_functions("loyalty_hold", "loyalty_held")
    execute_script("DROP TABLE point_holds;")
