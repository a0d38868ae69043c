"""Keys as a managed resource, four roles, and the cashier's consent records.

API keys get SPEC §3.1's roles (admin, marketing, analyst, pos; only POS keys are bound
to stores), a shown prefix to recognise a key by, where the key came from (``cli``:
``loyalty keys create``; ``api``: /v1/admin/keys; ``demo``: the demo data, never
accepted in production), who made it, an expiry and when it was last used.

``consents``: a customer's consent to mailings per channel, given or withdrawn, when and
where; append-only, the latest row per channel is the one in force.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from service.storage.postgres.sqlscript import execute_script

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys DROP CONSTRAINT api_keys_check;
ALTER TABLE api_keys
    ADD COLUMN prefix       text,
    ADD COLUMN origin       text NOT NULL DEFAULT 'cli' CHECK (origin IN ('cli', 'api', 'demo')),
    ADD COLUMN created_by   text,
    ADD COLUMN expires_at   timestamptz,
    ADD COLUMN last_used_at timestamptz,
    ADD CONSTRAINT api_keys_role_check
        CHECK (role IN ('admin', 'marketing', 'analyst', 'pos')),
    ADD CONSTRAINT api_keys_stores_check CHECK ((role = 'pos') = (cardinality(store_ids) > 0));
UPDATE api_keys SET origin = 'demo' WHERE name IN ('demo admin', 'demo pos');

CREATE TABLE consents (
    consent_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers,
    channel     text NOT NULL CHECK (channel IN ('sms', 'email', 'push', 'messengers', 'calls')),
    given       boolean NOT NULL,
    given_at    timestamptz NOT NULL,
    store_id    text,
    author      text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consents_customer ON consents (customer_id, channel, consent_id);
CREATE TRIGGER consents_append_only BEFORE UPDATE OR DELETE ON consents
    FOR EACH ROW EXECUTE FUNCTION loyalty_forbid_change();
"""

DOWNGRADE = """
DROP TABLE consents;
DELETE FROM api_keys WHERE role IN ('marketing', 'analyst');
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys DROP CONSTRAINT api_keys_stores_check;
ALTER TABLE api_keys
    DROP COLUMN prefix, DROP COLUMN origin, DROP COLUMN created_by, DROP COLUMN expires_at,
    DROP COLUMN last_used_at,
    ADD CONSTRAINT api_keys_role_check CHECK (role IN ('admin', 'pos')),
    ADD CONSTRAINT api_keys_check CHECK (role = 'admin' OR cardinality(store_ids) > 0);
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
