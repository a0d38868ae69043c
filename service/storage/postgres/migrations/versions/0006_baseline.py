"""Baseline: the schema as revisions 0001-0006 left it, and every function from its source.

The ledger's tables (lots, entries, tier spend) are keyed by card first, so that the
ledger can be sharded by card (Citus distribution column ``card_id``). Invariants the
database can hold, it holds: checks, unique keys, foreign keys, append-only triggers on
the ledger, the adjustments and the audit log, immutable published programs. Regions
are filled in from the stores themselves (a trigger), so a store loaded by any path
names a region that exists. Adjustments keep who and why; their ledger entries carry
``transaction_id = 'adj:<id>'``. Webhook deliveries are the fan-out of outbox events to
subscriptions, one row per (subscription, event), retried with backoff. Idempotency keys
record the back office's operations that move points or money, scoped by the API key
that sent them (Stripe's ``Idempotency-Key`` semantics).

Functions are not written here: each has its one definition in
``service/storage/postgres/sql/<name>.sql``, and this revision loads every source there, as the
file stands (see ../README.md). A later revision that changes a function reloads its file.

This revision replaces revisions 0001-0006 (squashed before any deployment held data)
and keeps the last one's id, so that a database they made counts as at this revision
and revision 0007 brings its functions up to date.

Revision ID: 0006
Revises:
Create Date: 2026-12-07
"""

from service.storage.postgres.sqlscript import (
    drop_functions,
    execute_script,
    function_names,
    load_functions,
)

revision = "0006"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = r"""
CREATE TABLE regions (
    region_id  text PRIMARY KEY CHECK (region_id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    name       text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE stores (
    store_id    text PRIMARY KEY CHECK (store_id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    name        text NOT NULL DEFAULT '',
    region      text NOT NULL REFERENCES regions,
    timezone    text NOT NULL,
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER stores_region BEFORE INSERT OR UPDATE OF region ON stores
    FOR EACH ROW EXECUTE FUNCTION loyalty_store_region();

CREATE TABLE api_keys (
    key_id      text PRIMARY KEY CHECK (key_id ~ '^[a-z0-9]{8,32}$'),
    name        text NOT NULL,
    role        text NOT NULL CHECK (role IN ('admin', 'pos')),
    secret_hash bytea NOT NULL CHECK (length(secret_hash) = 32),
    store_ids   text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    CHECK (role = 'admin' OR cardinality(store_ids) > 0)
);

CREATE TABLE program_versions (
    version      integer PRIMARY KEY CHECK (version > 0),
    document     jsonb NOT NULL,
    status       text NOT NULL CHECK (status IN ('draft', 'published', 'retired')),
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    publish_at   timestamptz,
    published_at timestamptz,
    CHECK (status = 'draft' OR published_at IS NOT NULL)
);
-- Version numbers are never reused, not even those of deleted drafts: the audit log and
-- calculations name versions by number.
CREATE SEQUENCE program_versions_seq OWNED BY program_versions.version;
CREATE INDEX program_versions_due ON program_versions (publish_at)
    WHERE status = 'draft' AND publish_at IS NOT NULL;

CREATE TRIGGER program_versions_immutable BEFORE UPDATE ON program_versions
    FOR EACH ROW EXECUTE FUNCTION loyalty_program_immutable();
CREATE TRIGGER program_versions_no_delete BEFORE DELETE ON program_versions
    FOR EACH ROW WHEN (OLD.status <> 'draft') EXECUTE FUNCTION loyalty_forbid_change();

CREATE TABLE program_current (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version     integer NOT NULL REFERENCES program_versions,
    switched_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE customers (
    customer_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text,
    phone       text UNIQUE CHECK (phone ~ '^\+[0-9]{7,15}$'),
    email       text UNIQUE,
    birthday    date,
    attributes  jsonb NOT NULL DEFAULT '{}',
    segments    text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    erased_at   timestamptz
);

CREATE TABLE cards (
    card_id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number               text NOT NULL UNIQUE CHECK (number ~ '^[0-9]{8,19}$'),
    kind                 text NOT NULL DEFAULT 'physical' CHECK (kind IN ('physical', 'virtual')),
    status               text NOT NULL DEFAULT 'active'
                         CHECK (status IN ('active', 'blocked', 'inactive')),
    customer_id          bigint REFERENCES customers,
    referred_by          bigint REFERENCES cards,
    replaced_by          bigint REFERENCES cards,
    tier                 text,
    personal_discount_bp integer NOT NULL DEFAULT 0
                         CHECK (personal_discount_bp BETWEEN 0 AND 10000),
    purchase_count       integer NOT NULL DEFAULT 0 CHECK (purchase_count >= 0),
    debt                 bigint NOT NULL DEFAULT 0 CHECK (debt >= 0),
    ledger_version       bigint NOT NULL DEFAULT 0 CHECK (ledger_version >= 0),
    created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cards_customer ON cards (customer_id);

CREATE TABLE point_lots (
    card_id      bigint NOT NULL REFERENCES cards,
    lot_id       bigint GENERATED ALWAYS AS IDENTITY,
    points       bigint NOT NULL CHECK (points > 0),
    remaining    bigint NOT NULL CHECK (remaining >= 0 AND remaining <= points),
    activates_at timestamptz NOT NULL,
    expires_at   timestamptz,
    source       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (card_id, lot_id),
    CHECK (expires_at IS NULL OR expires_at > activates_at)
);
CREATE INDEX point_lots_open ON point_lots (card_id, expires_at) WHERE remaining > 0;
CREATE INDEX point_lots_expiry ON point_lots (expires_at) WHERE remaining > 0;

CREATE TABLE ledger_entries (
    card_id        bigint NOT NULL REFERENCES cards,
    entry_id       bigint GENERATED ALWAYS AS IDENTITY,
    kind           text NOT NULL CHECK (kind IN (
                       'accrual', 'redemption', 'expiration', 'refund_accrual',
                       'refund_redemption', 'cancel_accrual', 'cancel_redemption',
                       'adjustment', 'welcome', 'referral', 'debt')),
    points         bigint NOT NULL CHECK (points <> 0),
    lot_id         bigint,
    store_id       text,
    transaction_id text,
    refund_id      text,
    reason         text,
    author         text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (card_id, entry_id),
    FOREIGN KEY (card_id, lot_id) REFERENCES point_lots (card_id, lot_id)
);
CREATE INDEX ledger_entries_card_time ON ledger_entries (card_id, created_at);
CREATE INDEX ledger_entries_store_time ON ledger_entries (store_id, created_at);
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION loyalty_forbid_change();

CREATE TABLE tier_spend (
    card_id        bigint NOT NULL REFERENCES cards,
    spend_id       bigint GENERATED ALWAYS AS IDENTITY,
    amount         bigint NOT NULL,
    occurred_at    timestamptz NOT NULL,
    store_id       text,
    transaction_id text,
    PRIMARY KEY (card_id, spend_id)
);
CREATE INDEX tier_spend_card_time ON tier_spend (card_id, occurred_at);
CREATE TRIGGER tier_spend_append_only BEFORE UPDATE OR DELETE ON tier_spend
    FOR EACH ROW EXECUTE FUNCTION loyalty_forbid_change();

CREATE TABLE receipts (
    store_id        text NOT NULL REFERENCES stores,
    transaction_id  text NOT NULL CHECK (length(transaction_id) BETWEEN 1 AND 64),
    card_id         bigint REFERENCES cards,
    calculation_id  text,
    program_version integer NOT NULL REFERENCES program_versions,
    occurred_at     timestamptz NOT NULL,
    committed_at    timestamptz NOT NULL DEFAULT now(),
    request_hash    bytea NOT NULL,
    status          text NOT NULL DEFAULT 'committed' CHECK (status IN ('committed', 'cancelled')),
    subtotal        bigint NOT NULL CHECK (subtotal >= 0),
    discount        bigint NOT NULL CHECK (discount >= 0 AND discount <= subtotal),
    points_redeemed bigint NOT NULL CHECK (points_redeemed >= 0),
    points_paid     bigint NOT NULL CHECK (points_paid >= 0),
    amount_due      bigint NOT NULL CHECK (amount_due >= 0),
    points_earned   bigint NOT NULL CHECK (points_earned >= 0),
    lines           jsonb NOT NULL,
    response        jsonb NOT NULL,
    PRIMARY KEY (store_id, transaction_id),
    CHECK (subtotal = discount + points_paid + amount_due)
);
CREATE INDEX receipts_card_time ON receipts (card_id, committed_at);
CREATE INDEX receipts_time ON receipts (committed_at);

CREATE TABLE refunds (
    store_id       text NOT NULL,
    refund_id      text NOT NULL CHECK (length(refund_id) BETWEEN 1 AND 80),
    transaction_id text NOT NULL,
    card_id        bigint REFERENCES cards,
    request_hash   bytea NOT NULL,
    lines          jsonb NOT NULL,
    response       jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store_id, refund_id),
    FOREIGN KEY (store_id, transaction_id) REFERENCES receipts (store_id, transaction_id)
);

CREATE TABLE promo_codes (
    code           text PRIMARY KEY CHECK (code ~ '^[A-Z0-9_-]{2,64}$'),
    rule_ids       text[] NOT NULL CHECK (cardinality(rule_ids) > 0),
    program_version integer REFERENCES program_versions,
    batch_id       text,
    max_uses       integer CHECK (max_uses IS NULL OR max_uses > 0),
    uses           integer NOT NULL DEFAULT 0 CHECK (uses >= 0),
    per_card_limit integer CHECK (per_card_limit IS NULL OR per_card_limit > 0),
    valid_from     timestamptz,
    valid_to       timestamptz,
    revoked_at     timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (max_uses IS NULL OR uses <= max_uses),
    CHECK (valid_to IS NULL OR valid_from IS NULL OR valid_to > valid_from)
);

CREATE TABLE promo_code_uses (
    card_id        bigint REFERENCES cards,
    code           text NOT NULL,
    store_id       text NOT NULL,
    transaction_id text NOT NULL,
    used_at        timestamptz NOT NULL DEFAULT now(),
    released_at    timestamptz,
    PRIMARY KEY (code, store_id, transaction_id),
    -- Deferred: a commit records code usage before the receipt row that closes it.
    FOREIGN KEY (store_id, transaction_id) REFERENCES receipts (store_id, transaction_id)
        DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX promo_code_uses_card ON promo_code_uses (card_id, code);

CREATE TABLE campaign_budgets (
    rule_id text PRIMARY KEY,
    used    bigint NOT NULL DEFAULT 0 CHECK (used >= 0)
);

CREATE TABLE outbox (
    event_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    card_id      bigint,
    kind         text NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (event_id) WHERE published_at IS NULL;

CREATE TABLE audit_log (
    audit_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor      text NOT NULL,
    action     text NOT NULL,
    subject    text NOT NULL,
    details    jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION loyalty_forbid_change();

CREATE TABLE adjustments (
    adjustment_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    card_id       bigint NOT NULL REFERENCES cards,
    points        bigint NOT NULL CHECK (points <> 0),
    reason        text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    author        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX adjustments_card ON adjustments (card_id, adjustment_id);
CREATE TRIGGER adjustments_append_only BEFORE UPDATE OR DELETE ON adjustments
    FOR EACH ROW EXECUTE FUNCTION loyalty_forbid_change();

CREATE TABLE promo_batches (
    batch_id       text PRIMARY KEY,
    prefix         text NOT NULL,
    count          integer NOT NULL CHECK (count > 0),
    rule_ids       text[] NOT NULL,
    max_uses       integer,
    per_card_limit integer,
    valid_from     timestamptz,
    valid_to       timestamptz,
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz
);
CREATE INDEX promo_codes_batch ON promo_codes (batch_id, code) WHERE batch_id IS NOT NULL;

CREATE TABLE webhook_subscriptions (
    subscription_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url             text NOT NULL CHECK (url ~ '^https?://'),
    secret          text NOT NULL,
    events          text[] NOT NULL CHECK (cardinality(events) > 0),
    active          boolean NOT NULL DEFAULT true,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    subscription_id bigint NOT NULL REFERENCES webhook_subscriptions,
    event_id        bigint NOT NULL REFERENCES outbox,
    event           text NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    delivered_at    timestamptz,
    PRIMARY KEY (subscription_id, event_id, event)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';

-- One "points about to expire" notice per lot.
CREATE TABLE expiry_notices (
    card_id     bigint NOT NULL,
    lot_id      bigint NOT NULL,
    notified_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (card_id, lot_id),
    FOREIGN KEY (card_id, lot_id) REFERENCES point_lots (card_id, lot_id)
);

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

DOWNGRADE = """
DROP TABLE idempotency_keys, expiry_notices, webhook_deliveries, webhook_subscriptions,
    promo_batches, adjustments, audit_log, outbox, campaign_budgets, promo_code_uses,
    promo_codes, refunds, receipts, tier_spend, ledger_entries, point_lots, cards, customers,
    program_current, program_versions, api_keys, stores, regions;
"""


def upgrade() -> None:
    load_functions(*function_names())  # first: the schema's triggers name some of them
    execute_script(SCHEMA)


def downgrade() -> None:
    execute_script(DOWNGRADE)
    drop_functions(*function_names())
