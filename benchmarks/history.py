"""The ledger after a year (SPEC §8 "flat as the work grows", issue 21): what /v1/commit's
statement costs once the ledger holds millions of sales, against an empty one.

    LOYALTY_BENCH_DATABASE_URL=postgresql://... LOYALTY_BENCH_REDIS_URL=redis://... \\
        .venv/bin/python -m benchmarks.history [--sales 2000000] [--no-write]

(``make bench-history``; about ten minutes for two million sales here.)

1. A database of its own (``loyalty_bench_history``: the demo and benchmarks/ledger.py's
   1,000 cards of one open lot each).
2. The ledger alone (benchmarks/ledger.py: ``loyalty_commit_many`` from 4 connections,
   batches of 4, ``synchronous_commit=on``) writes sales to those cards for ``SECONDS``,
   ``ROUNDS`` times: sales per second, and the tables' and indexes' sizes.
3. A year of history is written beside them, in chunks, as a chain's year of sales
   leaves the ledger: ``--sales`` receipts over the last 365 days by ``--sales``/50 other
   cards (a customer a week), each with its accrual lot (spent and closed: no open
   lots), its accrual and redemption entries and its tier-spend row; then VACUUM
   ANALYZE, as autovacuum would have by then.
4. Step 2 again. The ratio of the two medians is the figure; the sizes say which
   indexes grew past memory, if any (``shared_buffers`` is printed beside them).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from benchmarks.docs import replace_section
from benchmarks.fixtures import bench_urls, prepare_database
from benchmarks.ledger import _LOT_CARDS_SQL, LOT_CARDS, _lot_card, _lot_template, _rate
from service.storage.postgres.pool import connect

DATABASE = "loyalty_bench_history"
SECONDS = 5
ROUNDS = 3
CHUNK = 250_000
SALES_PER_CARD = 50
TABLES = ("receipts", "ledger_entries", "point_lots", "tier_spend", "cards")

_HISTORY_CARDS = """
INSERT INTO cards (number, ledger_version)
SELECT '66' || lpad(g::text, 11, '0'), 1 FROM generate_series(0, $1::int - 1) g
"""

# One chunk of sales g in [$1, $2), of $3 in all, by the cards from $4 ($5 of them).
_HISTORY = """
WITH sales AS (
    SELECT g, $4::bigint + g % $5::bigint AS card_id,
           now() - interval '365 days' + (g::float8 / $3::float8) * interval '365 days' AS at
    FROM generate_series($1::bigint, $2::bigint - 1) g
), lots AS (
    INSERT INTO point_lots (card_id, points, remaining, activates_at, expires_at, source,
                            created_at)
    SELECT card_id, 50, 0, at + interval '14 days', at + interval '379 days', 'accrual', at
    FROM sales
    RETURNING card_id, lot_id, created_at AS at
), entries AS (
    INSERT INTO ledger_entries (card_id, kind, points, lot_id, store_id, transaction_id,
                                created_at)
    SELECT card_id, 'accrual', 50, lot_id, 'msk-001', 'H-' || lot_id, at FROM lots
    UNION ALL
    SELECT card_id, 'redemption', -50, lot_id, 'msk-001', 'S-' || lot_id,
           at + interval '21 days' FROM lots
), spend AS (
    INSERT INTO tier_spend (card_id, amount, occurred_at, store_id, transaction_id)
    SELECT card_id, 999000, at, 'msk-001', 'H-' || g FROM sales
)
INSERT INTO receipts (store_id, transaction_id, card_id, program_version, occurred_at,
                      committed_at, request_hash, subtotal, discount, points_redeemed,
                      points_paid, amount_due, points_earned, lines, response)
SELECT 'msk-001', 'H-' || g, card_id, $6::int, at, at, sha256(g::text::bytea), 1000000, 0,
       0, 0, 1000000, 50,
       jsonb_build_array(jsonb_build_object('line_id', '1', 'sku', 'SKU-' || g % 5000,
                                            'quantity', 1000, 'amount', 1000000)),
       '{}'::jsonb
FROM sales
"""

_SIZES = """
SELECT relname::text, pg_table_size(oid) AS heap, pg_indexes_size(oid) AS indexes
FROM pg_class WHERE relname = ANY($1::text[]) ORDER BY relname
"""


async def _sizes(conn: Any) -> dict[str, list[int]]:
    rows = await conn.fetch(_SIZES, list(TABLES))
    return {row["relname"]: [row["heap"], row["indexes"]] for row in rows}


async def _rates(dsn: str, template: dict[str, Any]) -> list[float]:
    """``ROUNDS`` runs after one not counted (the first run of a fresh database, or of a
    database just vacuumed, warms its caches and plans)."""
    await _rate(dsn, template, _lot_card(1), SECONDS)
    return [await _rate(dsn, template, _lot_card(1), SECONDS) for _ in range(ROUNDS)]


async def measure(server: str, redis_url: str, sales: int) -> dict[str, Any]:
    dsn = await prepare_database(server, redis_url, DATABASE)
    conn = await connect(dsn)
    try:
        await conn.execute(_LOT_CARDS_SQL, LOT_CARDS, [1])
        await conn.execute("VACUUM ANALYZE")
        template = await _lot_template(conn)
        out: dict[str, Any] = {"sales": sales}
        out["shared_buffers"] = await conn.fetchval("SHOW shared_buffers")
        out["before"] = {"rates": await _rates(dsn, template), "sizes": await _sizes(conn)}
        cards = max(sales // SALES_PER_CARD, 1)
        started = time.monotonic()
        first = await conn.fetchval("SELECT coalesce(max(card_id), 0) + 1 FROM cards")
        await conn.execute(_HISTORY_CARDS, cards)
        version = await conn.fetchval("SELECT version FROM program_current")
        for start in range(0, sales, CHUNK):
            await conn.execute(
                _HISTORY, start, min(start + CHUNK, sales), sales, first, cards, version
            )
            print(f"history: {min(start + CHUNK, sales):,} of {sales:,} sales", flush=True)
        await conn.execute("VACUUM ANALYZE")
        out["load_s"] = time.monotonic() - started
        out["after"] = {"rates": await _rates(dsn, template), "sizes": await _sizes(conn)}
        out["entries"] = await conn.fetchval("SELECT count(*) FROM ledger_entries")
        return out
    finally:
        await conn.close()


def _mb(size: int) -> str:
    return f"{size / 2**20:,.0f} MB"


def _runs(side: dict[str, Any]) -> str:
    return ", ".join(f"{rate:,.0f}" for rate in side["rates"])


def _reading(ratio: float) -> str:
    if ratio >= 0.9:
        return (
            "Within 10% of the empty ledger: a sale's statement reaches the history only "
            "through indexes keyed by card (its open lots, its tier window) or by the "
            "sale's own key, and the history's closed lots (remaining 0) stay out of the "
            "partial indexes of open lots. Neither partitioning nor a retention of closed "
            "lots is called for at this size."
        )
    return (
        f"{1 - ratio:.0%} slower than on the empty ledger: look at the indexes that "
        "outgrew shared_buffers above before partitioning or retiring closed lots."
    )


def section(result: dict[str, Any]) -> str:
    before = statistics.median(result["before"]["rates"])
    after = statistics.median(result["after"]["rates"])
    rows = "\n".join(
        f"| {table} | {_mb(result['before']['sizes'][table][0])} + "
        f"{_mb(result['before']['sizes'][table][1])} | "
        f"{_mb(result['after']['sizes'][table][0])} + {_mb(result['after']['sizes'][table][1])} |"
        for table in TABLES
        if table in result["after"]["sizes"]
    )
    return f"""## The ledger after a year

`make bench-history` (benchmarks/history.py), {datetime.now(UTC):%Y-%m-%d}, this 2-core box
shared with other work: the ledger alone (loyalty_commit_many, 4 connections, batches of 4,
synchronous_commit on) writing sales to 1,000 cards of one open lot, {ROUNDS} runs of
{SECONDS} s, on an empty ledger and then beside a year of history: {result["sales"]:,} sales
by {result["sales"] // SALES_PER_CARD:,} cards ({result["entries"]:,} ledger entries in all,
written in {result["load_s"]:.0f} s).

| | sales/s (median) | every run |
| --- | --- | --- |
| empty ledger | {before:,.0f} | {_runs(result["before"])} |
| after the year | {after:,.0f} ({after / before:.0%}) | {_runs(result["after"])} |

Tables and their indexes (heap + indexes), shared_buffers {result["shared_buffers"]}:

| table | empty | after the year |
| --- | --- | --- |
{rows}

{_reading(after / before)}
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sales", type=int, default=2_000_000)
    parser.add_argument("--no-write", action="store_true", help="print, write no file")
    args = parser.parse_args()
    server, redis_url = bench_urls()
    result = asyncio.run(measure(server, redis_url, args.sales))
    text = section(result)
    print(text)
    if not args.no_write:
        replace_section("The ledger after a year", text)


if __name__ == "__main__":
    main()
