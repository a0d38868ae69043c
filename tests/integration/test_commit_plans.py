"""The set-based commit's plans stay on the keys however large the ledger grows (issue
21). Its function keeps one generic plan (loyalty_commit_many.sql); where a row estimate
was the planner's default, that plan updated the lots a batch takes by a hash join over a
scan of every lot in the ledger: 8.4 ms of a batch at 53,000 lots. The plans of a batch
are read here with auto_explain, on a ledger whose statistics say it holds many lots."""

from __future__ import annotations

import random
from datetime import timedelta

import asyncpg

from tests.integration.test_commit_set_based import NOW, _sale

LOTS = 20_000


async def _plans(conn: asyncpg.Connection, batch: list[dict[str, object]]) -> list[str]:
    logged: list[str] = []

    def keep(_: object, message: asyncpg.PostgresLogMessage) -> None:
        logged.append(message.message)

    conn.add_log_listener(keep)  # type: ignore[arg-type]
    try:
        await conn.execute(
            "LOAD 'auto_explain'; SET LOCAL auto_explain.log_min_duration = 0;"
            " SET LOCAL auto_explain.log_nested_statements = on;"
            " SET LOCAL client_min_messages = log"
        )
        outcomes = await conn.fetch("SELECT * FROM loyalty_commit_many($1::jsonb)", batch)
        await conn.execute("SET LOCAL client_min_messages = notice")
    finally:
        conn.remove_log_listener(keep)  # type: ignore[arg-type]
    assert [row[0]["outcome"] for row in outcomes] == ["committed"] * len(batch)
    return logged


async def test_a_batch_takes_its_lots_by_key_in_a_large_ledger(
    ledger_db: asyncpg.Connection,
) -> None:
    version = await ledger_db.fetchval("SELECT max(version) FROM program_versions")
    rng = random.Random(21)
    prefix = f"57{random.randrange(10**8):08d}"
    transaction = ledger_db.transaction()
    await transaction.start()
    try:
        # Many lots on a card of their own, so that the statistics see a large ledger.
        await ledger_db.execute(
            "WITH c AS (INSERT INTO cards (number) VALUES ($1) RETURNING card_id)"
            " INSERT INTO point_lots (card_id, points, remaining, activates_at, expires_at,"
            " source) SELECT c.card_id, 10, 10, $2, NULL, 'adjustment'"
            " FROM c, generate_series(1, $3)",
            f"{prefix}9",
            NOW - timedelta(days=30),
            LOTS,
        )
        await ledger_db.execute("ANALYZE point_lots")
        batch = []
        for k in range(4):
            number = f"{prefix}{k}"
            await ledger_db.execute(
                "WITH c AS (INSERT INTO cards (number) VALUES ($1) RETURNING card_id)"
                " INSERT INTO point_lots (card_id, points, remaining, activates_at,"
                " expires_at, source) SELECT card_id, 1000, 1000, $2, NULL, 'adjustment'"
                " FROM c",
                number,
                NOW - timedelta(days=30),
            )
            sale = _sale(rng, number, "msk-001", f"{prefix}-{k}", version)
            batch.append(
                {
                    **sale,
                    "points_redeemed": 10,
                    "points_paid": 1_000,
                    "amount_due": sale["subtotal"] - sale["discount"] - 1_000,
                    "promo_codes": [],
                    "budgets": [],
                    "rule_uses": [],
                    "referral_points": 0,
                    "calculation_id": None,
                }
            )
        plans = await _plans(ledger_db, batch)
    finally:
        await transaction.rollback()
    assert any("Update on point_lots" in plan for plan in plans), "no plan of the lots' update"
    scans = [plan for plan in plans if "Seq Scan on point_lots" in plan]
    assert not scans, scans[0]


async def test_a_redemption_that_leaves_its_lot_open_is_a_heap_only_update(
    ledger_db: asyncpg.Connection,
) -> None:
    """The lots' partial indexes are on ``is_open``, not on ``remaining`` (migration
    0022): taking part of a lot changes no indexed column, so Postgres writes it in place
    of a new row version with four index entries (point_lots' WAL per sale of the bench's
    commit run 1,078 -> 862 B); a lot taken whole leaves the indexes, as it must."""
    version = await ledger_db.fetchval("SELECT max(version) FROM program_versions")
    rng = random.Random(22)
    prefix = f"58{random.randrange(10**8):08d}"
    counts = (
        "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = 'point_lots'"
    )
    transaction = ledger_db.transaction()
    await transaction.start()
    try:
        batch = []
        for k, (points, redeem) in enumerate([(1000, 10), (1000, 300), (500, 20), (40, 40)]):
            number = f"{prefix}{k}"
            await ledger_db.execute(
                "WITH c AS (INSERT INTO cards (number) VALUES ($1) RETURNING card_id)"
                " INSERT INTO point_lots (card_id, points, remaining, activates_at,"
                " expires_at, source) SELECT card_id, $3, $3, $2, NULL, 'adjustment' FROM c",
                number,
                NOW - timedelta(days=30),
                points,
            )
            sale = _sale(rng, number, "msk-001", f"{prefix}-{k}", version)
            batch.append(
                {
                    **sale, "points_redeemed": redeem, "points_paid": redeem * 100,
                    "amount_due": sale["subtotal"] - sale["discount"] - redeem * 100,
                    "promo_codes": [], "budgets": [], "rule_uses": [], "referral_points": 0,
                    "calculation_id": None,
                }
            )  # fmt: skip
        updated, hot = await ledger_db.fetchrow(counts)
        outcomes = await ledger_db.fetch("SELECT * FROM loyalty_commit_many($1::jsonb)", batch)
        assert [row[0]["outcome"] for row in outcomes] == ["committed"] * 4
        updated_after, hot_after = await ledger_db.fetchrow(counts)
        open_lots = await ledger_db.fetch(
            "SELECT l.remaining FROM point_lots l JOIN cards c USING (card_id)"
            " WHERE c.number LIKE $1 AND l.source = 'adjustment' AND l.is_open"
            " ORDER BY c.number",
            f"{prefix}%",
        )
    finally:
        await transaction.rollback()
    assert [row["remaining"] for row in open_lots] == [990, 700, 480]
    assert updated_after - updated == 4
    assert hot_after - hot == 3  # the three left open; the one taken whole is not HOT
