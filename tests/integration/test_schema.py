"""The database holds the ledger's invariants itself, whatever the Python does."""

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from service.storage.migrate import downgrade_async, upgrade_async
from service.storage.programs import current_program, publish_new_version


async def _card(db: asyncpg.Connection, number: str = "4000000000001") -> int:
    card_id: int = await db.fetchval(
        "INSERT INTO cards (number) VALUES ($1) RETURNING card_id", number
    )
    return card_id


async def test_ledger_entries_are_append_only(db: asyncpg.Connection) -> None:
    card_id = await _card(db)
    await db.execute(
        "INSERT INTO ledger_entries (card_id, kind, points, reason, author)"
        " VALUES ($1, 'adjustment', 10, 'test', 'me')",
        card_id,
    )
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await db.execute("UPDATE ledger_entries SET points = 1000 WHERE card_id = $1", card_id)


async def test_ledger_entries_cannot_be_deleted(db: asyncpg.Connection) -> None:
    card_id = await _card(db)
    await db.execute(
        "INSERT INTO ledger_entries (card_id, kind, points) VALUES ($1, 'welcome', 200)", card_id
    )
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await db.execute("DELETE FROM ledger_entries WHERE card_id = $1", card_id)


async def test_lot_remaining_stays_within_its_points(db: asyncpg.Connection) -> None:
    card_id = await _card(db)
    now = datetime.now(UTC)
    lot_id = await db.fetchval(
        "INSERT INTO point_lots (card_id, points, remaining, activates_at, expires_at, source)"
        " VALUES ($1, 100, 100, $2, $3, 'accrual') RETURNING lot_id",
        card_id, now, now + timedelta(days=1),
    )  # fmt: skip
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("UPDATE point_lots SET remaining = -1 WHERE lot_id = $1", lot_id)


async def test_receipt_totals_must_add_up(db: asyncpg.Connection) -> None:
    await db.execute("INSERT INTO stores (store_id, region, timezone) VALUES ('s1', 'r', 'UTC')")
    version = await publish_new_version(db, {"name": "t"}, author="test")
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute(
            """
            INSERT INTO receipts (store_id, transaction_id, program_version, occurred_at,
                request_hash, subtotal, discount, points_redeemed, points_paid, amount_due,
                points_earned, lines, response)
            VALUES ('s1', 't1', $1, now(), '\\x00', 1000, 100, 0, 0, 800, 0, '[]', '{}')
            """,
            version,
        )


async def test_published_program_is_immutable_and_current(db: asyncpg.Connection) -> None:
    first = await publish_new_version(db, {"name": "one"}, author="test")
    second = await publish_new_version(db, {"name": "two"}, author="test")
    assert second == first + 1
    assert await current_program(db) == (second, {"name": "two"})
    with pytest.raises(asyncpg.RaiseError, match="immutable"):
        async with db.transaction():  # a savepoint: the test goes on after the error
            await db.execute(
                "UPDATE program_versions SET document = '{}' WHERE version = $1", first
            )
    actions = await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'program.publish'")
    assert actions >= 2


async def test_card_number_format_is_enforced(db: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("INSERT INTO cards (number) VALUES ('12ab')")


async def test_migrations_go_down_and_up_again(server_url: str) -> None:
    import uuid

    from tests.conftest import _with_database

    name = f"loyalty_mig_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = _with_database(server_url, name)
        await upgrade_async(url)
        await downgrade_async(url, "base")
        await upgrade_async(url)
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SELECT count(*) FROM ledger_entries") == 0
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
