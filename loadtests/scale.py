"""Several service nodes on one Postgres and a real Redis Cluster (``make scale-test``):

    python -m loadtests.scale [--nodes 3] [--duration 30] [--seed 1]

1. servers of its own, in ``.loyalty/scale`` (wiped first): an embedded Postgres and a
   Redis Cluster of 3 masters and 3 replicas (service/local/redis_cluster.py, from the
   machine's ``redis-server``, else the ``embedded`` extra's);
2. ``--nodes`` instances of ``loyalty serve --workers 2``, each on its own port and given
   a DIFFERENT cluster node's URL (each finds out by itself that it is a cluster); the
   first migrates and loads the demo program, its stores and two keys made up here, the
   others start once it is ready; 200 cards issued and credited, and a few contested
   cards kept apart for the spends below;
3. for ``--duration`` seconds, at about ``--rate`` requests/s in all:
   - the fault test's tills (loadtests/faults.py), spread over the nodes, sell, refund
     and cancel; a sale's refund or cancel may go through another node than the sale;
   - DUPLICATE commits: a sale's commit, the same bytes under one transaction id, sent to
     every node at once (3-4 copies);
   - CONCURRENT spends on SHARED cards: rounds in which 3-6 tills calculate a redemption
     on one contested card (each shown it may spend more than a third of the balance)
     and then commit at once through different nodes, asking together for more than
     the card holds: only the ledger can refuse the overdraft;
   - halfway, a program version published through one node; every worker of every node
     must calculate with it within a second;
   every request and every answer (status and bytes) is kept;
4. checks: no round accepted more points than its card held, and each round's answers
   add up to what the ledger took; no card below zero; no acknowledged write lost or
   recorded twice; the copies of a duplicate answered 200 with the same bytes, or all
   refused (4xx), 503s aside; every acknowledged commit, refund and cancel sent again
   (through another node than the first time) gets 200 with the same bytes; the fault
   test's ledger invariants; no 500; no calculation on the old program a second after
   the publish; no Redis master left without keys;
5. a summary per node (and ``.loyalty/scale/report.json``); the exit status is 1 on any
   failure.
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
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from loadtests.failover import lost_and_doubled
from loadtests.faults import (
    READY_TIMEOUT_S,
    RECOVERY_TIMEOUT_S,
    REPLAYED_OPS,
    SHOWN,
    Exchange,
    Load,
    OwnPostgres,
    Pacer,
    Replay,
    Resend,
    Service,
    Till,
    Verdict,
    by_request,
    check_ledger,
    free_port,
    issue_cards,
    outcome_column,
    pair_example,
    pos_client,
    replay_acknowledged,
    resend_unanswered,
    send,
    unhandled_errors,
    wait_for_pos_key,
    wait_ready,
)
from service.local.redis_cluster import LocalRedisCluster, start_cluster
from service.storage.postgres.pool import connect

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / ".loyalty" / "scale"  # .loyalty/ is git-ignored
PROGRAMS = "/v1/admin/programs"

CONTESTED_FIRST, CONTESTED = 3_000_000_001_000, 8  # cards only the spend rounds use
CONTENDERS = 2  # spend rounds at once, each on cards of its own
CONTESTED_CREDIT = (3_000, 6_000)  # points, given again when a card runs low
LOW_BALANCE = 300
JEANS = ("JEANS-32", "jeans", 499_000)  # a basket big enough to spend what is asked
PUBLISH_AT = 0.5  # share of the load
PUBLISH_LIMIT_S = 1.0  # every worker of every node on the new version within this
PUBLISH_WATCH_S = 5.0  # given up on after this
WEIGHTS = (20, 44, 16, 14, 6)  # browse, sell, sell to every node at once, refund, cancel


# ---------------------------------------------------------------- the nodes


@dataclass
class Node:
    """One ``loyalty serve`` and what was sent through it."""

    number: int  # from 1
    service: Service
    redis_url: str  # the cluster node it was given
    load: Load | None = None

    @property
    def url(self) -> str:
        return self.service.url

    @property
    def exchanges(self) -> list[Exchange]:
        return [] if self.load is None else self.load.exchanges


def node_env(
    base: dict[str, str], database_url: str, redis_url: str, folder: Path, keys: tuple[str, str]
) -> dict[str, str]:
    return {
        **base, "LOYALTY_DATABASE_URL": database_url, "LOYALTY_REDIS_URL": redis_url,
        "LOYALTY_DATA_DIR": str(folder), "LOYALTY_HOST": "127.0.0.1",
        "LOYALTY_DEMO_ADMIN_KEY": keys[0], "LOYALTY_DEMO_POS_KEY": keys[1],
    }  # fmt: skip


async def ready_or_exit(service: Service) -> None:
    if not await wait_ready(service, READY_TIMEOUT_S):
        tail = "\n".join(service.log.read_text(errors="replace").splitlines()[-30:])
        raise SystemExit(f"the service at {service.url} did not become ready:\n{tail}")


# ---------------------------------------------------------------- the tills


@dataclass
class NodeTill(Till):
    """A fault-test till whose home is one node (``client``, ``load``), holding a client
    of every node for the commits it sends to all of them at once."""

    nodes: list[Node] = field(default_factory=list)
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    async def send_to(
        self, node: int, op: str, store: str, key: str, body: bytes, *, storm: bool = False
    ) -> Exchange:
        """One request through ``node``, unpaced (the caller took the slot), kept in that
        node's exchanges."""
        load = self.nodes[node].load
        assert load is not None
        exchange = Exchange(op, store, key, body, load.clock(), storm=storm)
        exchange.status, exchange.answer, exchange.error = await send(
            self.clients[node], exchange.path, body
        )
        load.exchanges.append(exchange)
        return exchange

    async def sell_everywhere(self) -> None:
        """A sale calculated here, its commit sent to every node at once (3-4 copies of
        the same bytes): a POS that retried through another pod of the balancer."""
        commit = await self.sale()
        if commit is None:
            return
        store, transaction_id = commit["store_id"], commit["transaction_id"]
        body, home, count = orjson.dumps(commit), self.home, len(self.nodes)
        targets = [(home + n) % count for n in range(count + self.rng.choice((0, 1)))]
        await self.load.pacer.slot()
        answers = await asyncio.gather(
            *(self.send_to(n, "commit", store, transaction_id, body, storm=True) for n in targets)
        )
        self.sold(commit, list(answers))

    @property
    def home(self) -> int:
        """The index of this till's own node."""
        return next(n for n, node in enumerate(self.nodes) if node.load is self.load)

    async def serve(self, until: float) -> None:
        actions: list[Callable[[], Awaitable[None]]] = [
            self.browse, self.sell, self.sell_everywhere, self.refund, self.cancel,
        ]  # fmt: skip
        try:
            async with self.client:
                while time.monotonic() < until:
                    await self.rng.choices(actions, WEIGHTS)[0]()
        finally:
            for client in self.clients:
                await client.aclose()


# ---------------------------------------------------------------- spends on shared cards


BALANCE = """
SELECT b.balance FROM cards c CROSS JOIN LATERAL loyalty_balance(c.card_id, now()) b
WHERE c.number = $1
"""


@dataclass
class Round:
    """Tills spending from one card at once: what it held, what they asked, the ends."""

    card: str
    at: float
    before: int  # the card's balance in the ledger before the round
    after: int  # and after it
    asked: list[int]  # points each calculation showed as spent
    exchanges: list[Exchange]  # the commits

    @property
    def accepted(self) -> int:
        return sum(
            orjson.loads(e.answer)["totals"]["points_redeemed"]
            for e in self.exchanges
            if e.status == 200
        )

    @property
    def settled(self) -> bool:
        """Every commit answered 200 or 4xx: the round's outcome is known."""
        return all(e.status is not None and e.status < 500 for e in self.exchanges)

    def overdrawn(self) -> bool:
        return self.accepted > self.before

    def mismatched(self) -> bool:
        """The ledger took other points than the answers said (known only when settled)."""
        return self.settled and self.before - self.after != self.accepted


@dataclass
class Contender:
    """Rounds of concurrent spends on its own contested cards, one card at a time."""

    nodes: list[Node]
    cards: list[str]
    rng: random.Random
    database_url: str
    pos_key: str
    admin_key: str
    rounds: list[Round] = field(default_factory=list)

    def spend(self, card: str, ask: int) -> dict[str, Any]:
        quantity = (2 * ask) // (JEANS[2] // 100) + 3  # at most half is paid in points
        sku, category, price = JEANS
        return {
            "store_id": self.rng.choice(("msk-001", "ekb-001", "web")),
            "terminal_id": f"pos-{self.rng.randint(1, 8)}",
            "timestamp": datetime.now(UTC).isoformat(), "payment_method": "card",
            "card": card, "redeem_points": ask,
            "lines": [{"line_id": "1", "sku": sku, "category": category,
                       "quantity": str(quantity), "unit_price": price}],
        }  # fmt: skip

    async def credit(self, client: httpx.AsyncClient, card: str) -> None:
        points = self.rng.randint(*CONTESTED_CREDIT)
        answer = await client.post(
            f"/v1/admin/cards/{card}/adjustments",
            json={"points": points, "reason": "scale-test stock"},
        )
        if answer.status_code != 201:
            raise SystemExit(f"crediting {card}: {answer.status_code} {answer.text}")

    async def one_round(
        self, card: str, till: NodeTill, admin: httpx.AsyncClient, conn: Any, load: Load
    ) -> None:
        before = int(await conn.fetchval(BALANCE, card))
        if before < LOW_BALANCE:
            await self.credit(admin, card)
            before = int(await conn.fetchval(BALANCE, card))
        count, share = self.rng.randint(3, 6), self.rng.choice((2, 3))
        ask = before // share + 1  # more than 1/share of it: at most share-1 fit
        start = self.rng.randrange(len(self.nodes))
        # Each till is shown the redemption first (the ledger is the only guard left
        # once the calculation is pinned); then all of them commit at once.
        commits: list[tuple[int, str, str, bytes]] = []
        asked = []
        for n in range(count):
            receipt = self.spend(card, ask)
            store = receipt["store_id"]
            await load.pacer.slot()
            shown = await till.send_to(
                (start + n) % len(self.nodes), "calculate", store, "", orjson.dumps(receipt)
            )
            if shown.status != 200:
                continue
            view = orjson.loads(shown.answer)
            asked.append(int(view["totals"]["points_redeemed"]))
            transaction_id = f"spend-{next(load.numbers)}"
            body = {**receipt, "transaction_id": transaction_id}
            if self.rng.random() < 0.8:  # the rest recalculated by the service
                body["calculation_id"] = view["calculation_id"]
            node = (start + n + 1) % len(self.nodes)  # another node than the calculation's
            commits.append((node, store, transaction_id, orjson.dumps(body)))
        await load.pacer.slot()
        at = load.clock()
        exchanges = await asyncio.gather(
            *(till.send_to(node, "commit", store, tx, body) for node, store, tx, body in commits)
        )
        after = int(await conn.fetchval(BALANCE, card))
        self.rounds.append(Round(card, at, before, after, asked, list(exchanges)))

    async def run(self, until: float, load: Load) -> None:
        till = NodeTill(
            load, pos_client(self.nodes[0].url, self.pos_key), self.rng, self.nodes,
            [pos_client(node.url, self.pos_key) for node in self.nodes],
        )  # fmt: skip
        headers = {"Authorization": f"Bearer {self.admin_key}"}
        conn = await connect(self.database_url)
        try:
            async with httpx.AsyncClient(
                base_url=self.nodes[-1].url, headers=headers, timeout=30
            ) as admin:
                for card in itertools.cycle(self.cards):
                    if time.monotonic() >= until:
                        break
                    await self.one_round(card, till, admin, conn, load)
        finally:
            await conn.close()
            await till.client.aclose()
            for client in till.clients:
                await client.aclose()


async def issue_contested(url: str, admin_key: str) -> list[str]:
    """The cards only the spend rounds use (credited at their first round)."""
    numbers = [str(CONTESTED_FIRST + n) for n in range(CONTESTED)]
    headers = {"Authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        issued = await client.post(
            "/v1/admin/cards/ranges",
            json={"first": numbers[0], "last": numbers[-1], "status": "active"},
        )
    if issued.status_code != 201:
        raise SystemExit(f"issuing cards: {issued.status_code} {issued.text}")
    return numbers


# ---------------------------------------------------------------- the publish


@dataclass
class Switch:
    """When one worker took up the published version, in seconds from the publish's
    answer: ``taken_s`` by the worker's own clock (its ``taken_up_at``; the machine's one
    clock serves every process), and as a probe saw it: after ``old_s`` (a request it
    answered on the old version was sent then) and by ``new_s`` (its first answer on the
    new one came back then; under load that adds the probe's own wait in the queue)."""

    old_s: float | None = None
    new_s: float | None = None
    taken_s: float | None = None

    def window(self) -> str:
        if self.new_s is None or self.taken_s is None:
            return "never"
        after = "" if self.old_s is None else f"{self.old_s * 1000:.0f}-"
        return f"{self.taken_s * 1000:.0f} ms (seen {after}{self.new_s * 1000:.0f} ms)"


@dataclass
class Publish:
    version: int = 0
    at: float = 0.0  # seconds into the load when the publish was answered
    took_s: float = 0.0  # the publish request itself
    detail: str = ""  # why it failed, if it did
    workers: dict[int, dict[int, Switch]] = field(default_factory=dict)  # node -> pid ->

    def node_s(self, number: int) -> float | None:
        """Seconds from the publish's answer until every worker of the node had taken up
        the new version, by the workers' own clock (None: one was not seen on it within
        PUBLISH_WATCH_S); 0 when they all had before the answer came back."""
        taken = [switch.taken_s for switch in self.workers.get(number, {}).values()]
        if not taken or None in taken:
            return None
        return max(0.0, *(s for s in taken if s is not None))

    def slow(self) -> list[str]:
        late = []
        for number in sorted(self.workers):
            took = self.node_s(number)
            if took is None or took > PUBLISH_LIMIT_S:
                late.append(f"node {number}")
        return late


async def watch_node(
    node: Node, admin_key: str, version: int, since: float, answered: datetime
) -> dict[int, Switch]:
    """Each worker of the node asked, over fresh connections (either worker may answer),
    until every one has answered with ``version`` (and said when it took it up: compared
    with ``answered``, the wall-clock time of the publish's answer)."""
    workers = {pid: Switch() for pid in node.service.workers()}
    headers = {"Authorization": f"Bearer {admin_key}"}
    while time.monotonic() - since < PUBLISH_WATCH_S and any(
        switch.new_s is None for switch in workers.values()
    ):
        sent = time.monotonic() - since
        with contextlib.suppress(httpx.HTTPError, orjson.JSONDecodeError, KeyError):
            async with httpx.AsyncClient(base_url=node.url, headers=headers, timeout=2) as one:
                answer = await one.get(f"{PROGRAMS}/active")
            active = orjson.loads(answer.content)
            switch = workers.get(active["worker"])
            if switch is not None and switch.new_s is None:
                if active["version"] == version:
                    switch.new_s = time.monotonic() - since
                    taken = datetime.fromisoformat(active["taken_up_at"])
                    switch.taken_s = (taken - answered).total_seconds()
                else:
                    switch.old_s = sent
        await asyncio.sleep(0.02)
    return workers


async def publish(nodes: list[Node], admin_key: str, load: Load, at_s: float) -> Publish:
    """The current program under another description, published through the first node
    (nothing a sale gets changes but the version), then every node watched."""
    await asyncio.sleep(max(0.0, load.started + at_s - time.monotonic()))
    done = Publish()
    headers = {"Authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(base_url=nodes[0].url, headers=headers, timeout=30) as admin:
        active = (await admin.get(f"{PROGRAMS}/active")).json()["version"]
        document = (await admin.get(f"{PROGRAMS}/{active}")).json()["document"]
        document = {**document, "description": f"scale-test copy of version {active}"}
        draft = await admin.post(PROGRAMS, json={"document": document})
        if draft.status_code != 201:
            done.detail = f"draft refused: {draft.status_code} {draft.text[:200]}"
            return done
        done.version = int(draft.json()["version"])
        sent = time.monotonic()
        published = await admin.post(f"{PROGRAMS}/{done.version}/publish")
    since, answered = time.monotonic(), datetime.now(UTC)
    done.took_s, done.at = since - sent, load.clock()
    if published.status_code != 200:
        done.detail = f"publish refused: {published.status_code} {published.text[:200]}"
        return done
    print(f"scale-test: t={done.at:5.1f} s  program version {done.version} published", flush=True)
    seen = await asyncio.gather(
        *(watch_node(node, admin_key, done.version, since, answered) for node in nodes)
    )
    done.workers = {node.number: workers for node, workers in zip(nodes, seen, strict=True)}
    return done


def stale_calculations(nodes: list[Node], published: Publish) -> Counter[int]:
    """Per node: calculations sent over a second after the publish's answer that were
    still made on another version."""
    stale: Counter[int] = Counter()
    if not published.version:
        return stale
    for node in nodes:
        for e in node.exchanges:
            late = e.op == "calculate" and e.status == 200
            late = late and e.at > published.at + PUBLISH_LIMIT_S
            if late and orjson.loads(e.answer)["program_version"] != published.version:
                stale[node.number] += 1
    return stale


# ---------------------------------------------------------------- the load


def make_loads(nodes: list[Node], cards: list[str], rate: float) -> Load:
    """A Load per node (its exchanges), all sharing the pace, the clock, the transaction
    numbers and the sales open to returns (a return may go through another node)."""
    shared = Load(cards, Pacer(1.0 / rate))
    for node in nodes:
        node.load = Load(cards, shared.pacer, shared.started, [], shared.open_sales, shared.numbers)
    return shared


async def drive(
    nodes: list[Node], keys: tuple[str, str], cards: list[str], contested: list[str],
    database_url: str, args: argparse.Namespace,
) -> tuple[Load, list[Contender], Publish]:  # fmt: skip
    admin_key, pos_key = keys
    shared = make_loads(nodes, cards, args.rate)
    until = shared.started + args.duration
    tills = []
    for n in range(args.tills):
        home = nodes[n % len(nodes)]
        assert home.load is not None
        tills.append(
            NodeTill(
                home.load,
                pos_client(home.url, pos_key),
                random.Random(f"{args.seed}/{n}"),
                nodes,
                [pos_client(node.url, pos_key) for node in nodes],
            )
        )
    contenders = [
        Contender(
            nodes,
            contested[n::CONTENDERS],
            random.Random(f"{args.seed}/spend/{n}"),
            database_url,
            pos_key,
            admin_key,
        )
        for n in range(CONTENDERS)
    ]
    async with asyncio.TaskGroup() as group:
        for till in tills:
            group.create_task(till.serve(until))
        for n, contender in enumerate(contenders):
            load = nodes[n % len(nodes)].load
            assert load is not None
            group.create_task(contender.run(until, load))
        published = group.create_task(publish(nodes, admin_key, shared, PUBLISH_AT * args.duration))
    return shared, contenders, published.result()


# ---------------------------------------------------------------- the checks


@dataclass
class Duplicates:
    """The commits sent to every node at once, by transaction."""

    groups: int = 0
    copies: int = 0
    ends: Counter[str] = field(default_factory=Counter)  # e.g. "200 ×3 + 503 ×1"
    unclean: list[str] = field(default_factory=list)  # copies answered otherwise


def refused(exchange: Exchange) -> bool:
    return exchange.status is not None and 400 <= exchange.status < 500


def duplicates(exchanges: Sequence[Exchange]) -> Duplicates:
    """Each sale's copies answered alike: one 200 body (recorded once, every copy told
    so), or all refused with 4xx (nothing recorded), some 503 allowed among either, and
    copies that got no answer at all (a connection lost under load: the till knows
    nothing and sends again; the replay below sends every acknowledged sale again and
    holds it to the same bytes, and "nothing lost or doubled" holds the ledger to one
    record). A 500 is never clean."""
    found = Duplicates()
    for (_op, _store, key), attempts in by_request(exchanges).items():
        copies = [a for a in attempts if a.storm]
        if not copies:
            continue
        found.groups += 1
        found.copies += len(copies)
        outcomes = Counter(c.outcome() for c in copies)
        found.ends[" + ".join(f"{o} ×{n}" for o, n in sorted(outcomes.items()))] += 1
        answers = {c.answer for c in copies if c.status == 200}
        refusals = {c.code for c in copies if refused(c)}
        if (
            len(answers) > 1  # two answers for one sale
            or not all(c.status in (200, 503, None) or refused(c) for c in copies)
            or "idempotency_conflict" in refusals  # the same bytes called another receipt
            or (answers and refusals)  # one copy recorded, another told it was refused
        ):
            found.unclean.append(f"{key}: {dict(outcomes)}")
    return found


BELOW_ZERO = """
SELECT c.number, b.balance, c.debt FROM cards c
CROSS JOIN LATERAL loyalty_balance(c.card_id, now()) b WHERE b.balance < 0
"""


async def cards_below_zero(database_url: str) -> list[str]:
    conn = await connect(database_url)
    try:
        rows = await conn.fetch(BELOW_ZERO)
    finally:
        await conn.close()
    return [f"{r['number']}: balance {r['balance']} (debt {r['debt']})" for r in rows]


@dataclass
class Outcome:
    args: argparse.Namespace
    nodes: list[Node]
    cluster_ports: list[int]
    keys_by_master: dict[int, int]  # the cluster's keys at the end, per master's port
    elapsed_s: float
    rounds: list[Round]
    published: Publish
    stale: Counter[int]
    recovered: bool
    replay: Replay
    resend: Resend
    lost: int
    doubled: int
    dupes: Duplicates
    below_zero: list[str]
    verdicts: list[Verdict]
    totals: dict[str, int]
    errors: dict[int, Counter[str]]

    def answers_500(self) -> int:
        every = [e for node in self.nodes for e in node.exchanges]
        every += self.resend.exchanges
        every += [again for pairs in (self.replay.refused, self.replay.differing)
                  for _, again in pairs]  # fmt: skip
        return sum(1 for e in every if e.status == 500)

    def failures(self) -> list[str]:
        counted = (
            (sum(1 for r in self.rounds if r.overdrawn()), "spend rounds overdrawn"),
            (sum(1 for r in self.rounds if r.mismatched()), "spend rounds whose ledger differs"),
            (len(self.below_zero), "cards below zero"),
            (self.lost, "acknowledged writes lost"),
            (self.doubled, "acknowledged writes doubled"),
            (len(self.dupes.unclean), "duplicate commits answered unclean"),
            (len(self.replay.refused) + len(self.resend.refused), "replays refused"),
            (len(self.replay.differing), "replays differing"),
            (sum(1 for v in self.verdicts if v.broken), "invariants broken"),
            (self.answers_500(), "answers 500"),
            (sum(sum(c.values()) for c in self.errors.values()), "unhandled errors logged"),
            (sum(self.stale.values()), "calculations on the old program 1 s after the publish"),
        )
        reasons = [f"{n:,} {what}" for n, what in counted if n]
        unused = [port for port, keys in self.keys_by_master.items() if not keys]
        if unused:
            reasons.append(f"Redis Cluster masters holding no key: {unused}")
        if self.published.detail:
            reasons.append(self.published.detail)
        elif self.published.slow():
            late = ", ".join(self.published.slow())
            reasons.append(f"the publish not everywhere within {PUBLISH_LIMIT_S:.0f} s: {late}")
        return reasons if self.recovered else [*reasons, "a node not ready after the load"]


# ---------------------------------------------------------------- the report


def node_rows(outcome: Outcome) -> list[str]:
    columns = ("200", "4xx", "503", "500", "no answer")
    lines = [
        f"  {'node':<6}{'redis':>7}{'workers':>9}{'sent':>8}"
        + "".join(f"{c:>10}" for c in columns)
        + f"{'acked writes':>14}{'dup copies':>12}{'publish':>10}"
    ]
    everything: list[Exchange] = []
    for node in outcome.nodes:
        exchanges = node.exchanges
        everything += exchanges
        counts = Counter(outcome_column(e) for e in exchanges)
        acked = sum(1 for e in exchanges if e.op in REPLAYED_OPS and e.status == 200)
        took = outcome.published.node_s(node.number)
        port = node.redis_url.rsplit(":", 1)[1].split("/")[0]
        lines.append(
            f"  {node.number:<6}{port:>7}{len(outcome.published.workers.get(node.number, {})):>9}"
            f"{len(exchanges):>8,}" + "".join(f"{counts[c]:>10,}" for c in columns)
            + f"{acked:>14,}{sum(1 for e in exchanges if e.storm):>12,}"
            + f"{'never' if took is None else f'{took * 1000:.0f} ms':>10}"
        )  # fmt: skip
    counts = Counter(outcome_column(e) for e in everything)
    acked = sum(1 for e in everything if e.op in REPLAYED_OPS and e.status == 200)
    lines.append(
        f"  {'all':<6}{'':>7}{'':>9}{len(everything):>8,}"
        + "".join(f"{counts[c]:>10,}" for c in columns)
        + f"{acked:>14,}{sum(1 for e in everything if e.storm):>12,}"
    )
    ops = Counter(e.op for e in everything)
    refusals = Counter(e.outcome() for e in everything if e.status and 400 <= e.status < 500)
    lines.append("  by kind: " + ", ".join(f"{op} {n:,}" for op, n in ops.most_common()))
    lines.append(
        "  4xx by code: " + (", ".join(f"{k} ×{n}" for k, n in refusals.most_common()) or "none")
    )
    lines.append(
        f"  {len(everything):,} requests in {outcome.elapsed_s:.1f} s = "
        f"{len(everything) / outcome.elapsed_s:.0f}/s (target {outcome.args.rate:.0f}/s)"
    )
    return lines


def round_lines(rounds: list[Round]) -> list[str]:
    commits = [e for r in rounds for e in r.exchanges]
    over = [r for r in rounds if sum(r.asked) > r.before]
    lines = [
        f"  {len(rounds)} rounds on {len({r.card for r in rounds})} cards, {len(commits)} "
        f"commits at once (3-6 a round, through every node); {len(over)} rounds asked for "
        "more than the card held",
        f"  accepted {sum(r.accepted for r in rounds):,} of {sum(sum(r.asked) for r in rounds):,}"
        f" points asked; overdrawn rounds {sum(1 for r in rounds if r.overdrawn())}; rounds "
        f"where the ledger took other points than answered "
        f"{sum(1 for r in rounds if r.mismatched())} "
        f"(of {sum(1 for r in rounds if r.settled)} with every commit answered)",
    ]  # fmt: skip
    kinds = (("naming the calculation shown (the ledger decides)", True),
             ("calculated again by the service", False))  # fmt: skip
    for name, pinned in kinds:
        ends = Counter(e.outcome() for e in commits if (b'"calculation_id"' in e.body) == pinned)
        lines.insert(-1, f"  commits {name}: " + ", ".join(f"{o} ×{n}" for o, n in ends.items()))
    for r in [r for r in rounds if r.overdrawn() or r.mismatched()][:SHOWN]:
        lines.append(
            f"    {r.card} t={r.at:.1f} s: held {r.before}, asked {r.asked}, accepted "
            f"{r.accepted}, held after {r.after}"
        )
    return lines


def report(outcome: Outcome) -> str:
    args, failures, published = outcome.args, outcome.failures(), outcome.published
    lines = [
        "",
        f"scale-test: {len(outcome.nodes)} nodes x 2 workers, one Postgres, a Redis Cluster "
        f"of {len(outcome.cluster_ports)} nodes; {args.duration:.0f} s of load, "
        f"{args.tills} tills + {CONTENDERS} spenders, seed {args.seed}",
        *node_rows(outcome),
        "  the cluster's keys at the end, per master: "
        + ", ".join(f"{port}: {keys:,}" for port, keys in sorted(outcome.keys_by_master.items())),
        "concurrent spends on shared cards",
        *round_lines(outcome.rounds),
        "duplicate commits (the same bytes to every node at once)",
        f"  {outcome.dupes.groups:,} sales, {outcome.dupes.copies:,} copies; "
        f"{len(outcome.dupes.unclean)} answered unclean",
    ]
    lines += [f"    {ends}: {n:,}" for ends, n in outcome.dupes.ends.most_common(8)]
    lines += [f"    UNCLEAN {example}" for example in outcome.dupes.unclean[:SHOWN]]
    lines.append("program publish (each worker asked over fresh connections)")
    if published.detail:
        lines.append(f"  FAILED: {published.detail}")
    else:
        lines.append(
            f"  version {published.version} published through node 1 at t={published.at:.1f} s "
            f"(the request took {published.took_s * 1000:.0f} ms); from its answer to every "
            "worker on it (each worker: when it took the version up by its own clock; seen: "
            "after the send of its last answer on the old version, by its first answer on the "
            "new one):"
        )
        for number, workers in sorted(published.workers.items()):
            each = ", ".join(f"{pid}: {switch.window()}" for pid, switch in sorted(workers.items()))
            took = published.node_s(number)
            state = "ok" if took is not None and took <= PUBLISH_LIMIT_S else "TOO SLOW"
            lines.append(
                f"  node {number}: {'never' if took is None else f'{took * 1000:.0f} ms'} "
                f"({each}) {state}"
            )
        lines.append(
            f"  calculations sent over {PUBLISH_LIMIT_S:.0f} s after it on the old version: "
            f"{sum(outcome.stale.values())}"
        )
    replay = outcome.replay
    lines += [
        "acknowledged writes: lost, doubled, replayed through another node",
        f"  {outcome.lost} lost, {outcome.doubled} doubled; "
        f"{sum(replay.resent.values()):,} resent ("
        + ", ".join(f"{op} {replay.resent[op]:,}" for op in REPLAYED_OPS)
        + f"): {len(replay.refused)} refused, {len(replay.differing)} differing",
    ]
    lines += [pair_example(*pair) for pair in [*replay.refused, *replay.differing][:SHOWN]]
    ends = Counter(end for counts in outcome.resend.ends.values() for end in counts.elements())
    lines.append(
        "  unanswered or 5xx, sent once more: "
        + (", ".join(f"{end} ×{n}" for end, n in ends.most_common()) or "none")
    )
    t = outcome.totals
    lines += [
        "ledger",
        f"  {t['sales']:,} sales ({t['cancelled']:,} cancelled; {t['spending']:,} spent "
        f"{t['points_spent']:,} points), {t['refunds']:,} refunds; {t['cards_in_debt']} cards "
        f"in debt; {len(outcome.below_zero)} cards below zero",
    ]
    lines += [f"    {card}" for card in outcome.below_zero[:SHOWN]]
    for verdict in outcome.verdicts:
        state = "ok    " if not verdict.broken else f"FAILED ({verdict.broken})"
        lines.append(f"  {state} {verdict.name}")
        lines += [f"      {example}" for example in verdict.examples]
    for node in outcome.nodes:
        errors = outcome.errors[node.number]
        lines.append(
            f"node {node.number} log ({node.service.log}): {sum(errors.values())} unhandled errors"
        )
        lines += [f"  {n} × {what}" for what, n in errors.most_common(SHOWN)]
    lines.append(f"answers 500: {outcome.answers_500()}")
    lines.append("result: " + ("FAILED: " + "; ".join(failures) if failures else "ok"))
    return "\n".join(lines)


def report_json(outcome: Outcome) -> dict[str, Any]:
    published = outcome.published
    return {
        "args": {k: str(v) for k, v in vars(outcome.args).items()},
        "elapsed_s": round(outcome.elapsed_s, 1),
        "nodes": [
            {
                "node": node.number, "url": node.url, "redis_url": node.redis_url,
                "requests": dict(Counter(e.outcome() for e in node.exchanges)),
                "publish_s": published.node_s(node.number),
                "publish_workers_s": {
                    pid: vars(switch)
                    for pid, switch in published.workers.get(node.number, {}).items()
                },
            }
            for node in outcome.nodes
        ],
        "rounds": [
            {"card": r.card, "at_s": round(r.at, 2), "before": r.before, "after": r.after,
             "asked": r.asked, "answers": [e.outcome() for e in r.exchanges],
             "accepted": r.accepted}
            for r in outcome.rounds
        ],
        "duplicates": {"sales": outcome.dupes.groups, "copies": outcome.dupes.copies,
                       "ends": dict(outcome.dupes.ends), "unclean": outcome.dupes.unclean},
        "publish": {"version": published.version, "at_s": round(published.at, 2),
                    "took_s": round(published.took_s, 3), "detail": published.detail,
                    "stale_calculations": dict(outcome.stale)},
        "lost": outcome.lost, "doubled": outcome.doubled,
        "replay": {"resent": dict(outcome.replay.resent),
                   "refused": len(outcome.replay.refused),
                   "differing": len(outcome.replay.differing)},
        "resent_unanswered": {op: dict(ends) for op, ends in outcome.resend.ends.items()},
        "keys_by_master": outcome.keys_by_master,
        "below_zero": outcome.below_zero,
        "invariants": [vars(v) for v in outcome.verdicts],
        "ledger": outcome.totals,
        "unhandled_errors": {n: dict(c) for n, c in outcome.errors.items()},
        "failures": outcome.failures(),
    }  # fmt: skip


# ---------------------------------------------------------------- the run


async def prepare(
    nodes: list[Node], keys: tuple[str, str], seed: int
) -> tuple[list[str], list[str]]:
    admin_key, pos_key = keys
    for node in nodes:
        await ready_or_exit(node.service)
        await wait_for_pos_key(node.url, pos_key)
    cards = await issue_cards(nodes[0].url, admin_key, random.Random(seed))
    contested = await issue_contested(nodes[-1].url, admin_key)
    return cards, contested


async def exercise(
    nodes: list[Node], cluster: LocalRedisCluster, database_url: str, keys: tuple[str, str],
    cards: list[str], contested: list[str], args: argparse.Namespace,
) -> Outcome:  # fmt: skip
    pos_key = keys[1]
    shared, contenders, published = await drive(nodes, keys, cards, contested, database_url, args)
    elapsed = shared.clock()
    ready = await asyncio.gather(
        *(wait_ready(node.service, RECOVERY_TIMEOUT_S, in_a_row=3) for node in nodes)
    )
    print(f"scale-test: load over after {elapsed:.1f} s; checking", flush=True)
    every = [e for node in nodes for e in node.exchanges]
    lost, doubled = await lost_and_doubled(database_url, every)
    replay = Replay()
    for n, node in enumerate(nodes):  # each node's writes sent again through the next one
        assert node.load is not None
        other = nodes[(n + 1) % len(nodes)]
        part = await replay_acknowledged(other.url, pos_key, node.load, args.tills)
        replay.resent.update(part.resent)
        replay.refused += part.refused
        replay.differing += part.differing
    merged = Load(cards, shared.pacer, shared.started, every)
    resend = await resend_unanswered(nodes[0].url, pos_key, database_url, merged, args.tills)
    verdicts, totals = await check_ledger(database_url, [*every, *resend.exchanges])
    rounds = [r for contender in contenders for r in contender.rounds]
    return Outcome(
        args=args, nodes=nodes, cluster_ports=cluster.ports,
        keys_by_master={port: int(cluster.client(port).dbsize()) for port in cluster.masters()},
        elapsed_s=elapsed,
        rounds=sorted(rounds, key=lambda r: r.at), published=published,
        stale=stale_calculations(nodes, published), recovered=all(ready), replay=replay,
        resend=resend, lost=lost, doubled=doubled, dupes=duplicates(every),
        below_zero=await cards_below_zero(database_url), verdicts=verdicts, totals=totals,
        errors={node.number: unhandled_errors(node.service.log) for node in nodes},
    )  # fmt: skip


def run(args: argparse.Namespace) -> Outcome:
    """Start the servers and the nodes, exercise them, stop all of it (in the order it
    was started, reversed, whatever happens)."""
    shutil.rmtree(args.data_dir, ignore_errors=True)
    args.data_dir.mkdir(parents=True)
    keys = secrets.token_hex(16), secrets.token_hex(16)
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        postgres = OwnPostgres.start(args.data_dir)
        stack.callback(postgres.close)
        cluster = start_cluster(args.data_dir / "redis-cluster")
        stack.callback(cluster.stop)
        masters = cluster.masters()
        replicas = [port for port in cluster.ports if port not in masters]
        # A different cluster node for each service node, a replica's among them.
        ports = [*masters[:2], *replicas[:1], *masters[2:], *replicas[1:]]
        print(
            f"scale-test: Postgres at {postgres.url}; Redis Cluster on {cluster.ports} "
            f"(masters {masters}) [{time.monotonic() - started:.0f} s]",
            flush=True,
        )
        nodes: list[Node] = []
        for number in range(1, args.nodes + 1):
            folder = args.data_dir / f"node-{number}"
            folder.mkdir()
            redis_url = cluster.url(ports[(number - 1) % len(ports)])
            env = node_env(dict(os.environ), postgres.url, redis_url, folder, keys)
            if number > 1:  # the first one migrated and loaded the demo
                env["LOYALTY_LOAD_DEMO"] = "false"
            service = Service.start(env, folder, free_port())
            stack.callback(service.stop)
            nodes.append(Node(number, service, redis_url))
            if number == 1:
                asyncio.run(ready_or_exit(service))
        cards, contested = asyncio.run(prepare(nodes, keys, args.seed))
        for node in nodes:
            print(
                f"scale-test: node {node.number} pid {node.service.proc.pid} at {node.url}, "
                f"workers {sorted(node.service.workers())}, Redis {node.redis_url}",
                flush=True,
            )
        print(
            f"scale-test: {len(cards)} cards + {len(contested)} contested; load for "
            f"{args.duration:.0f} s [{time.monotonic() - started:.0f} s]",
            flush=True,
        )
        outcome = asyncio.run(exercise(nodes, cluster, postgres.url, keys, cards, contested, args))
    return outcome


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3, help="loyalty serve instances")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--rate", type=float, default=150.0, help="requests per second, all")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tills", type=int, default=12, help="tills, spread over the nodes")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="wiped first")
    args = parser.parse_args(argv)
    if not (2 <= args.nodes <= 6 and 10 <= args.duration <= 600 and args.rate > 0):
        parser.error("--nodes 2..6, --duration 10..600 s, --rate > 0")
    if args.tills < args.nodes:
        parser.error("--tills must be at least --nodes")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    outcome = run(args)
    print(report(outcome), flush=True)
    path = args.data_dir / "report.json"
    path.write_text(json.dumps(report_json(outcome), indent=2, default=str))
    print(f"report: {path}; {time.monotonic() - started:.0f} s in all", flush=True)
    return 1 if outcome.failures() else 0


if __name__ == "__main__":
    sys.exit(main())
