"""A commit's cost independent of the card's history: running figures on the card row.

Every earning sale leaves a lot open for a year and a tier-spend row in the window, and
the commits read them all, the balance twice (the check and the answer) and the
window's spend once: 4,132 sales/s at 40 open lots per card, 2,732 at 85 (the ledger
alone, docs/performance.md). The card row, which every commit locks and rewrites, now
keeps figures settled as of a time:

- ``points_at``, ``points_active``, ``points_pending``: the remaining points of the
  card's lots active at ``points_at``, and of those not active yet;
- ``spend_from``, ``spend``: its tier spend dated ``spend_from`` or later
  (``-infinity``: all of it).

A commit settles them at its own time; loyalty_balance and loyalty_tier_reached move
them from there to the time (the window) asked about by the lots and rows in between
only: those that activated or expired since the card's last sale, found through the new
index ``point_lots_activation`` and ``point_lots_open``, and the spend rows that left
the window. Every write of a lot or a spend row keeps them exact by trigger
(loyalty_lot_figures, loyalty_spend_figures), but the set-based commit's statement,
which sets them itself. ``loyalty_lots_to_take`` names the lots a redemption takes,
stopping at the last one it needs, for loyalty_take_points and the set-based commit;
``point_lots_open`` gains ``lot_id``, so that its order is the order lots are taken in.

Existing cards are settled here, at the migration's time. Downgrade drops the figures,
their triggers and the new index, and gives point_lots_open back its two columns; the
function bodies in the tree read the figures, so below this revision they fail until it
is applied again (see ../README.md).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from service.storage.postgres.sqlscript import drop_functions, execute_script, load_functions

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# The trigger functions are loaded before this (they exist before their triggers).
UPGRADE = """
ALTER TABLE cards
    ADD COLUMN points_at      timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN points_active  bigint NOT NULL DEFAULT 0,
    ADD COLUMN points_pending bigint NOT NULL DEFAULT 0,
    ADD COLUMN spend_from     timestamptz NOT NULL DEFAULT '-infinity',
    ADD COLUMN spend          bigint NOT NULL DEFAULT 0;
UPDATE cards c SET points_active = l.active, points_pending = l.pending
FROM (SELECT card_id,
             coalesce(sum(remaining) FILTER (
                 WHERE activates_at <= now() AND (expires_at IS NULL OR expires_at > now())),
                 0) AS active,
             coalesce(sum(remaining) FILTER (WHERE activates_at > now()), 0) AS pending
      FROM point_lots WHERE remaining > 0 GROUP BY card_id) l
WHERE c.card_id = l.card_id;
UPDATE cards c SET spend = s.spend
FROM (SELECT card_id, sum(amount) AS spend FROM tier_spend GROUP BY card_id) s
WHERE c.card_id = s.card_id;

CREATE INDEX point_lots_activation ON point_lots (card_id, activates_at) WHERE remaining > 0;
-- The order a redemption takes lots in, whole (loyalty_lots_to_take reads the first few):
-- on (card_id, expires_at) alone an incremental sort read 33 lots of a 200-lot card
-- before the first came out.
DROP INDEX point_lots_open;
CREATE INDEX point_lots_open ON point_lots (card_id, expires_at, lot_id) WHERE remaining > 0;

-- Per statement, over its rows (transition tables); off while loyalty.figures is 'kept':
-- the set-based commit's statement sets the figures itself.
CREATE TRIGGER point_lots_figures_insert AFTER INSERT ON point_lots
    REFERENCING NEW TABLE AS lots_now FOR EACH STATEMENT
    WHEN (current_setting('loyalty.figures', true) IS DISTINCT FROM 'kept')
    EXECUTE FUNCTION loyalty_lot_figures();
CREATE TRIGGER point_lots_figures_update AFTER UPDATE ON point_lots
    REFERENCING OLD TABLE AS lots_before NEW TABLE AS lots_now FOR EACH STATEMENT
    WHEN (current_setting('loyalty.figures', true) IS DISTINCT FROM 'kept')
    EXECUTE FUNCTION loyalty_lot_figures();
CREATE TRIGGER point_lots_figures_delete AFTER DELETE ON point_lots
    REFERENCING OLD TABLE AS lots_before FOR EACH STATEMENT
    WHEN (current_setting('loyalty.figures', true) IS DISTINCT FROM 'kept')
    EXECUTE FUNCTION loyalty_lot_figures();
CREATE TRIGGER tier_spend_figures AFTER INSERT ON tier_spend
    REFERENCING NEW TABLE AS spend_added FOR EACH STATEMENT
    WHEN (current_setting('loyalty.figures', true) IS DISTINCT FROM 'kept')
    EXECUTE FUNCTION loyalty_spend_figures();
"""

DOWNGRADE = """
DROP TRIGGER tier_spend_figures ON tier_spend;
DROP TRIGGER point_lots_figures_delete ON point_lots;
DROP TRIGGER point_lots_figures_update ON point_lots;
DROP TRIGGER point_lots_figures_insert ON point_lots;
DROP INDEX point_lots_activation;
DROP INDEX point_lots_open;
CREATE INDEX point_lots_open ON point_lots (card_id, expires_at) WHERE remaining > 0;
ALTER TABLE cards DROP COLUMN points_at, DROP COLUMN points_active,
    DROP COLUMN points_pending, DROP COLUMN spend_from, DROP COLUMN spend;
"""


def upgrade() -> None:
    # loyalty_tier_reached answers a column more (``spend``): a new row type to Postgres.
    drop_functions("loyalty_tier_reached")
    load_functions(
        "loyalty_lot_figures", "loyalty_spend_figures", "loyalty_lots_to_take",
        "loyalty_balance", "loyalty_tier_reached", "loyalty_take_points", "loyalty_commit",
        "loyalty_commit_many",
    )  # fmt: skip
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
    drop_functions("loyalty_lot_figures", "loyalty_spend_figures", "loyalty_lots_to_take")
