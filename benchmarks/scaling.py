"""Flat as the work grows (SPEC §8, issue 21): /v1/calculate as the cards in the cache,
the rules and the stores pile up, and /v1/commit's ledger as the open lots per card do.

    LOYALTY_BENCH_DATABASE_URL=postgresql://... LOYALTY_BENCH_REDIS_URL=redis://... \\
        .venv/bin/python -m benchmarks.scaling [--cards 10,1000,10000,100000] [--no-write]

(``make bench-scaling``; about five minutes here, most of it filling the cache.)

1. A database of its own on that server (``loyalty_bench_scaling``: the demo, the
   benchmark's cards, and as many more cards as the largest figure asks, each holding a
   lot of points) and the given Redis database, flushed.
2. The real app in-process (lifespan on, against them), driven by ``CONCURRENCY``
   requests in flight through ASGI (benchmarks/profile_calculate.py): no network, no
   HTTP parser, so the figure is the service's own CPU per request.
3. Every card's state put in the cache (through the service's own miss path), then the
   benchmark's receipt calculated for cards drawn at random from the first 10, 1,000,
   10,000 and 100,000, in rounds that take the sizes in turn; each size's median CPU µs
   per request, and its ratio to 10 cards. Then cards never read before (a miss each:
   the state read from Postgres and cached).
4. The same at 1,000 cards under a program of 5,000 rules (benchmarks/fixtures.py's idle
   rules, a fifth of them limited to stores) with 2,000 stores, against the demo.
5. The ledger alone at 1, 50 and 200 open lots per card (benchmarks/ledger.py).

Each figure gets an SVG chart in docs/charts/ and the section "Flat as the work grows"
of docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from benchmarks.docs import replace_section
from benchmarks.fixtures import (
    _idle_rule,
    add_cards,
    bench_urls,
    calculate_body,
    in_force_before_the_receipts,
    prepare_database,
)
from benchmarks.ledger import measure_open_lots, open_lots_line
from benchmarks.profile_calculate import CONCURRENCY, asgi_post
from service import kernels
from service.api.app import create_app
from service.background import load_program
from service.rules.demo import demo_program
from service.rules.document import parse_program
from service.settings import Settings
from service.storage.postgres.pool import connect
from service.storage.postgres.programs import publish_new_version
from service.storage.redis.cache import DECODED_STATES_KEPT
from service.usecases.admin_programs import declared_codes

DATABASE = "loyalty_bench_scaling"
CHARTS = Path(__file__).resolve().parent.parent / "docs" / "charts"
SIZES = (10, 1_000, 10_000, 100_000)
ROUNDS = 3
REQUESTS = 1_200  # per size and round
COLD = 600  # cards read once each, per round
STORES = 2_000
RULES = 5_000
FILL_TASKS = 32


def _number(i: int) -> str:
    return "77" + str(i).zfill(11)


async def _more_cards(url: str, count: int) -> None:
    """``count`` cards 77000000000000.. beside the benchmark's, a lot of points each."""
    conn = await connect(url)
    try:
        await add_cards(conn, "77", count, 100_000)
        await conn.execute("ANALYZE cards; ANALYZE point_lots; ANALYZE ledger_entries")
    finally:
        await conn.close()


async def _more_stores(url: str, count: int) -> None:
    conn = await connect(url)
    try:
        await conn.execute(
            "INSERT INTO regions (region_id) VALUES ('bench') ON CONFLICT DO NOTHING"
        )
        await conn.execute(
            "INSERT INTO stores (store_id, region, timezone) SELECT 'bench-' || g, 'bench',"
            " 'Europe/Moscow' FROM generate_series(1, $1) g",
            count,
        )
    finally:
        await conn.close()


def _bodies(template: dict[str, Any], numbers: Sequence[str]) -> list[bytes]:
    return [orjson.dumps({**template, "card": number}) for number in numbers]


async def _cpu_per_request(app: Any, bodies: list[bytes]) -> float:
    """CPU µs per request over ``bodies``, ``CONCURRENCY`` in flight."""
    queue = iter(bodies)

    async def worker() -> None:
        for body in queue:
            status = await asgi_post(app, "/v1/calculate", body)
            assert status == 200, status

    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return (time.process_time() - started) / len(bodies) * 1e6


async def _fill(services: Any, numbers: Sequence[str]) -> float:
    """Every card's state read through the service's miss path and cached; seconds."""
    program, now = services.programs.current, datetime.now(UTC)
    queue = iter(numbers)

    async def worker() -> None:
        for number in queue:
            assert await services.cards.get(number, now, program) is not None, number

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(FILL_TASKS)))
    return time.monotonic() - started


async def measure(server_url: str, redis_url: str, sizes: Sequence[int]) -> dict[str, Any]:
    url = await prepare_database(server_url, redis_url, DATABASE)
    largest = max(sizes)
    cold_cards = ROUNDS * COLD
    await _more_cards(url, largest + cold_cards)
    os.environ["LOYALTY_DATABASE_URL"], os.environ["LOYALTY_REDIS_URL"] = url, redis_url
    kernels.warm_up()
    template = orjson.loads(calculate_body())
    warm = [_number(i) for i in range(largest)]
    cold = [_number(largest + i) for i in range(cold_cards)]
    rng = random.Random(20261207)
    out: dict[str, Any] = {"sizes": list(sizes), "cards": {}, "rules": {}}
    app = create_app(Settings())
    async with app.router.lifespan_context(app):
        services = app.state.services
        out["fill_s"] = await _fill(services, warm)
        await _cpu_per_request(app, _bodies(template, warm[:200]))  # warm the code paths
        figures: dict[int, list[float]] = {size: [] for size in sizes}
        cold_figures = []
        for round_ in range(ROUNDS):
            for size in sizes:
                drawn = [warm[rng.randrange(size)] for _ in range(REQUESTS)]
                figures[size].append(await _cpu_per_request(app, _bodies(template, drawn)))
            mine = cold[round_ * COLD : (round_ + 1) * COLD]
            cold_figures.append(await _cpu_per_request(app, _bodies(template, mine)))
        out["cards"] = {str(size): statistics.median(v) for size, v in figures.items()}
        out["cards"]["cold"] = statistics.median(cold_figures)

        # 5,000 rules over 2,000 stores against the demo, 1,000 cards, taken in turn:
        # each turn publishes its program anew (the receipts' time picks the version)
        thousand = warm[:1_000]
        await _more_stores(url, STORES)
        programs = {"demo": demo_program(), f"{RULES:,} rules, {STORES:,} stores": _many()}
        rule_figures: dict[str, list[float]] = {name: [] for name in programs}
        for _ in range(ROUNDS):
            for name, document in programs.items():
                await _publish(url, document)
                await load_program(services)
                drawn = [thousand[rng.randrange(1_000)] for _ in range(REQUESTS)]
                rule_figures[name].append(await _cpu_per_request(app, _bodies(template, drawn)))
        out["rules"] = {name: statistics.median(v) for name, v in rule_figures.items()}
    return out


def _many() -> dict[str, Any]:
    """The demo grown to ``RULES`` rules that the receipt cannot touch, a fifth of them
    limited to one of the ``STORES`` added stores."""
    document = demo_program()
    idle = [_idle_rule(i) for i in range(RULES - len(document["rules"]))]
    for i, rule in enumerate(idle):
        if "stores" in rule["target"]:
            rule["target"]["stores"] = [f"bench-{i % STORES + 1}"]
    document["rules"] = document["rules"] + idle
    return document


async def _publish(url: str, document: dict[str, Any]) -> None:
    """``document`` published as a new version, in force before the receipts' time."""
    conn = await connect(url)
    try:
        codes = declared_codes(parse_program(document))
        await publish_new_version(conn, document, author="bench", codes=codes)
        await in_force_before_the_receipts(conn)
    finally:
        await conn.close()


def charts(result: dict[str, Any]) -> list[str]:
    """SVG charts of the three figures, in docs/charts/; their file names."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    CHARTS.mkdir(parents=True, exist_ok=True)
    written = []
    cards = result["cards"]
    figure, axes = plt.subplots(figsize=(6, 3.4))
    sizes = [int(s) for s in result["sizes"]]
    axes.plot(sizes, [cards[str(s)] for s in sizes], marker="o", label="cards in the cache")
    axes.axhline(cards["cold"], color="grey", linestyle="--", label="a card not in the cache")
    axes.set_xscale("log")
    axes.set_ylim(bottom=0)
    axes.set_xlabel("cards in the cache (drawn at random)")
    axes.set_ylabel("CPU µs per /v1/calculate")
    axes.legend(loc="lower right")
    axes.set_title("Calculate as the cards pile up")
    written.append(_save(figure, "scaling-cards.svg"))
    figure, axes = plt.subplots(figsize=(6, 3.4))
    names = list(result["rules"])
    axes.bar(names, [result["rules"][n] for n in names], color=["#6a8caf", "#c0504d"])
    axes.set_ylabel("CPU µs per /v1/calculate")
    axes.set_title("Calculate: the demo against 5,000 rules and 2,000 stores")
    written.append(_save(figure, "scaling-rules.svg"))
    figure, axes = plt.subplots(figsize=(6, 3.4))
    lots = result["open_lots"]["median"]
    counts = sorted(lots, key=int)
    axes.plot([int(c) for c in counts], [lots[c] for c in counts], marker="o")
    axes.set_ylim(bottom=0)
    axes.set_xlabel("open lots per card")
    axes.set_ylabel("sales committed per second")
    axes.set_title("The ledger's commit as a card's lots pile up")
    written.append(_save(figure, "scaling-lots.svg"))
    return written


def _save(figure: Any, name: str) -> str:
    figure.tight_layout()
    # no date or version in the file: a chart changes only when its figures do
    figure.savefig(CHARTS / name, format="svg", metadata={"Date": None, "Creator": None})
    from matplotlib import pyplot as plt

    plt.close(figure)
    return name


def section(result: dict[str, Any]) -> str:
    cards = result["cards"]
    base = cards[str(result["sizes"][0])]
    rows = "\n".join(
        f"| {int(size):,} | {cards[str(size)]:.0f} | {cards[str(size)] / base:.0%} |"
        for size in result["sizes"]
    )
    cold = (
        f"| a card not in the cache (read from Postgres, then cached) | {cards['cold']:.0f} "
        f"| {cards['cold'] / base:.0%} |"
    )
    rules = result["rules"]
    demo, many = (rules[name] for name in rules)
    lots = result["open_lots"]
    at_most = cards[str(max(result["sizes"]))] / base
    lots_ratio = lots["median"]["200"] / lots["median"]["1"]
    verdicts = "\n".join(
        f"| {target} | {figure} | {'met' if met else 'NOT MET'} |"
        for target, figure, met in (
            (f"calculate at {max(result['sizes']):,} cards within 10% of 10 cards",
             f"{at_most:.0%}", at_most <= 1.10),
            (f"{STORES:,} stores and {RULES:,} rules within 2x of the demo", f"{many / demo:.0%}",
             many <= 2 * demo),
            ("commit at 200 open lots per card within 10% of 1 lot", f"{lots_ratio:.0%}",
             lots_ratio >= 0.90),
        )
    )  # fmt: skip
    return f"""## Flat as the work grows

`make bench-scaling` (benchmarks/scaling.py), {datetime.now(UTC):%Y-%m-%d}, this 2-core box
shared with other work: CPU µs per /v1/calculate in-process (the real app through ASGI,
{CONCURRENCY} requests in flight, the benchmark's ten-line receipt with 300 points to
spend), medians of {ROUNDS} rounds that take the sizes in turn.

| SPEC §8 target | this run | |
| --- | --- | --- |
{verdicts}

| cards in the cache | CPU µs per calculate | against 10 cards |
| --- | --- | --- |
{rows}
{cold}

Filling the cache with {max(result["sizes"]):,} cards through the service's miss path took
{result["fill_s"]:.0f} s. Past {DECODED_STATES_KEPT:,} cards a worker keeps no decoded state
for most of them (`DECODED_STATES_KEPT`) and decodes the card's entry on each request:
compare 1,000 cards with 10,000 for what that costs. Redis's own lookup does not grow with
the keys. A miss reads the card from Postgres and writes the cache: about twice the CPU.

![calculate by cards in the cache](charts/scaling-cards.svg)

A program of {RULES:,} rules (a fifth of them limited to stores) with {STORES:,} stores, at
1,000 cards: {many:.0f} µs against the demo's {demo:.0f} µs ({many / demo:.0%}).

![calculate by program size](charts/scaling-rules.svg)

The ledger alone by open lots per card (benchmarks/ledger.py, medians of 3 rounds taken in
turn): {open_lots_line(lots)}.

![commit by open lots](charts/scaling-lots.svg)
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cards", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--no-write", action="store_true", help="print, write no file")
    args = parser.parse_args()
    server, redis_url = bench_urls()
    sizes = sorted(int(s) for s in args.cards.split(","))
    result = asyncio.run(measure(server, redis_url, sizes))
    lots_db = asyncio.run(prepare_database(server, redis_url, "loyalty_bench_lots"))
    result["open_lots"] = measure_open_lots(lots_db, 5)
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    if not args.no_write:
        charts(result)
        replace_section("Flat as the work grows", section(result))
    print(section(result))


if __name__ == "__main__":
    main()
