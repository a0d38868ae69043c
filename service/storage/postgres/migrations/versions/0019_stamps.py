"""Stamp cards (SPEC §4 item 36, issue 17): each card's progress on each stamp rule.

``card_stamps`` holds a card's stamps per rule, keyed by the rule's id so that progress
survives a new program version; loyalty_commit moves it under the card's lock by what
the sale added less what its free units used, and records the move in ``stamp_moves``,
which a cancel or a full return releases, taking the move back (the count may then go
below zero: stamps a free item used that the cancelled sale had given). A sale with a
stamp card to move goes through loyalty_commit one by one, not loyalty_commit_many's
set-based statement. loyalty_card_state returns the counts to the engine.

Downgrade drops the two tables; the function bodies in the tree read them, so below
this revision they fail until it is applied again (see ../README.md).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from service.storage.postgres.sqlscript import execute_script, load_functions

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE card_stamps (
    card_id bigint NOT NULL REFERENCES cards (card_id),
    rule_id text NOT NULL,
    have    integer NOT NULL,
    PRIMARY KEY (card_id, rule_id)
);
CREATE TABLE stamp_moves (
    store_id       text NOT NULL,
    transaction_id text NOT NULL,
    card_id        bigint NOT NULL REFERENCES cards (card_id),
    rule_id        text NOT NULL,
    added          integer NOT NULL CHECK (added >= 0),
    used           integer NOT NULL CHECK (used >= 0),
    moved_at       timestamptz NOT NULL,
    released_at    timestamptz,
    PRIMARY KEY (card_id, store_id, transaction_id, rule_id)
);
"""


def upgrade() -> None:
    execute_script(UPGRADE)
    load_functions("loyalty_card_state", "loyalty_commit", "loyalty_commit_many")


def downgrade() -> None:
    execute_script("DROP TABLE stamp_moves; DROP TABLE card_stamps;")
