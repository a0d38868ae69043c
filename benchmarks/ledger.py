"""The ledger alone: what Postgres on this machine can write of /v1/commit's work.

After the service's commit runs (benchmarks/service.py), the last sale it committed is
turned back into the ledger's parameters (its receipt row, its accrual lot, its tier
spend, the program's tiers: what ``service.storage.postgres.ledger.sale_json`` sends), and
``CLIENTS`` connections send that sale again and again for the given seconds, each with
a new transaction id and the next benchmark card, in batches of ``BATCH`` (card order,
one ``loyalty_commit_many`` statement each, as the service's group commit does), with
``synchronous_commit=on``. No HTTP and no Python service in front: the figure is the
ceiling the ledger sets for /v1/commit here, to set beside pgbench -N.

``measure_open_lots`` (SPEC §8: commit at 200 open lots per card within 10% of 1 lot)
writes the same kind of sale to cards with 1, 50 and 200 open lots each, a set of cards
per figure, in rounds that take the three in turn, and reports each figure's median:

    LOYALTY_BENCH_DATABASE_URL=postgresql://... .venv/bin/python -m benchmarks.ledger

(a server: it makes a database of its own there, loyalty_bench_lots, and writes its
section of docs/performance.md; --no-write prints only).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from service.storage.postgres.pool import connect

CLIENTS = 4  # the service's 2 workers x 2 batches in flight
BATCH = 4

_LAST_SALE = """
SELECT r.store_id, r.program_version, r.occurred_at, r.subtotal, r.discount, r.points_paid,
       r.amount_due, r.points_redeemed, r.points_earned, r.lines, r.response - 'card' AS response,
       encode(r.request_hash, 'hex') AS request_hash, t.amount AS tier_spend,
       l.activates_at, l.expires_at, v.document -> 'tiers' AS tiers
FROM receipts r
JOIN tier_spend t USING (card_id, store_id, transaction_id)
JOIN ledger_entries e ON e.card_id = r.card_id AND e.store_id = r.store_id
                     AND e.transaction_id = r.transaction_id AND e.kind = 'accrual'
JOIN point_lots l ON l.card_id = e.card_id AND l.lot_id = e.lot_id
JOIN program_versions v ON v.version = r.program_version
WHERE r.points_redeemed > 0
ORDER BY r.committed_at DESC LIMIT 1
"""


async def _template(conn: asyncpg.Connection) -> dict[str, Any]:
    row = await conn.fetchrow(_LAST_SALE)
    if row is None:
        raise RuntimeError("no committed sale with points to replay: run the commits first")
    sale = dict(row)
    tiers = sale.pop("tiers")
    return {
        **sale,
        "occurred_at": sale["occurred_at"].isoformat(),
        "activates_at": sale["activates_at"].isoformat(),
        "expires_at": None if sale["expires_at"] is None else sale["expires_at"].isoformat(),
        "tiers": [[level["code"], level["threshold"]] for level in tiers["levels"]],
        "tier_window_start": None,
        "calculation_id": None,
        "promo_codes": [],
        "budgets": [],
        "referral_points": 0,
    }


async def _client(
    dsn: str,
    template: dict[str, Any],
    card: Callable[[int], str],
    start: int,
    until: float,
    run: str,
) -> int:
    conn = await connect(dsn)
    sent = 0
    numbers = itertools.count(start)
    window = template.get("window_days")
    try:
        while time.monotonic() < until:
            now = time.time()
            start_of_window = None if window is None else _iso(now - window * 86_400)
            batch = sorted(
                (
                    {
                        **template,
                        "now": _iso(now),
                        "tier_window_start": start_of_window or template["tier_window_start"],
                        "card": card(k),
                        "transaction_id": f"{run}-{k}",
                    }
                    for k in itertools.islice(numbers, BATCH)
                ),
                key=lambda sale: sale["card"],
            )
            rows = await conn.fetch("SELECT * FROM loyalty_commit_many($1::jsonb)", batch)
            if any(row[0]["outcome"] != "committed" for row in rows):
                raise RuntimeError(f"the ledger refused a replayed sale: {rows[0][0]}")
            sent += len(rows)
    finally:
        await conn.close()
    return sent


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


async def _measure(dsn: str, cards: int, seconds: int) -> float:
    conn = await connect(dsn)
    try:
        template = await _template(conn)
    finally:
        await conn.close()
    return await _rate(dsn, template, lambda k: f"88{k % cards:011d}", seconds)


async def _rate(
    dsn: str, template: dict[str, Any], card: Callable[[int], str], seconds: int
) -> float:
    run = f"ledger-{time.time_ns()}"
    started = time.monotonic()
    until = started + seconds
    counts = await asyncio.gather(
        *(_client(dsn, template, card, i * 10_000_000, until, run) for i in range(CLIENTS))
    )
    return sum(counts) / (time.monotonic() - started)


def measure_ledger(dsn: str, cards: int, seconds: int) -> float:
    """Sales per second the ledger alone writes (see the module's docstring)."""
    return asyncio.run(_measure(dsn, cards, seconds))


# The open-lots measure: 1,000 cards per figure (the 4 clients' batches of 4 rarely meet
# on a card), each card as a customer who shops weekly leaves it. One large lot expiring
# first, which every sale spends from (so the open lots are not spent away during the
# run), then 100-point lots expiring later, all active; one tier-spend row per lot, in
# the tier window. Each sale then adds a pending lot and a spend row, as a real one. The
# lots and rows of all the cards are written in random order, as a year of sales leaves
# them: a card's lots lie on pages of their own whatever their number (written card by
# card, the 1-lot cards' lots shared a few pages, which a sale then found in cache).
LOTS_PER_CARD = (1, 50, 200)
LOT_CARDS = 1_000

_LOT_CARDS_SQL = """
WITH new_cards AS (
    INSERT INTO cards (number, ledger_version)
    SELECT '77' || lpad(s.lots::text, 3, '0') || lpad(g::text, 8, '0'), 1
    FROM generate_series(0, $1::int - 1) g, unnest($2::int[]) s(lots)
    ORDER BY g, s.lots
    RETURNING card_id, substr(number, 3, 3)::int AS lots
), lots AS (
    INSERT INTO point_lots (card_id, points, remaining, activates_at, expires_at, source)
    SELECT card_id, p.points, p.points, now() - (i + 1) * interval '1 day',
           now() + interval '300 days' + i * interval '1 hour', 'adjustment'
    FROM new_cards, generate_series(0, lots - 1) i,
         LATERAL (SELECT CASE WHEN i = 0 THEN 1000000 ELSE 100 END AS points) p
    ORDER BY random()
    RETURNING card_id, lot_id, points
), spends AS (
    INSERT INTO tier_spend (card_id, amount, occurred_at)
    SELECT card_id, 10000, now() - (i + 1) * interval '1 day'
    FROM new_cards, generate_series(0, lots - 1) i
    ORDER BY random()
)
INSERT INTO ledger_entries (card_id, kind, points, lot_id, reason, author)
SELECT card_id, 'adjustment', points, lot_id, 'benchmark', 'bench' FROM lots
"""


def _lot_card(lots: int) -> Callable[[int], str]:
    return lambda k: f"77{lots:03d}{k % LOT_CARDS:08d}"


async def _lot_template(conn: asyncpg.Connection) -> dict[str, Any]:
    """A plain card sale as the service sends it: 3 lines' worth, 10 points redeemed, 50
    earned (pending 14 days, then a year), a tier spend, the current program's tiers
    over its window (moving with each batch's time)."""
    version, tiers = await conn.fetchrow(
        "SELECT v.version, v.document -> 'tiers' FROM program_current c"
        " JOIN program_versions v USING (version)"
    )
    now = datetime.now(UTC)
    return {
        "store_id": "msk-001", "program_version": version, "occurred_at": now.isoformat(),
        "subtotal": 1_000_000, "discount": 0, "points_paid": 1_000, "amount_due": 999_000,
        "points_redeemed": 10, "points_earned": 50, "lines": [], "response": {},
        "request_hash": "00" * 32, "tier_spend": 999_000,
        "activates_at": (now + timedelta(days=14)).isoformat(),
        "expires_at": (now + timedelta(days=379)).isoformat(),
        "tiers": [[level["code"], level["threshold"]] for level in tiers["levels"]],
        "window_days": tiers.get("window_days"), "tier_window_start": None,
        "calculation_id": None, "promo_codes": [], "budgets": [], "referral_points": 0,
    }  # fmt: skip


async def _measure_open_lots(dsn: str, seconds: int, rounds: int) -> dict[str, Any]:
    conn = await connect(dsn)
    try:
        await conn.execute(_LOT_CARDS_SQL, LOT_CARDS, list(LOTS_PER_CARD))
        await conn.execute("VACUUM ANALYZE cards, point_lots, tier_spend, ledger_entries")
        template = await _lot_template(conn)
    finally:
        await conn.close()
    runs: dict[int, list[float]] = {lots: [] for lots in LOTS_PER_CARD}
    for r in range(rounds):  # each round starts with the next figure: none always first
        for lots in LOTS_PER_CARD[r % 3 :] + LOTS_PER_CARD[: r % 3]:
            runs[lots].append(await _rate(dsn, template, _lot_card(lots), seconds))
    return {
        "runs": {str(lots): figures for lots, figures in runs.items()},
        "median": {str(lots): statistics.median(figures) for lots, figures in runs.items()},
    }


def measure_open_lots(dsn: str, seconds: int, rounds: int = 3) -> dict[str, Any]:
    """Sales per second of the ledger alone at 1, 50 and 200 open lots per card (see the
    module's docstring): every round's figures and each figure's median."""
    return asyncio.run(_measure_open_lots(dsn, seconds, rounds))


def open_lots_line(result: dict[str, Any]) -> str:
    """The figures side by side, each a share of the 1-lot figure."""
    median = result["median"]
    one = median["1"]
    return ", ".join(
        f"{lots} open lot{'s' if lots > 1 else ''} per card {median[str(lots)]:.0f} sales/s"
        f" ({median[str(lots)] / one:.0%})"
        for lots in LOTS_PER_CARD
    )


COMMAND = (
    "LOYALTY_BENCH_DATABASE_URL=postgresql://... .venv/bin/python -m benchmarks.ledger"
    " --seconds 5 --rounds 5"
)


def open_lots_section(result: dict[str, Any], seconds: int, server: str) -> str:
    rounds = "; ".join(
        f"{lots} open lots: " + ", ".join(f"{figure:.0f}" for figure in figures)
        for lots, figures in result["runs"].items()
    )
    return f"""## Commit against open lots per card

Reproduce with `{COMMAND}` (written by it; `make bench` measures the same in its run).
The ledger alone (loyalty_commit_many from {CLIENTS} connections, batches of {BATCH}, no
HTTP) writing sales of 10 points redeemed and 50 earned to {LOT_CARDS:,} cards with 1, 50
and 200 open lots each (and as many tier-spend rows in the window), {seconds} s a run, the
three in turn each round; Postgres {server}. Medians: {open_lots_line(result)}. Every
round, sales/s: {rounds}.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description="the ledger alone at 1, 50, 200 open lots")
    parser.add_argument("--seconds", type=int, default=5, help="length of each load run")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; medians reported")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    server = os.environ.get("LOYALTY_BENCH_DATABASE_URL")
    redis = os.environ.get("LOYALTY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
    if not server:
        raise SystemExit("LOYALTY_BENCH_DATABASE_URL: a Postgres server for the bench")
    from benchmarks.docs import replace_section
    from benchmarks.fixtures import prepare_database

    dsn = asyncio.run(prepare_database(server, redis, "loyalty_bench_lots"))
    result = measure_open_lots(dsn, args.seconds, args.rounds)
    version = asyncio.run(_server_version(dsn))
    text = open_lots_section(result, args.seconds, version)
    print(text)
    if not args.no_write:
        replace_section("Commit against open lots per card", text)


async def _server_version(dsn: str) -> str:
    conn = await connect(dsn)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
