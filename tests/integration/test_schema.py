"""The database holds the ledger's invariants itself, whatever the Python does; its
functions are the sources in service/storage/postgres/sql/, and the balance has one definition."""

import contextlib
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from service.domain.card import day_start
from service.rules.compiler import compile_program
from service.rules.demo import demo_program
from service.rules.document import parse_program
from service.storage.postgres.cards import load_card_state
from service.storage.postgres.migrate import downgrade_async, upgrade_async
from service.storage.postgres.programs import current_program, publish_new_version
from service.storage.postgres.sqlscript import function_names, function_source
from tests.conftest import _with_database


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
        card_id,
        now,
        now + timedelta(days=1),
    )
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


@contextlib.asynccontextmanager
async def _empty_database(server_url: str) -> AsyncIterator[str]:
    name = f"loyalty_mig_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(server_url, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_migrations_go_down_and_up_again(server_url: str) -> None:
    async with _empty_database(server_url) as url:
        await upgrade_async(url)
        await downgrade_async(url, "base")
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval(_OURS) == [], "the downgrade left functions behind"
            await upgrade_async(url)
            assert await conn.fetchval("SELECT count(*) FROM ledger_entries") == 0
            assert await conn.fetchval(_OURS) == function_names()
        finally:
            await conn.close()


async def test_a_failed_migration_run_leaves_nothing_behind(server_url: str) -> None:
    """The run is one transaction (migrations/env.py): the functions loaded and the tables
    made before the failing statement are gone with it."""
    async with _empty_database(server_url) as url:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("CREATE TABLE idempotency_keys (x int)")  # the baseline's last
            with pytest.raises(asyncpg.DuplicateTableError):
                await upgrade_async(url)
            assert await conn.fetchval(_OURS) == []
            assert await conn.fetchval("SELECT to_regclass('cards')") is None
            assert await conn.fetchval("SELECT to_regclass('alembic_version')") is None
        finally:
            await conn.close()


_OURS = """
SELECT coalesce(array_agg(p.proname::text ORDER BY p.proname), '{}') FROM pg_proc p
WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'loyalty%'
"""


async def test_every_function_source_compiles_on_the_head_schema(db: asyncpg.Connection) -> None:
    """Migrations load sources unchecked (sqlscript.load_functions); here each is created
    again with its body checked against the head schema, and the test rolled back."""
    assert await db.fetchval(_OURS) == function_names()
    await db.execute("SET LOCAL check_function_bodies = on")
    for name in function_names():
        await db.execute(function_source(name))


@pytest.mark.parametrize(
    "call",
    [
        "loyalty_balance(c.card_id, now())",
        "loyalty_tier_reached(c.card_id, c.tier, NULL, '[[\"a\", 0]]', 0)",
    ],
)
async def test_the_rule_functions_are_inlined_into_the_query_that_reads_them(
    db: asyncpg.Connection, call: str
) -> None:
    """loyalty_balance and loyalty_tier_reached must stay inlinable (LANGUAGE sql, STABLE,
    not STRICT, no SET, one SELECT): the commit statement reads them once per sale."""
    plan = await db.fetch(f"EXPLAIN SELECT c.card_id FROM cards c CROSS JOIN LATERAL {call} x")
    assert not any(f"Function Scan on {call.partition('(')[0]}" in row[0] for row in plan), plan


async def test_the_tier_reached_is_the_one_the_program_computes(db: asyncpg.Connection) -> None:
    """loyalty_tier_reached and its Python twin (CompiledProgram.tier_for_spend) agree on
    random spends around the demo program's thresholds, inside and outside the window;
    upgrade and downgrade follow the tiers' order, and a tier the program does not know
    is upgraded from, never downgraded."""
    program = compile_program(parse_program(demo_program()), version=1)
    levels = program.document.tiers.levels
    tiers = [[t.code, t.threshold] for t in levels]
    rank = {t.code: k for k, t in enumerate(levels, start=1)}
    rng = random.Random(12)
    window_start = datetime(2026, 6, 1, tzinfo=UTC)
    for k in range(40):
        card_id = await _card(db, f"67{k:011d}")
        current = rng.choice([None, "gone", *rank])
        counted = 0
        for _ in range(rng.randint(0, 3)):
            threshold = rng.choice(levels).threshold
            amount = max(threshold + rng.choice([-1, 0, 1, -threshold // 2]), 1)
            occurred = window_start + timedelta(days=rng.choice([-5, 0, 5]))
            counted += amount if occurred >= window_start else 0
            await db.execute(
                "INSERT INTO tier_spend (card_id, amount, occurred_at, store_id, transaction_id)"
                " VALUES ($1, $2, $3, NULL, $4)",
                card_id,
                amount,
                occurred,
                f"T-{k}-{_}",
            )
        more = rng.choice([0, 0, levels[-1].threshold])
        tier, upgrade, downgrade = await db.fetchrow(
            "SELECT r.tier, r.upgrade, r.downgrade FROM loyalty_tier_reached($1, $2, $3, $4, $5) r",
            card_id,
            current,
            window_start,
            tiers,
            more,
        )
        expected = program.tier_for_spend(counted + more)
        reached, held = rank.get(expected or "", 0), rank.get(current or "")
        assert tier == expected, (counted, more)
        assert upgrade == (reached > (held or 0)), (current, expected)
        assert downgrade == (held is not None and reached < held), (current, expected)


async def test_the_balance_is_the_one_the_calculation_sees(db: asyncpg.Connection) -> None:
    """loyalty_balance and its Python twin (CardState.balance and pending_points, over the
    state a calculation reads) agree on random cards: lots active, pending, expired,
    emptied, starting or ending right at the instant asked about; with and without debt."""
    rng = random.Random(11)
    at = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
    moments = [at - timedelta(days=30), at - timedelta(seconds=1), at,
               at + timedelta(microseconds=1), at + timedelta(days=7)]  # fmt: skip
    for k in range(40):
        number = f"66{k:04d}{rng.randrange(10**7):07d}"
        card_id = await db.fetchval(
            "INSERT INTO cards (number, debt) VALUES ($1, $2) RETURNING card_id",
            number,
            rng.choice([0, 0, 40, 3_000]),
        )
        for _ in range(rng.randint(0, 4)):
            activates = rng.choice(moments)
            expires = rng.choice([None, *(m for m in moments if m > activates)])
            points = rng.choice([10, 250, 1_000])
            await db.execute(
                "INSERT INTO point_lots (card_id, points, remaining, activates_at, expires_at,"
                " source) VALUES ($1, $2, $3, $4, $5, 'adjustment')",
                card_id,
                points,
                rng.choice([points, points // 2, 0]),
                activates,
                expires,
            )
        balance, pending = await db.fetchrow(
            "SELECT b.balance, b.pending FROM loyalty_balance($1, $2) b", card_id, at
        )
        state = await load_card_state(db, number, tier_window_start=None, day_start=day_start(at))
        assert state is not None
        assert (balance, pending) == (state.balance(at), state.pending_points(at)), number
