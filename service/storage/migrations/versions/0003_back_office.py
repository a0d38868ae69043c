"""Back office: regions, manual adjustments, promo-code batches, webhooks, expiry notices.

Regions are filled in from the stores themselves (a trigger), so a store loaded by any
path names a region that exists. Adjustments keep who and why; their ledger entries
carry ``transaction_id = 'adj:<id>'``. Webhook deliveries are the fan-out of outbox
events to subscriptions, one row per (subscription, event), retried with backoff.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from service.storage.sqlscript import execute_script

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE regions (
    region_id  text PRIMARY KEY CHECK (region_id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    name       text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO regions (region_id) SELECT DISTINCT region FROM stores ON CONFLICT DO NOTHING;

CREATE FUNCTION loyalty_store_region() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO regions (region_id) VALUES (NEW.region) ON CONFLICT DO NOTHING;
    RETURN NEW;
END $$;
CREATE TRIGGER stores_region BEFORE INSERT OR UPDATE OF region ON stores
    FOR EACH ROW EXECUTE FUNCTION loyalty_store_region();
ALTER TABLE stores ADD FOREIGN KEY (region) REFERENCES regions;

-- Version numbers are never reused, not even those of deleted drafts: the audit log and
-- calculations name versions by number.
CREATE SEQUENCE program_versions_seq OWNED BY program_versions.version;
SELECT setval('program_versions_seq', greatest(max(version), 1), count(*) > 0)
    FROM program_versions;

CREATE INDEX program_versions_due ON program_versions (publish_at)
    WHERE status = 'draft' AND publish_at IS NOT NULL;

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
"""

DOWNGRADE = """
DROP TABLE expiry_notices, webhook_deliveries, webhook_subscriptions, promo_batches,
    adjustments;
DROP INDEX promo_codes_batch;
DROP INDEX program_versions_due;
DROP SEQUENCE program_versions_seq;
ALTER TABLE stores DROP CONSTRAINT stores_region_fkey;
DROP TRIGGER stores_region ON stores;
DROP FUNCTION loyalty_store_region();
DROP TABLE regions;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
