"""The service measured against the limits of its own stack, side by side, in one run.

    .venv/bin/python -m benchmarks.service              # `make bench`
    .venv/bin/python -m benchmarks.service --seconds 5 --runs 1 --no-write

What it does, each step on the same machine within minutes of the others:
 1. starts Postgres and Redis (embedded, in a temporary folder) unless
    LOYALTY_BENCH_DATABASE_URL / LOYALTY_BENCH_REDIS_URL name running ones; a fresh
    database with the demo program and 2,000 cards holding points;
 2. the bare stack ceiling (benchmarks/bare_app.py: the service's FastAPI setup, two
    endpoints that validate the same receipt and echo it, one by calculate's own request
    path, PosRoute, SPEC §8's reference, one by FastAPI's standard body handling, the
    first round's), 2 uvicorn workers, wrk, started first and measured in turn with
    step 3's calculate runs: both echoes, calculate, both echoes, ... (``_alternated``);
 3. the service, 2 workers: time to ready, and to replace a killed worker
    (measure_ready); /v1/calculate (10-line receipt, card in cache) with wrk, three runs; latency
    at half that rate (open loop, benchmarks/pace.py) and the same percentiles read
    from /metrics; /v1/commit with wrk (a new sale each, over 2,000 cards, 10 points
    redeemed; benchmarks/commits.py: committed after a calculation, as a POS does, and
    again with the receipt sent again), the WAL it wrote per sale and what each table
    wrote (benchmarks/wal.py), and its latency at half rate;
 4. pgbench -N (the TPC-B-like write transaction without the contended branch/teller
    updates) on the same Postgres, as the ledger's reference; and the ledger alone
    (benchmarks/ledger.py: the service's last sale written again and again by
    loyalty_commit_many, no HTTP, no service), the ceiling Postgres sets for commits;
    and the ledger alone at 1, 50 and 200 open lots per card, in turn
    (benchmarks/ledger.py: measure_open_lots);
 5. the numba kernel vs the pure-Python reference (1,000 rules, 30 lines);
 6. /v1/calculate again with 5,000 active rules (the demo's plus 4,990 that target
    other goods and stores) against the demo's rules.
It prints the ratios of SPEC §8 and writes them to the "Service" section of
docs/performance.md. The whole run is made ``--runs`` times (3 by default: this kind of
machine is shared and its figures swing between runs); the section is the median run by
the calculate ratio, with every run's headline figures after it. wrk comes from Debian
(`apt-get install wrk`); pgbench from the embedded Postgres wheel or the system.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import uvloop

from benchmarks import commits, pace
from benchmarks.docs import replace_section
from benchmarks.fixtures import (
    ADMIN_KEY,
    BENCH_CARDS,
    POS_KEY,
    calculate_body,
    prepare_database,
    publish_many_rules,
    sale_receipt,
)
from benchmarks.ledger import measure_ledger, measure_open_lots, open_lots_line
from benchmarks.wal import wal_line, wal_mark, wal_per_sale

COMMAND = "make bench  (.venv/bin/python -m benchmarks.service)"
WORKERS = 2
CONNECTIONS = 32
# SPEC §8's commit target as a share of the bare stack ceiling measured in the same run:
# 2,000 sales/s where 5,000 calculations/s are about 55% of the ceiling (SPEC §8 asks
# for every figure as a ratio to a reference of the same run; this is the one its
# absolute commit figure implies).
COMMIT_CEILING_SHARE = 2_000 / (5_000 / 0.55)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_line(log: Path, text: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in (log.read_text(errors="replace") if log.exists() else ""):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{text!r} never appeared in {log}")
        time.sleep(0.01)


def _wait_ready(url: str, timeout_s: float = 180) -> float:
    """Seconds until ``url`` answers 200."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready after {timeout_s} s")


@contextmanager
def _process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield proc
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _wrk(url: str, script: Path, seconds: int, env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "-s", str(script), url],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "non_2xx": float(bad.group(1)) if bad else 0.0}


def _histogram(metrics_text: str, route: str) -> dict[float, float]:
    pattern = re.compile(
        r'loyalty_http_request_duration_seconds_bucket\{le="([^"]+)",method="POST",'
        rf'route="{re.escape(route)}"\}} (\S+)'
    )
    return {float(le): float(n) for le, n in pattern.findall(metrics_text)}


def _histogram_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The upper bound of the bucket holding quantile ``q`` of what was observed between
    two scrapes (Prometheus' histogram_quantile without interpolation)."""
    counts = sorted((le, after[le] - before.get(le, 0.0)) for le in after)
    total = counts[-1][1]
    for le, cumulative in counts:
        if cumulative >= q * total:
            return le
    return float("inf")


def _paced(url: str, bodies: Any, rate: float, seconds: int) -> dict[str, float]:
    # uvloop: the generator shares the cores with the service; its own delays would count
    # as latency (the default loop's streams cost it about twice the CPU per request).
    result = uvloop.run(pace.run_paced(url, bodies, rate, seconds, connections=CONNECTIONS))
    return result.summary()


def _request_factory(path_url: str, body_for: Any) -> Any:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {POS_KEY}"}

    def request(k: int) -> bytes:
        return pace.http_request("POST", path_url, body_for(k), headers)

    return request


def _lua(work: Path, name: str, text: str) -> Path:
    path = work / name
    path.write_text(text)
    return path


# The bare stack's two echoes (benchmarks/bare_app.py): "lean" goes by calculate's own
# request path (PosRoute), SPEC §8's reference since issue 21; "standard" by FastAPI's
# standard body handling, the first round's reference, kept to show both ratios.
ECHOES = {"lean": "/v1/echo-lean", "standard": "/v1/echo"}


@contextmanager
def bare_stack(work: Path) -> Iterator[dict[str, Callable[[int], dict[str, float]]]]:
    """The bare stack ceiling, serving; yields ``{echo: measure(seconds)}``, one wrk run on
    that echo (``ECHOES``).

    It stays up (idle) while the service is measured, so that the ceiling can be taken
    in turn with the calculate runs: this kind of machine drifts by tens of per cent
    within minutes, and a ceiling taken minutes apart moved the ratio with it.
    """
    port = _free_port()
    body = work / "calculate.json"
    args = [sys.executable, "-m", "benchmarks.bare_app", "--port", str(port),
            "--workers", str(WORKERS)]  # fmt: skip
    # Metrics as `loyalty serve` keeps them with several workers: prometheus_client's
    # multiprocess files, in a fresh folder (the mode is picked when it is imported).
    metrics = work / "bare-metrics"
    shutil.rmtree(metrics, ignore_errors=True)
    metrics.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    with _process(args, env, work / "bare.log"):
        _wait_ready(f"http://127.0.0.1:{port}/healthz")
        script = _lua(work, "echo.lua", STATIC_LUA)
        # The lean echo checks the key, as calculate does.
        env = {"BODY": str(body), "KEY": POS_KEY}

        def measure_of(path: str) -> Callable[[int], dict[str, float]]:
            def measure(seconds: int) -> dict[str, float]:
                return _wrk(f"http://127.0.0.1:{port}{path}", script, seconds, env)

            return measure

        measures = {name: measure_of(path) for name, path in ECHOES.items()}
        for measure in measures.values():
            measure(2)  # warm-up, not counted, as for the service
        yield measures


# Calculate runs per measurement, each between two ceiling runs (ceiling, calculate,
# ceiling, ... ceiling). Each wrk run opens its 32 connections afresh, and the kernel
# spreads them over the two workers' sockets by a hash of their ports: 12/20 as often as
# 16/16, a few per cent of throughput either way. Three runs of each side average that
# luck out of the ratio, and the drift of the machine with it.
ROUNDS = 3


def _alternated(
    ceilings: dict[str, Callable[[int], dict[str, float]]],
    run: Callable[[], dict[str, float]],
    seconds: int,
    rounds: int = ROUNDS,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """``run()`` ``rounds`` times, each between two runs of every ceiling (each ceiling in
    turn, then the run, then each ceiling...). The figures are the means: of the runs,
    and for each ceiling of each run's two neighbouring runs of it."""
    taken: dict[str, list[dict[str, float]]] = {name: [] for name in ceilings}

    def ceilings_once() -> None:
        for name, ceiling in ceilings.items():
            taken[name].append(ceiling(seconds))

    ceilings_once()
    runs = []
    for _ in range(rounds):
        runs.append(run())
        ceilings_once()
    out = {}
    for name, figures in taken.items():
        brackets = [(a["rps"] + b["rps"]) / 2 for a, b in itertools.pairwise(figures)]
        out[name] = {**_mean_of(figures), "rps": sum(brackets) / rounds}
    return out, _mean_of(runs)


def _mean_of(runs: list[dict[str, float]]) -> dict[str, Any]:
    return {"rps": sum(r["rps"] for r in runs) / len(runs),
            "non_2xx": sum(r["non_2xx"] for r in runs),
            "runs_rps": [r["rps"] for r in runs]}  # fmt: skip


STATIC_LUA = """
local f = io.open(os.getenv("BODY"), "r"); wrk.body = f:read("*a"); f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("KEY") or "")
"""


def _serve_env(urls: dict[str, str], work: Path, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "LOYALTY_DATABASE_URL": urls["database"], "LOYALTY_REDIS_URL": urls["redis"],
        "LOYALTY_PORT": str(port), "LOYALTY_WORKERS": str(WORKERS),
        "LOYALTY_DATA_DIR": str(work / "serve"), "LOYALTY_LOG_LEVEL": "info",
        "LOYALTY_DEMO_ADMIN_KEY": ADMIN_KEY, "LOYALTY_DEMO_POS_KEY": POS_KEY,
    }  # fmt: skip


async def _ready_workers(
    url: str, known: set[str], want: int, timeout_s: float = 60.0
) -> list[float]:
    """When each of ``want`` workers not in ``known`` first answered 200 on /readyz
    (``time.monotonic()``, in order). Rounds of concurrent requests on fresh
    connections, so that whichever worker accepts is seen; a worker is timed at the
    first round it wins after it is ready, so the figures can only err late, by about
    one round (~20 ms)."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout_s
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=2) as client:

        async def probe() -> None:
            try:
                answer = await client.get(url)
            except httpx.TransportError:
                return
            pid = answer.headers.get("x-worker-pid", "")
            if answer.status_code == 200 and pid not in known:
                seen.setdefault(pid, time.monotonic())

        while len(seen) < want:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{want} new workers not ready after {timeout_s} s: {seen}")
            await asyncio.gather(*(probe() for _ in range(4)))
            await asyncio.sleep(0.02)
    known.update(seen)
    return sorted(seen.values())


def measure_ready(proc: subprocess.Popen[bytes], log: Path, base: str) -> dict[str, float]:
    """The supervisor's start, its workers' start, and one worker's restart.

    ``loyalty serve`` migrates, checks the demo, preloads the app and the kernels, binds
    the port, then forks the workers (logging "worker started" for each) and prints its
    banner once one answers: "start" is launch to the first fork, "ready" the first fork
    to each worker's first 200 on /readyz. Then one worker is killed (SIGKILL, no load)
    and "restart" times its replacement's first 200."""
    launched = time.monotonic()
    _wait_for_line(log, '"worker started"')
    banner = time.monotonic()
    workers: set[str] = set()
    ready = asyncio.run(_ready_workers(f"{base}/readyz", workers, WORKERS))
    victim = int(next(iter(workers)))
    assert victim != proc.pid, "the supervisor itself answered"
    os.kill(victim, signal.SIGKILL)
    killed = time.monotonic()
    (restarted,) = asyncio.run(_ready_workers(f"{base}/readyz", workers, 1))
    return {"start_s": banner - launched, "first_ready_s": ready[0] - banner,
            "ready_s": ready[-1] - banner, "restart_s": restarted - killed}  # fmt: skip


def measure_service(
    urls: dict[str, str],
    work: Path,
    seconds: int,
    label: str,
    ceiling: dict[str, Callable[[int], dict[str, float]]] | None = None,
) -> dict[str, Any]:
    """The service's figures; with ``ceiling``, also the bare stack's, taken before, between
    and after the calculate runs (``out["ceiling"]``, ``_alternated``)."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "service.cli", "serve"]
    log = work / f"serve-{label}.log"
    with _process(args, _serve_env(urls, work, port), log) as proc:
        ready = measure_ready(proc, log, base)
        key = {"KEY": POS_KEY}
        httpx.post(
            f"{base}/v1/calculate",
            content=calculate_body(),
            timeout=10,
            headers={"Authorization": f"Bearer {POS_KEY}", "Content-Type": "application/json"},
        ).raise_for_status()
        script = _lua(work, "calculate.lua", STATIC_LUA)
        body = {"BODY": str(work / "calculate.json")}
        # Warm-up, not counted: the worker that replaced the killed one serves its first
        # requests, and both are busy before wrk opens the measured runs' connections.
        _wrk(f"{base}/v1/calculate", script, 2, {**key, **body})
        out: dict[str, Any] = {"ready": ready}

        def calculate() -> dict[str, float]:
            return _wrk(f"{base}/v1/calculate", script, seconds, {**key, **body})

        if ceiling is None:
            calc = _mean_of([calculate() for _ in range(ROUNDS)])
        else:
            out["ceiling"], calc = _alternated(ceiling, calculate, seconds)
        out["calculate"] = calc
        if label != "demo":
            return out
        out |= _latencies_and_commits(base, work, seconds, calc["rps"], urls["database"])
        out["holds"] = _holds(base, work, seconds)
    return out


# A calculate over the benchmark cards in turn (each cached by commits.prepare's
# calculations), spending 10 points, with or without "hold": true (HOLD).
CARDS_LUA = """
local f = io.open(os.getenv("BODY"), "r"); local template = f:read("*a"); f:close()
local cards = tonumber(os.getenv("CARDS")); local counter = 0
local headers = {["Content-Type"] = "application/json",
                 ["Authorization"] = "Bearer " .. os.getenv("KEY")}
request = function()
  counter = counter + 1
  local body = template:gsub("@CARD@", string.format("88%011d", counter % cards))
  return wrk.format("POST", "/v1/calculate", headers, body)
end
"""


def _holds(base: str, work: Path, seconds: int) -> dict[str, Any]:
    """Calculate with a hold beside the plain one, the same receipts over the same cards,
    taken in turn (plain, hold, plain, hold): a hold costs its round trips to the ledger
    (the hold under the card's lock, the card's state cached again), a plain calculate
    none. SPEC §3.5."""
    script = _lua(work, "cards.lua", CARDS_LUA)
    env = {"KEY": POS_KEY, "CARDS": str(BENCH_CARDS)}
    bodies = {}
    for hold in (False, True):
        bodies[hold] = work / f"calculate-hold-{hold}.json"
        bodies[hold].write_bytes(orjson.dumps({**sale_receipt(None), "hold": hold}))
    runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    for _ in range(2):
        for hold in (False, True):
            runs[hold].append(
                _wrk(f"{base}/v1/calculate", script, seconds, {**env, "BODY": str(bodies[hold])})
            )
    return {"plain": _mean_of(runs[False]), "hold": _mean_of(runs[True])}


def _latencies_and_commits(
    base: str, work: Path, seconds: int, calc_rps: float, dsn: str
) -> dict[str, Any]:
    before = _histogram(httpx.get(f"{base}/metrics").text, "/v1/calculate")
    static = calculate_body()
    paced = _paced(
        f"{base}/v1/calculate",
        _request_factory(f"{base}/v1/calculate", lambda k: static),
        calc_rps / 2,
        seconds,
    )
    after = _histogram(httpx.get(f"{base}/metrics").text, "/v1/calculate")
    paced["metrics_p50_le_ms"] = _histogram_quantile(before, after, 0.50) * 1000
    paced["metrics_p99_le_ms"] = _histogram_quantile(before, after, 0.99) * 1000
    files = commits.prepare(base, work, BENCH_CARDS)
    script = _lua(work, "commit.lua", commits.COMMIT_LUA)
    env = {"KEY": POS_KEY, "CARDS": str(BENCH_CARDS)}
    mark = asyncio.run(wal_mark(dsn))  # the WAL this run writes, per sale (benchmarks/wal.py)
    commit = _wrk(
        f"{base}/v1/commit",
        script,
        seconds,
        {
            **env,
            "BODY": str(files["after_calculate"]),
            "PLAN": str(files["plan"]),
            "RUN": f"w{int(time.time())}",
        },
    )
    wal = asyncio.run(wal_per_sale(dsn, mark))
    # Latency at half that rate right after it, as for calculate; then the other flow.
    body = commits.paced_body(commits.read_plan(files["plan"]), f"p{int(time.time())}")
    before = _histogram(httpx.get(f"{base}/metrics").text, "/v1/commit")
    commit_paced = _paced(
        f"{base}/v1/commit", _request_factory(f"{base}/v1/commit", body), commit["rps"] / 2, seconds
    )
    after = _histogram(httpx.get(f"{base}/metrics").text, "/v1/commit")
    commit_paced["metrics_p50_le_ms"] = _histogram_quantile(before, after, 0.50) * 1000
    commit_paced["metrics_p99_le_ms"] = _histogram_quantile(before, after, 0.99) * 1000
    again = {**env, "BODY": str(files["receipt"]), "RUN": f"r{int(time.time())}"}
    commit_receipt = _wrk(f"{base}/v1/commit", script, seconds, again)
    return {"calculate_paced": paced, "commit": commit, "commit_receipt": commit_receipt,
            "commit_paced": commit_paced, "commit_wal": wal}  # fmt: skip


def measure_pgbench(urls: dict[str, str], seconds: int) -> float:
    from benchmarks.fixtures import pgbench_binary, pgbench_database

    dsn = asyncio.run(pgbench_database(urls["server"]))
    binary = pgbench_binary()
    subprocess.run([binary, "-i", "-q", dsn], check=True, capture_output=True)
    out = subprocess.run(
        [binary, "-N", "-c", "16", "-j", "2", "-T", str(seconds), dsn],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(re.search(r"tps = ([\d.]+)", out).group(1))  # type: ignore[union-attr]


def measure_kernel() -> dict[str, float]:
    from benchmarks.kernels import measure_cell, program

    cell = measure_cell(program(1_000, 50), 30)
    return {"reference_us": cell["reference"] * 1e6, "kernel_us": cell["kernel"] * 1e6,
            "evaluate_us": cell["evaluate"] * 1e6}  # fmt: skip


@contextmanager
def _servers(work: Path) -> Iterator[dict[str, str]]:
    database = os.environ.get("LOYALTY_BENCH_DATABASE_URL")
    redis_url = os.environ.get("LOYALTY_BENCH_REDIS_URL")
    servers = None
    given = {"postgres": bool(database), "redis": bool(redis_url)}
    if not (database and redis_url):
        from service.local.embedded import start_embedded

        servers = start_embedded(
            work / "data", need_postgres=not database, need_redis=not redis_url
        )
        database = database or servers.database_url
        redis_url = redis_url or servers.redis_url
    assert database and redis_url
    used = " and ".join(
        f"{name} {'named by LOYALTY_BENCH_*' if mine else 'embedded (started by the bench)'}"
        for name, mine in given.items()
    )
    try:
        yield {"server": database, "redis": redis_url, "used": used}
    finally:
        if servers is not None:
            servers.stop()


async def _server_version(urls: dict[str, str]) -> str:
    conn = await asyncpg.connect(urls["database"])
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def run(seconds: int) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="loyalty-bench-"))
    os.chmod(work, 0o755)
    (work / "calculate.json").write_bytes(calculate_body())
    results: dict[str, Any] = {}
    with _servers(work) as urls:
        urls["database"] = asyncio.run(prepare_database(urls["server"], urls["redis"]))
        results["servers"] = f"{urls['used']}; Postgres {asyncio.run(_server_version(urls))}"
        with bare_stack(work) as ceiling:
            results["demo"] = measure_service(urls, work, seconds, "demo", ceiling)
        ceilings = results["demo"].pop("ceiling")
        results["ceiling"], results["ceiling_standard"] = ceilings["lean"], ceilings["standard"]
        results["pgbench_tps"] = measure_pgbench(urls, seconds)
        results["ledger_sales"] = measure_ledger(urls["database"], BENCH_CARDS, seconds)
        results["open_lots"] = measure_open_lots(urls["database"], min(seconds, 5))
        asyncio.run(publish_many_rules(urls["database"], 5_000))
        results["rules_5000"] = measure_service(urls, work, seconds, "rules_5000")
    results["kernel"] = measure_kernel()
    shutil.rmtree(work, ignore_errors=True)
    return results


def ratios(r: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """(what, figure, target, verdict, first round's figure, first round's target) rows
    of SPEC §8: the targets of issue 21 beside the first round's, from the same run."""
    calc, ceiling = r["demo"]["calculate"]["rps"], r["ceiling"]["rps"]
    standard = r["ceiling_standard"]["rps"]
    commit, pgb = r["demo"]["commit"]["rps"], r["pgbench_tps"]
    kernel = r["kernel"]["reference_us"] / r["kernel"]["kernel_us"]
    slow = r["demo"]["calculate"]["rps"] / r["rules_5000"]["calculate"]["rps"]
    p99 = r["demo"]["calculate_paced"]["p99_ms"]
    commit_p99 = r["demo"]["commit_paced"]["p99_ms"]
    wal = r["demo"]["commit_wal"]["per_sale"]
    lots = r["open_lots"]["median"]["200"] / r["open_lots"]["median"]["1"]
    ready = max(r["demo"]["ready"]["ready_s"], r["rules_5000"]["ready"]["ready_s"])
    restart = max(r["demo"]["ready"]["restart_s"], r["rules_5000"]["ready"]["restart_s"])

    def verdict(ok: bool) -> str:
        return "meets" if ok else "**misses**"

    return [
        ("/v1/calculate vs the bare stack's echo on calculate's own path (PosRoute)",
         f"{calc / ceiling:.0%}", ">= 70%", verdict(calc / ceiling >= 0.70),
         f"{calc / standard:.0%} of FastAPI's standard echo", ">= 55%"),
        ("/v1/calculate p99 at half its throughput", f"{p99:.1f} ms", "<= 10 ms",
         verdict(p99 <= 10), "same", "<= 20 ms"),
        ("/v1/commit vs pgbench -N", f"{commit / pgb:.0%}", ">= 45%",
         verdict(commit / pgb >= 0.45), f"{commit:.0f}/s, {commit / standard:.0%} of the"
         " standard echo", f">= 2,000/s, >= {COMMIT_CEILING_SHARE:.0%}"),
        ("/v1/commit p99 at half its throughput", f"{commit_p99:.1f} ms", "<= 20 ms",
         verdict(commit_p99 <= 20), "same", "<= 40 ms"),
        ("/v1/commit WAL per sale (benchmarks/wal.py)", f"{wal / 1024:.1f} KB", "<= 2 KB",
         verdict(wal <= 2048), "same", "none"),
        ("commit at 200 open lots per card vs 1 (the ledger alone, medians)", f"{lots:.0%}",
         ">= 90%", verdict(lots >= 0.9), "same", ">= 90%"),
        ("kernel vs reference, 1,000 rules x 30 lines", f"{kernel:.0f}x", ">= 100x",
         verdict(kernel >= 100), "same", ">= 100x"),
        ("/v1/calculate time at 5,000 rules vs the demo's", f"{slow:.2f}x", "<= 2x",
         verdict(slow <= 2), "same", "<= 2x"),
        ("both workers ready after their fork (slower of two starts)", f"{ready:.2f} s",
         "<= 1 s", verdict(ready <= 1), "same", "<= 3 s"),
        ("a killed worker's replacement ready (slower of two runs)", f"{restart:.2f} s",
         "<= 1 s", verdict(restart <= 1), "same", "<= 3 s"),
    ]  # fmt: skip


def section(r: dict[str, Any]) -> str:
    demo = r["demo"]
    rows = "\n".join("| " + " | ".join(row) + " |" for row in ratios(r))
    cp, mp = demo["calculate_paced"], demo["commit_paced"]
    start, first, ready, restart = (
        " / ".join(f"{r[run]['ready'][key]:.2f}" for run in ("demo", "rules_5000"))
        for key in ("start_s", "first_ready_s", "ready_s", "restart_s")
    )
    return f"""## Service

Reproduce with `{COMMAND}`; benchmarks/service.py says what each step does. All
figures below come from one run on this shared 2-core machine, wrk and the service
on the same cores; compare ratios, not absolute numbers. Servers: {r["servers"]}.

| SPEC §8 | measured | target | | first round: measured | first round: target |
| --- | ---: | ---: | --- | ---: | ---: |
{rows}

Context (same run): bare stack {r["ceiling"]["rps"]:.0f} req/s on calculate's own path
(PosRoute) and {r["ceiling_standard"]["rps"]:.0f} req/s by FastAPI's standard body handling,
/v1/calculate {demo["calculate"]["rps"]:.0f} req/s (demo program), the means of wrk runs taken
in turn (lean echo, standard echo, calculate, lean echo, ...): lean echo
{_listed(r["ceiling"]["runs_rps"])}; standard echo {_listed(r["ceiling_standard"]["runs_rps"])};
calculate {_listed(demo["calculate"]["runs_rps"])} (each ceiling figure: for each calculate run
the mean of that ceiling's runs on either side of it, averaged over the runs);
/v1/calculate with 5,000 rules {r["rules_5000"]["calculate"]["rps"]:.0f} req/s (runs:
{_listed(r["rules_5000"]["calculate"]["runs_rps"])});
/v1/commit {demo["commit"]["rps"]:.0f} sales/s after a calculation
({demo["commit"]["non_2xx"]:.0f} non-2xx) and {demo["commit_receipt"]["rps"]:.0f} sales/s with the
receipt sent again, no calculation id ({demo["commit_receipt"]["non_2xx"]:.0f} non-2xx), against
pgbench -N {r["pgbench_tps"]:.0f} tps and the ledger alone, {r["ledger_sales"]:.0f} sales/s
(loyalty_commit_many from 4 connections, batches of 4, no HTTP);
the commit run's WAL: {wal_line(demo["commit_wal"])}
The ledger alone by open lots per card (medians of 3 rounds taken in turn):
{open_lots_line(r["open_lots"])};
calculate at {cp["rate"]:.0f}/s: p50 {cp["p50_ms"]:.1f} ms, p99 {cp["p99_ms"]:.1f} ms,
p99.9 {cp["p999_ms"]:.1f} ms ({cp["errors"]:.0f} errors), and /metrics puts p50 at
<= {cp["metrics_p50_le_ms"]:g} ms and p99 at <= {cp["metrics_p99_le_ms"]:g} ms (bucket bounds);
commit at {mp["rate"]:.0f}/s: p50 {mp["p50_ms"]:.1f} ms, p99 {mp["p99_ms"]:.1f} ms,
p99.9 {mp["p999_ms"]:.1f} ms ({mp["errors"]:.0f} errors), and /metrics puts p50 at
<= {mp["metrics_p50_le_ms"]:g} ms and p99 at <= {mp["metrics_p99_le_ms"]:g} ms;
/v1/calculate with a hold {demo["holds"]["hold"]["rps"]:.0f} req/s against
{demo["holds"]["plain"]["rps"]:.0f} without ({_hold_share(demo)}: the same 3-line receipt spending
10 points over the 2,000 benchmark cards, runs taken in turn; non-2xx
{demo["holds"]["hold"]["non_2xx"]:.0f} / {demo["holds"]["plain"]["non_2xx"]:.0f});
kernel {r["kernel"]["kernel_us"]:.0f} µs, evaluate() {r["kernel"]["evaluate_us"]:.0f} µs,
reference {r["kernel"]["reference_us"]:.0f} µs
per receipt. Start (demo program / 5,000 rules): launch to banner {start} s (migrations,
the demo check, then preloading the app and the kernels and binding the port, before any
worker exists); banner to the first worker ready {first} s, to both {ready} s; a
worker killed (SIGKILL, no load) to its replacement's first ready answer {restart} s.
"""


def _hold_share(demo: dict[str, Any]) -> str:
    holds = demo.get("holds")
    if not holds:
        return "not measured"
    return f"{holds['hold']['rps'] / holds['plain']['rps']:.0%} of the plain rate"


def _listed(figures: list[float]) -> str:
    return ", ".join(f"{figure:.0f}" for figure in figures)


def write_section(text: str) -> None:
    replace_section("Service", text)


def _headline(r: dict[str, Any]) -> str:
    calc = r["demo"]["calculate"]["rps"] / r["ceiling"]["rps"]
    old = r["demo"]["calculate"]["rps"] / r["ceiling_standard"]["rps"]
    commit, p99 = r["demo"]["commit"]["rps"], r["demo"]["commit_paced"]["p99_ms"]
    share = commit / r["pgbench_tps"]
    wal = r["demo"]["commit_wal"]["per_sale"] / 1024
    return (f"{calc:.0%} ({old:.0%}) / {commit:.0f} sales/s ({share:.0%} of pgbench -N,"
            f" {wal:.1f} KB WAL) / {p99:.0f} ms")  # fmt: skip


def _calculate_ratio(r: dict[str, Any]) -> float:
    return float(r["demo"]["calculate"]["rps"] / r["ceiling"]["rps"])


def median_section(runs: list[dict[str, Any]]) -> str:
    """The section of the median run by the calculate ratio (one real run: its figures
    belong together), and every run's headline figures after it."""
    ordered = sorted(runs, key=_calculate_ratio)
    text = section(ordered[len(ordered) // 2])
    if len(runs) > 1:
        each = "; ".join(_headline(r) for r in runs)
        text += f"""
The table is the median of {len(runs)} runs by the calculate ratio, taken one after the
other; every run's calculate vs the lean echo (vs the standard echo) / commits after a
calculation (their share of pgbench -N, WAL per sale) / commit p99 at half rate, in order:
{each}.
"""
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each load run")
    parser.add_argument("--runs", type=int, default=3, help="whole runs; the median is written")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    runs = []
    for _ in range(args.runs):
        runs.append(run(args.seconds))
        print(orjson.dumps(runs[-1], option=orjson.OPT_INDENT_2).decode())
    text = median_section(runs)
    print(text)
    if not args.no_write:
        write_section(text)


if __name__ == "__main__":
    main()
