"""Wallets (SPEC §4 item 34): gift certificates and e-wallets that hold money in kopecks
and pay like money, beside points.

``wallets`` holds each wallet's balance under its row lock, as ``cards`` holds a card's;
``wallet_entries`` is its ledger: every movement (the sale of a certificate, a top-up,
a payment, a refund to it, its expiry, a replacement's transfer) is an entry, and the
balance is always their sum (storage/postgres/invariants.py checks it). A wallet is keyed
by its number, the distribution column past one primary (docs/scaling.md): its entries
and holds sit beside it. ``wallet_holds`` holds a wallet's money for a calculation as
``point_holds`` holds points (SPEC §3.5).

Beside them, for the chain's CRM (SPEC §4 item 37): ``birthday_notices`` keeps the year
each card's ``birthday`` event was sent for (one a year, whoever runs the scan), found
through an index on the customers' birthdays by month and day.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from service.storage.postgres.sqlscript import execute_script, load_functions

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE wallets (
    number       text PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('certificate', 'ewallet')),
    status       text NOT NULL CHECK (status IN ('issued', 'active', 'blocked', 'replaced',
                                                 'expired')),
    nominal      bigint CHECK (nominal > 0),  -- a certificate's face value; NULL: any
    balance      bigint NOT NULL DEFAULT 0 CHECK (balance >= 0),
    card_id      bigint REFERENCES cards,     -- an e-wallet's card
    batch        text,
    validity_days integer CHECK (validity_days > 0),  -- from its sale; NULL: the program's
    expires_at   timestamptz,
    replaced_by  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    activated_at timestamptz
);
CREATE INDEX wallets_batch ON wallets (batch) WHERE batch IS NOT NULL;
CREATE INDEX wallets_card ON wallets (card_id) WHERE card_id IS NOT NULL;
CREATE INDEX wallets_expiring ON wallets (expires_at) WHERE status = 'active' AND balance > 0;
CREATE SEQUENCE wallet_serial;

CREATE TABLE wallet_entries (
    number         text NOT NULL REFERENCES wallets,
    entry_id       bigint GENERATED ALWAYS AS IDENTITY,
    kind           text NOT NULL CHECK (kind IN ('sale', 'top_up', 'payment', 'refund',
                                                 'expiry', 'transfer')),
    amount         bigint NOT NULL CHECK (amount <> 0),
    store_id       text,
    transaction_id text,
    refund_id      text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (number, entry_id)
);
-- A till's sale or top-up of a wallet, once: its (store, transaction) answers a resend.
CREATE UNIQUE INDEX wallet_entries_till ON wallet_entries (number, store_id, transaction_id, kind)
    WHERE kind IN ('sale', 'top_up');
-- A sale's payment, found by its return.
CREATE INDEX wallet_entries_payment ON wallet_entries (store_id, transaction_id)
    WHERE kind = 'payment';
CREATE INDEX wallet_entries_created ON wallet_entries (created_at);

CREATE TABLE wallet_holds (
    number         text NOT NULL REFERENCES wallets,
    calculation_id text NOT NULL,
    store_id       text NOT NULL,
    amount         bigint NOT NULL CHECK (amount > 0),
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    taken_at       timestamptz,
    released_at    timestamptz,
    PRIMARY KEY (number, calculation_id)
);
CREATE INDEX wallet_holds_calculation ON wallet_holds (calculation_id);

CREATE TABLE birthday_notices (
    card_id bigint NOT NULL REFERENCES cards,
    year    integer NOT NULL,
    PRIMARY KEY (card_id, year)
);
CREATE INDEX customers_birthday_day ON customers (
    (extract(month FROM birthday)::int * 100 + extract(day FROM birthday)::int))
    WHERE birthday IS NOT NULL AND erased_at IS NULL;
"""


def upgrade() -> None:
    execute_script(UPGRADE)
    load_functions("loyalty_commit", "loyalty_commit_many")


def downgrade() -> None:
    # The commit bodies in the tree read the wallets: below this revision they fail until
    # it is applied again (see ../README.md: earlier bodies are not kept).
    execute_script(
        "DROP INDEX customers_birthday_day; DROP TABLE birthday_notices;"
        " DROP TABLE wallet_holds; DROP TABLE wallet_entries; DROP SEQUENCE wallet_serial;"
        " DROP TABLE wallets;"
    )
