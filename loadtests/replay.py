"""Replay the whole year of Complete Journey baskets through the POS API, then check
the ledger:

    python -m loadtests.replay --url http://127.0.0.1:8000 --pos-key ... \\
        --database-url postgresql://... [--limit N] [--concurrency 16]

Every basket, in time order, is calculated then committed with its calculation id;
a deterministic share of customers pay with points ("max") or come without their card,
and a deterministic share of sales is partly returned. A customer is at one till at a
time: the sales of one card go one after another, in order, so a refusal for points
already spent cannot happen and would count as a failure. At the end the ledger is
checked in SQL (every card's entries sum to its lots less its debt, no lot outside
0..points, every acknowledged sale recorded with the points and discount it was
answered with) and the totals are printed. The exit status is 1 when a check fails or
a request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import uvloop

from loadtests import cpu, http1
from loadtests.dataset import PosReceipt, load_receipts
from loadtests.pos import SalePlan, commit_body, receipt_body, refund_body
from service.storage.postgres.invariants import broken_invariants
from service.storage.postgres.pool import connect

MAX_COMMIT_TRIES = 3  # a 503 (ledger busy or restarting) is retried after Retry-After
FAILURES_SHOWN = 10
MAX_FAILURES = 100  # then the replay stops early (and fails)
REQUEST_TIMEOUT_S = 30.0


@dataclass
class Totals:
    baskets: int = 0
    lines: int = 0
    anonymous: int = 0
    subtotal: int = 0  # kopecks
    discount: int = 0  # kopecks
    points_earned: int = 0
    points_redeemed: int = 0
    refunds: int = 0
    points_taken_back: int = 0
    points_given_back: int = 0
    retries: int = 0
    elapsed_s: float = 0.0
    client_cpu_s: float = 0.0  # this process: to tell a slow service from a slow client
    cpu_s: dict[str, float] = field(default_factory=dict)  # cpu.Snapshot.used_since
    failures: list[str] = field(default_factory=list)
    failure_count: int = 0
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def fail(self, what: str) -> None:
        self.failure_count += 1
        if len(self.failures) < FAILURES_SHOWN:
            self.failures.append(what)


@dataclass
class Replay:
    """What the tills share: the run's id prefix, the totals, one lock per customer."""

    run_tag: str
    totals: Totals = field(default_factory=Totals)
    card_locks: dict[str, asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))


@dataclass
class Till:
    """One till with a connection of its own, one request at a time (loadtests.http1:
    with httpx the replay's client took most of a core from the service)."""

    replay: Replay
    connection: http1.Connection

    @property
    def totals(self) -> Totals:
        return self.replay.totals

    async def post(self, path: str, body: dict[str, Any]) -> http1.Response:
        started = time.perf_counter()
        response = await self.connection.post(path, orjson.dumps(body))
        self.totals.latencies[path].append(time.perf_counter() - started)
        return response

    async def commit(self, body: dict[str, Any]) -> http1.Response:
        for _ in range(MAX_COMMIT_TRIES - 1):
            response = await self.post("/v1/commit", body)
            if response.status_code != 503:
                return response
            self.totals.retries += 1
            await asyncio.sleep(float(response.retry_after or b"1"))
        return await self.post("/v1/commit", body)

    def ok(self, what: str, response: http1.Response) -> bool:
        if response.status_code == 200:
            return True
        self.totals.fail(f"{what}: {response.status_code} {response.text[:300]}")
        return False

    async def sell(self, receipt: PosReceipt) -> None:
        """One customer's sale; the customer's next one waits for it (FIFO lock per card)."""
        rng = random.Random(receipt.basket_id)  # the same plan on every run
        plan = SalePlan.draw(receipt, rng)
        async with self.replay.card_locks[receipt.card]:
            transaction_id = f"{self.replay.run_tag}-{receipt.basket_id}"
            try:
                if await self._sell(receipt, plan, transaction_id) and plan.refund:
                    await self._refund(receipt, transaction_id, rng)
            except http1.TransportError as exc:  # no answer at all: counted, and on we go
                self.totals.fail(f"basket {receipt.basket_id}: {exc}")

    async def _sell(self, receipt: PosReceipt, plan: SalePlan, transaction_id: str) -> bool:
        redeem = "max" if plan.redeem else 0
        calc = await self.post("/v1/calculate", receipt_body(receipt, plan, redeem=redeem))
        if not self.ok(f"calculate basket {receipt.basket_id}", calc):
            return False
        body = commit_body(
            receipt,
            plan,
            transaction_id=transaction_id,
            calculation_id=orjson.loads(calc.content)["calculation_id"],
            redeem=redeem,
        )
        committed = await self.commit(body)
        if not self.ok(f"commit basket {receipt.basket_id}", committed):
            return False
        self._count_sale(receipt, plan, orjson.loads(committed.content)["totals"])
        return True

    def _count_sale(self, receipt: PosReceipt, plan: SalePlan, totals: dict[str, int]) -> None:
        t = self.totals
        t.baskets += 1
        t.lines += len(receipt.lines)
        t.anonymous += plan.anonymous
        t.subtotal += totals["subtotal"]
        t.discount += totals["discount"]
        t.points_earned += totals["points_earned"]
        t.points_redeemed += totals["points_redeemed"]

    async def _refund(self, receipt: PosReceipt, transaction_id: str, rng: random.Random) -> None:
        body = refund_body(
            receipt, transaction_id=transaction_id, refund_id=f"{transaction_id}-r", rng=rng
        )
        response = await self.post("/v1/refund", body)
        if self.ok(f"refund basket {receipt.basket_id}", response):
            totals = orjson.loads(response.content)["totals"]
            self.totals.refunds += 1
            self.totals.points_taken_back += totals["points_taken"]
            self.totals.points_given_back += totals["points_returned"]


async def _serve_customers(till: Till, receipts: Iterator[PosReceipt]) -> None:
    try:
        for receipt in receipts:  # the tills share one iterator: baskets leave in time order
            if till.totals.failure_count >= MAX_FAILURES:
                return  # the service is down or refusing everything: report what we have
            await till.sell(receipt)
    finally:
        till.connection.close()


async def send_all(
    replay: Replay, receipts: Iterator[PosReceipt], *, url: str, key: str, tills: int
) -> None:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    async with asyncio.TaskGroup() as group:
        for _ in range(tills):
            connection = http1.Connection(url, headers, timeout_s=REQUEST_TIMEOUT_S)
            group.create_task(_serve_customers(Till(replay, connection), receipts))


_RECORDED_SALES = """
SELECT count(*) AS sales, coalesce(sum(discount), 0) AS discount,
       coalesce(sum(points_earned), 0) AS points_earned,
       coalesce(sum(points_redeemed), 0) AS points_redeemed
FROM receipts WHERE transaction_id LIKE $1 AND status = 'committed'
"""


_BACKENDS = "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"


async def check_ledger(database_url: str, run_tag: str, totals: Totals) -> list[str]:
    """What is wrong with the ledger after the replay (empty: nothing)."""
    conn = await connect(database_url)
    try:
        broken = await broken_invariants(conn)
        recorded = await conn.fetchrow(_RECORDED_SALES, f"{run_tag}-%")
    finally:
        await conn.close()
    problems = [
        f"{name}: {len(rows)} rows break it, e.g. {rows[:FAILURES_SHOWN]}"
        for name, rows in broken.items()
    ]
    answered = {
        "sales": totals.baskets, "discount": totals.discount,
        "points_earned": totals.points_earned, "points_redeemed": totals.points_redeemed,
    }  # fmt: skip
    problems += [
        f"recorded {name} {recorded[name]} != answered {value}"
        for name, value in answered.items()
        if recorded[name] != value
    ]
    return problems


async def _watched(database_url: str, service_pid: int | None) -> dict[str, list[int]]:
    """The processes whose CPU the report shows apart: the service's (when the harness
    started it) and the Postgres backends connected to the replay's database."""
    conn = await connect(database_url)
    try:
        rows = await conn.fetch(_BACKENDS)
    finally:
        await conn.close()
    watched = {"postgres": [row["pid"] for row in rows]}
    if service_pid is not None:
        watched["service"] = cpu.process_tree(service_pid)
    return watched


def _roubles(kopecks: int) -> str:
    return f"{kopecks / 100:,.2f} RUB"


def _latency(samples: list[float]) -> str:
    if len(samples) < 2:
        return "n/a"
    cuts = statistics.quantiles(samples, n=100)
    return "/".join(f"{cuts[p] * 1000:.1f}" for p in (49, 94, 98)) + " ms"


def _cpu_line(t: Totals) -> str:
    """CPU seconds during the replay: this client's, the service's workers', its Postgres
    backends', and the whole machine's (the rest: Redis, Postgres's own, other users)."""
    cores = os.cpu_count() or 1
    parts = [f"client {t.client_cpu_s:.1f}"]
    parts += [f"{name} {t.cpu_s[name]:.1f}" for name in ("service", "postgres") if name in t.cpu_s]
    machine = t.cpu_s.get("machine", 0.0)
    return (
        f"  CPU s during the replay: {', '.join(parts)}; the machine busy {machine:.1f} "
        f"of {cores * t.elapsed_s:.1f} ({cores} cores)"
    )


def report(totals: Totals, problems: list[str]) -> str:
    t = totals
    lines = [
        f"replay: {t.baskets:,} baskets, {t.lines:,} lines committed in {t.elapsed_s:.1f} s: "
        f"{t.baskets / t.elapsed_s:.1f} baskets/s (the replay's own CPU: {t.client_cpu_s:.1f} s)",
        f"  sales: subtotal {_roubles(t.subtotal)}, discount given {_roubles(t.discount)}, "
        f"{t.anonymous:,} without a card",
        f"  points: earned {t.points_earned:,}, redeemed {t.points_redeemed:,}; "
        f"{t.refunds:,} partial refunds took back {t.points_taken_back:,} "
        f"and gave back {t.points_given_back:,}",
        _cpu_line(t),
        *(f"  latency p50/p95/p99 {path}: {_latency(s)}" for path, s in t.latencies.items()),
        f"  commit retries after 503: {t.retries}",
        f"  failed requests: {t.failure_count}"
        + (" (the replay stopped there)" if t.failure_count >= MAX_FAILURES else ""),
        *(f"    {failure}" for failure in t.failures),
        "  ledger check: " + ("ok" if not problems else f"{len(problems)} problems"),
        *(f"    {problem}" for problem in problems),
    ]
    return "\n".join(lines)


async def replay_year(args: argparse.Namespace) -> int:
    replay = Replay(args.run_tag or f"rp{int(time.time()):x}{os.urandom(2).hex()}")
    (await asyncio.to_thread(httpx.get, f"{args.url}/readyz")).raise_for_status()
    receipts = load_receipts(limit=args.limit)
    first = next(receipts)  # the dataset is converted before the clock starts
    watched = await _watched(args.database_url, getattr(args, "service_pid", None))
    before = cpu.Snapshot.take(watched)
    started, client_cpu = time.perf_counter(), time.process_time()
    await send_all(
        replay,
        itertools.chain([first], receipts),
        url=args.url,
        key=args.pos_key,
        tills=args.concurrency,
    )
    replay.totals.elapsed_s = time.perf_counter() - started
    replay.totals.client_cpu_s = time.process_time() - client_cpu
    watched["postgres"] += (await _watched(args.database_url, None))["postgres"]
    replay.totals.cpu_s = cpu.Snapshot.take(watched).used_since(before)
    problems = await check_ledger(args.database_url, replay.run_tag, replay.totals)
    print(report(replay.totals, problems), flush=True)
    return 1 if problems or replay.totals.failure_count else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=env("LOADTEST_HOST", "http://127.0.0.1:8000"))
    parser.add_argument("--pos-key", default=env("LOADTEST_POS_KEY"))
    parser.add_argument("--database-url", default=env("LOYALTY_DATABASE_URL"))
    parser.add_argument("--limit", type=int, help="only the first N baskets of the year")
    parser.add_argument("--concurrency", type=int, default=16, help="sales in flight")
    parser.add_argument("--run-tag", help="transaction id prefix (default: from the time)")
    args = parser.parse_args(argv)
    if not args.pos_key or not args.database_url:
        parser.error("--pos-key (LOADTEST_POS_KEY) and --database-url are required")
    return args


def main(argv: list[str] | None = None) -> int:
    return uvloop.run(replay_year(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
