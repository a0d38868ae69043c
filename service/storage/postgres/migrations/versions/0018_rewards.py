"""The rewards catalogue (SPEC §4 item 31): rewards priced in points, redeemed at the
till in whole multiples of their price.

``rewards`` is the catalogue the back office manages (an entry is archived, never
deleted: sales name it). ``reward_redemptions`` records what each sale redeemed: the
points it charged, the discount it gave, the coupons it issued; a return reads it back.
A coupon is a single-use promo code bound to the card (``promo_codes.card_id``): the
commit refuses it for any other card. The points leave the card as ledger entries of
kind ``reward`` and come back, to the lots they came from, as ``refund_reward`` or
``cancel_reward``.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from service.storage.postgres.sqlscript import execute_script, load_functions

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_KINDS = """
    'accrual', 'redemption', 'expiration', 'refund_accrual', 'refund_redemption',
    'cancel_accrual', 'cancel_redemption', 'adjustment', 'welcome', 'referral', 'debt',
    'refund_referral', 'cancel_referral'"""

UPGRADE = f"""
CREATE TABLE rewards (
    code            text PRIMARY KEY CHECK (code ~ '^[A-Za-z0-9_-]{{1,64}}$'),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind            text NOT NULL CHECK (kind IN ('percent_off', 'amount_off', 'free_product',
                                                  'coupon')),
    price           bigint NOT NULL CHECK (price > 0),  -- points per multiple
    percent_bp      integer CHECK (percent_bp BETWEEN 1 AND 10000),
    amount          bigint CHECK (amount > 0),  -- kopecks per multiple
    sku             text,
    rule_id         text,  -- a coupon's promo rule
    coupon_days     integer CHECK (coupon_days > 0),
    valid_from      timestamptz,
    valid_to        timestamptz,
    max_per_receipt integer CHECK (max_per_receipt > 0),
    archived_at     timestamptz,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'percent_off') = (percent_bp IS NOT NULL)),
    CHECK ((kind = 'amount_off') = (amount IS NOT NULL)),
    CHECK ((kind = 'free_product') = (sku IS NOT NULL)),
    CHECK ((kind = 'coupon') = (rule_id IS NOT NULL AND coupon_days IS NOT NULL)),
    CHECK (valid_to IS NULL OR valid_from IS NULL OR valid_to > valid_from)
);

CREATE TABLE reward_redemptions (
    store_id       text NOT NULL,
    transaction_id text NOT NULL,
    reward_code    text NOT NULL REFERENCES rewards,
    card_id        bigint NOT NULL REFERENCES cards,
    kind           text NOT NULL,
    count          integer NOT NULL CHECK (count > 0),
    points         bigint NOT NULL CHECK (points > 0),
    discount       bigint NOT NULL CHECK (discount >= 0),
    coupons        text[] NOT NULL DEFAULT '{{}}',
    redeemed_at    timestamptz NOT NULL,
    PRIMARY KEY (store_id, transaction_id, reward_code),
    -- Deferred: a commit records its rewards before the receipt row that closes it.
    FOREIGN KEY (store_id, transaction_id) REFERENCES receipts (store_id, transaction_id)
        DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX reward_redemptions_card ON reward_redemptions (card_id);

ALTER TABLE promo_codes ADD COLUMN card_id bigint REFERENCES cards;
CREATE INDEX promo_codes_card ON promo_codes (card_id) WHERE card_id IS NOT NULL;

ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_kind_check CHECK (kind IN ({_KINDS},
    'reward', 'refund_reward', 'cancel_reward'));
"""

DOWNGRADE = f"""
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_kind_check CHECK (kind IN ({_KINDS}))
    NOT VALID;
DROP INDEX promo_codes_card;
ALTER TABLE promo_codes DROP COLUMN card_id;
DROP TABLE reward_redemptions;
DROP TABLE rewards;
"""


def upgrade() -> None:
    execute_script(UPGRADE)
    load_functions("loyalty_commit", "loyalty_commit_many")


def downgrade() -> None:
    # The commit bodies in the tree read the rewards: below this revision they fail until
    # it is applied again (see ../README.md: earlier bodies are not kept).
    execute_script(DOWNGRADE)
