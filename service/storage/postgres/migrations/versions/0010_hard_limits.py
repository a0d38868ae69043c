"""Hard limits and whole reversals: campaign budgets and rule use caps reserved under
lock at commit; a cancel or a full return reverses the referral bonuses too.

``rule_use_counts`` counts a capped rule's uses per period (``limits.period_key``: ``''``
for good, ``d2026-12-07``, ``w2026-11-30``, ``m2026-12``); a commit locks the rows its
sale needs (loyalty_commit_many: the whole batch's, in key order, after its cards) and
refuses the sale when a cap or a budget has no room left. ``rule_uses`` is each sale's
share of every capped or budgeted rule that applied to it: the use it counted (``period``
NULL: a budget only), the card's own uses (a per-card cap counts these under the card's
lock), and the budget it took and what returns gave back, so that a refund returns the
budget in proportion and a cancel or a full refund returns the use.

Ledger entries get ``refund_referral`` and ``cancel_referral``: a referral bonus taken
back, from either side, when the referee's first purchase is reversed whole.

Downgrade drops both tables and leaves the functions (the bodies before this revision
are no longer in the tree, see ../README.md).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from service.storage.postgres.sqlscript import execute_script, load_functions

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE rule_use_counts (
    rule_id text NOT NULL,
    period  text NOT NULL,
    uses    bigint NOT NULL DEFAULT 0 CHECK (uses >= 0),
    PRIMARY KEY (rule_id, period)
);

CREATE TABLE rule_uses (
    store_id        text NOT NULL,
    transaction_id  text NOT NULL,
    rule_id         text NOT NULL,
    card_id         bigint REFERENCES cards,
    period          text,
    budget_used     bigint NOT NULL DEFAULT 0 CHECK (budget_used >= 0),
    budget_returned bigint NOT NULL DEFAULT 0
        CHECK (budget_returned BETWEEN 0 AND budget_used),
    used_at         timestamptz NOT NULL,
    released_at     timestamptz,
    PRIMARY KEY (store_id, transaction_id, rule_id),
    -- Deferred: a commit records its uses before the receipt row that closes it.
    FOREIGN KEY (store_id, transaction_id) REFERENCES receipts (store_id, transaction_id)
        DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX rule_uses_card ON rule_uses (card_id, rule_id, period)
    WHERE card_id IS NOT NULL AND period IS NOT NULL AND released_at IS NULL;

ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_kind_check CHECK (kind IN (
    'accrual', 'redemption', 'expiration', 'refund_accrual', 'refund_redemption',
    'cancel_accrual', 'cancel_redemption', 'adjustment', 'welcome', 'referral', 'debt',
    'refund_referral', 'cancel_referral'));
"""

DOWNGRADE = """
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_kind_check CHECK (kind IN (
    'accrual', 'redemption', 'expiration', 'refund_accrual', 'refund_redemption',
    'cancel_accrual', 'cancel_redemption', 'adjustment', 'welcome', 'referral', 'debt'))
    NOT VALID;
DROP TABLE rule_uses;
DROP TABLE rule_use_counts;
"""


def upgrade() -> None:
    execute_script(UPGRADE)
    load_functions("loyalty_commit", "loyalty_commit_many", "loyalty_card_state")


def downgrade() -> None:
    execute_script(DOWNGRADE)
