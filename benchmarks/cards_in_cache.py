"""/v1/calculate as the cards in the cache grow (SPEC §8: 100,000 cards within 10% of 10).

    LOYALTY_BENCH_DATABASE_URL=postgresql://... LOYALTY_BENCH_REDIS_URL=redis://... \\
        .venv/bin/python -m benchmarks.cards_in_cache --seconds 3 --rounds 2

A database of its own on the given server (loyalty_bench_cards: the demo and 100,000
cards holding points), every card's state cached in Redis before the service starts
(read from the ledger by ``loyalty_card_state``, as a cache miss reads it), the service
with 2 workers, then wrk runs of the benchmark's 3-line sale (benchmarks/service.py's
``CARDS_LUA`` receipt) over the first 10, 1,000, 10,000 and 100,000 cards, in turn, the
order rotated each round; each run starts at a random card and steps through the set by
a stride prime to it, so a run meets as many different cards as it sends requests (up to
the set's size). Last, the cards' cached states are deleted and one run goes over all of
them: a cold cache, each request a miss read from Postgres. Prints req/s per set (median
of the rounds) and its share of the 10-card figure, and the workers' CPU per request
(their /proc stat around each run: steadier than req/s on a machine shared with other
work); ``--chart PATH`` draws both (SVG).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from benchmarks.fixtures import BENCH_CARDS, POS_KEY, prepare_database, sale_receipt
from service.storage.postgres.cards import card_state_from
from service.storage.postgres.pool import connect
from service.storage.redis.cache import CardCache, create_client

CARDS = 100_000
SETS = (10, 1_000, 10_000, 100_000)
WORKERS = 2

# The 3-line sale over `CARDS` cards: from a random card, by a stride prime to the set.
STRIDE_LUA = """
local f = io.open(os.getenv("BODY"), "r"); local template = f:read("*a"); f:close()
local cards = tonumber(os.getenv("CARDS"))
math.randomseed(os.time() + tonumber(os.getenv("SEED")))
local counter = math.random(cards)
local stride = 7919
local headers = {["Content-Type"] = "application/json",
                 ["Authorization"] = "Bearer " .. os.getenv("KEY")}
request = function()
  counter = (counter + stride) % cards
  local body = template:gsub("@CARD@", string.format("88%011d", counter))
  return wrk.format("POST", "/v1/calculate", headers, body)
end
"""

_MORE_CARDS = """
WITH new_cards AS (
    INSERT INTO cards (number, ledger_version)
    SELECT '88' || lpad(g::text, 11, '0'), 1 FROM generate_series($1::int, $2::int - 1) g
    RETURNING card_id
), lots AS (
    INSERT INTO point_lots (card_id, points, remaining, activates_at, expires_at, source)
    SELECT card_id, 1000000, 1000000, now() - interval '1 day', now() + interval '1 year',
           'adjustment' FROM new_cards
    RETURNING card_id, lot_id
)
INSERT INTO ledger_entries (card_id, kind, points, lot_id, reason, author)
SELECT card_id, 'adjustment', 1000000, lot_id, 'benchmark', 'bench' FROM lots
"""


async def _prepare(server: str, redis_url: str) -> str:
    dsn = await prepare_database(server, redis_url, "loyalty_bench_cards")
    conn = await connect(dsn)
    try:
        await conn.execute(_MORE_CARDS, BENCH_CARDS, CARDS)
        await conn.execute("VACUUM ANALYZE cards, point_lots, ledger_entries")
    finally:
        await conn.close()
    await _cache_all(dsn, redis_url)
    return dsn


async def _cache_all(dsn: str, redis_url: str) -> None:
    """Every card's state into Redis, as a calculation's cache miss would put it."""
    now = datetime.now(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    conn = await connect(dsn)
    try:
        window = await conn.fetchval(
            "SELECT (v.document -> 'tiers' ->> 'window_days')::int FROM program_current c"
            " JOIN program_versions v USING (version)"
        )
        since = None if window is None else now - timedelta(days=window)
        rows = await conn.fetch(
            "SELECT loyalty_card_state(card_id, $1, $2) FROM cards WHERE number LIKE '88%'",
            since,
            day,
        )
    finally:
        await conn.close()
    client = create_client(redis_url, 10.0, cluster=False)
    cache = CardCache(client)
    try:
        for start in range(0, len(rows), 16):  # within redis-py's connection pool
            chunk = rows[start : start + 16]
            await asyncio.gather(*(cache.put(card_state_from(r[0]), now.date()) for r in chunk))
    finally:
        await client.aclose()


async def _forget_all(redis_url: str) -> int:
    client = create_client(redis_url, 10.0, cluster=False)
    gone = 0
    try:
        keys = [key async for key in client.scan_iter(match="loyalty:card:*", count=5000)]
        for start in range(0, len(keys), 5000):
            gone += await client.delete(*keys[start : start + 5000])
    finally:
        await client.aclose()
    return gone


def _tree_cpu_s(root: int) -> float:
    """CPU seconds used so far by ``root`` and its children (the service's workers)."""
    children = Path(f"/proc/{root}/task/{root}/children").read_text().split()
    total = 0
    for pid in (root, *map(int, children)):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # a worker gone meanwhile
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def run(server: str, redis_url: str, seconds: int, rounds: int) -> dict[str, Any]:
    from benchmarks.service import _free_port, _lua, _process, _serve_env, _wait_ready, _wrk

    work = Path(tempfile.mkdtemp(prefix="loyalty-cards-"))
    dsn = asyncio.run(_prepare(server, redis_url))
    body = work / "sale.json"
    body.write_bytes(orjson.dumps(sale_receipt(None)))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    urls = {"database": dsn, "redis": redis_url}
    args = [sys.executable, "-m", "service.cli", "serve"]
    script = _lua(work, "stride.lua", STRIDE_LUA)
    runs: dict[int, list[float]] = {n: [] for n in SETS}
    cpu: dict[int, list[float]] = {n: [] for n in SETS}
    seed = iter(range(1, 1_000))

    def measure(cards: int) -> dict[str, float]:
        env = {"BODY": str(body), "KEY": POS_KEY, "CARDS": str(cards), "SEED": str(next(seed))}
        before = _tree_cpu_s(service.pid)
        out = _wrk(f"{base}/v1/calculate", script, seconds, env)
        out["cpu_us"] = (_tree_cpu_s(service.pid) - before) / (out["rps"] * seconds) * 1e6
        return out

    with _process(args, _serve_env(urls, work, port), work / "serve.log") as service:
        _wait_ready(f"{base}/readyz")
        measure(10)  # warm-up, not counted
        for r in range(rounds):
            for cards in SETS[r % len(SETS) :] + SETS[: r % len(SETS)]:
                out = measure(cards)
                if out["non_2xx"]:
                    raise RuntimeError(f"{out['non_2xx']:.0f} non-2xx at {cards} cards")
                runs[cards].append(out["rps"])
                cpu[cards].append(out["cpu_us"])
        forgotten = asyncio.run(_forget_all(redis_url))
        cold = measure(CARDS)
    shutil.rmtree(work, ignore_errors=True)
    median = {n: statistics.median(figures) for n, figures in runs.items()}
    cpu_median = {n: statistics.median(figures) for n, figures in cpu.items()}
    return {"runs": runs, "median": median, "cold": cold["rps"], "forgotten": forgotten,
            "cpu_us": cpu, "cpu_median_us": cpu_median, "cold_cpu_us": cold["cpu_us"],
            "seconds": seconds}  # fmt: skip


def line(result: dict[str, Any]) -> str:
    median, ten = result["median"], result["median"][10]
    sets = ", ".join(f"{n:,} cards {median[n]:.0f} req/s ({median[n] / ten:.0%})" for n in SETS)
    cpu = result["cpu_median_us"]
    per_request = ", ".join(f"{n:,} cards {cpu[n]:.0f}" for n in SETS)
    return (
        f"{sets}; a cold cache over {CARDS:,} cards {result['cold']:.0f} req/s"
        f" ({result['cold'] / ten:.0%}, every request a miss). The workers' CPU per request"
        f" (µs, medians): {per_request}; cold {result['cold_cpu_us']:.0f}"
    )


def chart(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ten = result["median"][10]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(SETS, [result["median"][n] / ten for n in SETS], marker="o", label="cards cached")
    ax.plot([CARDS], [result["cold"] / ten], marker="s", linestyle="", label="cold cache")
    cpu = result["cpu_median_us"]
    ax.plot(SETS, [cpu[10] / cpu[n] for n in SETS], marker="^", linestyle=":",
            label="10 cards' CPU per request / this CPU per request")  # fmt: skip
    ax.axhline(0.9, color="grey", linestyle="--", linewidth=1, label="SPEC §8: 90% of 10")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.2)
    ax.set_xlabel("cards the requests go over")
    ax.set_ylabel("req/s, share of 10 cards")
    ax.set_title("/v1/calculate as the cards grow (medians, runs in turn)")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="svg", metadata={"Date": None})
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chart", type=Path, help="write the chart (SVG) here")
    args = parser.parse_args()
    server = os.environ.get("LOYALTY_BENCH_DATABASE_URL")
    redis_url = os.environ.get("LOYALTY_BENCH_REDIS_URL")
    if not (server and redis_url):
        raise SystemExit("LOYALTY_BENCH_DATABASE_URL and LOYALTY_BENCH_REDIS_URL: the servers")
    result = run(server, redis_url, args.seconds, args.rounds)
    print(orjson.dumps(result, option=orjson.OPT_NON_STR_KEYS).decode())
    print(line(result))
    if args.chart is not None:
        chart(result, args.chart)


if __name__ == "__main__":
    main()
