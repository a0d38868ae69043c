"""Start what a load run needs, run it, stop what was started (``make loadtest``,
``make replay``):

    python -m loadtests.harness locust [--run-time 60s] [--users 8] [-- more locust args]
    python -m loadtests.harness replay [--limit N] [--concurrency 16]

1. servers: ``LOYALTY_DATABASE_URL`` / ``LOYALTY_REDIS_URL`` when set, else embedded
   Postgres and Redis in a fresh data folder (``.loyalty/loadtest``, wiped first);
2. ``loyalty serve --workers 2`` on 127.0.0.1 (port 18400 unless ``--port``), its log
   in the data folder; the run refuses to start if something already listens there;
3. ``loadtests.setup`` (stores, cards, the POS key), then a probe calculation until the
   workers have picked up the new stores and key (they re-read them every few seconds);
4. locust headless (its summary is printed) or the replay (its totals and checks);
5. the service is stopped by its PID, then the embedded servers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import uvloop

from loadtests import replay, setup
from loadtests.dataset import card_number, store_code
from loadtests.serving import start_service, stop_service
from service.local.embedded import EmbeddedServers, start_embedded

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / ".loyalty" / "loadtest"  # .loyalty/ is git-ignored
DEFAULT_PORT = 18400  # not 8000: never send load to a service someone else started
READY_TIMEOUT_S = 120.0  # a first start may compile the kernels
PROBE_TIMEOUT_S = 30.0  # workers re-read keys and stores every LOYALTY_API_KEY_REFRESH_S


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def servers(data_dir: Path) -> Iterator[tuple[str, str]]:
    """(database URL, Redis URL): the configured ones, else embedded ones started here."""
    database_url = os.environ.get("LOYALTY_DATABASE_URL")
    redis_url = os.environ.get("LOYALTY_REDIS_URL")
    embedded = EmbeddedServers()
    if database_url is None or redis_url is None:
        shutil.rmtree(data_dir, ignore_errors=True)
        embedded = start_embedded(
            data_dir, need_postgres=database_url is None, need_redis=redis_url is None
        )
    try:
        yield database_url or str(embedded.database_url), redis_url or str(embedded.redis_url)
    finally:
        embedded.stop()


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the service exited ({proc.returncode}):\n{_tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise SystemExit(f"the service was not ready in {READY_TIMEOUT_S:.0f} s:\n{_tail(log)}")


@contextlib.contextmanager
def service(
    database_url: str, redis_url: str, data_dir: Path, port: int, workers: int
) -> Iterator[tuple[str, int]]:
    """``loyalty serve`` on 127.0.0.1:port; yields its URL and PID; stops it by PID on exit."""
    if _listening(port):
        raise SystemExit(f"something already listens on 127.0.0.1:{port}; choose --port")
    env = {
        **os.environ, "LOYALTY_DATABASE_URL": database_url, "LOYALTY_REDIS_URL": redis_url,
        "LOYALTY_DATA_DIR": str(data_dir), "LOYALTY_HOST": "127.0.0.1",
    }  # fmt: skip
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "service.log"
    proc = start_service(env, log, port, workers)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc, log)
        print(f"harness: service pid {proc.pid} at {url}, log {log}", flush=True)
        yield url, proc.pid
    finally:
        stop_service(proc)
        print(f"harness: service stopped (exit {proc.returncode})", flush=True)


def _probe_body() -> dict[str, object]:
    """A one-line sale at a dataset store with a dataset card."""
    store_ids, households = setup.dataset_ids()
    return {
        "store_id": store_code(store_ids[0]), "card": card_number(households[0]),
        "timestamp": datetime.now(UTC).isoformat(),
        "lines": [{"line_id": "1", "sku": "probe", "quantity": "1", "unit_price": 10_000}],
    }  # fmt: skip


def wait_for_key(url: str, key: str) -> None:
    """Until the workers act on the new stores, cards and key (401/403/404 meanwhile)."""
    body, headers = _probe_body(), {"Authorization": f"Bearer {key}"}
    deadline = time.monotonic() + PROBE_TIMEOUT_S
    while time.monotonic() < deadline:
        answer = httpx.post(f"{url}/v1/calculate", json=body, headers=headers, timeout=10)
        if answer.status_code == 200:
            return
        if answer.status_code not in (401, 403, 404):
            raise SystemExit(f"probe calculation: {answer.status_code} {answer.text}")
        time.sleep(0.5)
    raise SystemExit(f"the service did not take up the load-test key in {PROBE_TIMEOUT_S:.0f} s")


def run_locust(url: str, key: str, args: argparse.Namespace, extra: list[str]) -> int:
    command = [
        sys.executable, "-m", "locust", "-f", str(ROOT / "loadtests" / "locustfile.py"),
        "--headless", "--only-summary", "--host", url, "--users", str(args.users),
        "--spawn-rate", str(args.spawn_rate), "--run-time", args.run_time, *extra,
    ]  # fmt: skip
    env = {
        **os.environ, "LOADTEST_POS_KEY": key, "LOADTEST_BASKETS": str(args.baskets),
        "PYTHONPATH": str(ROOT),
    }  # fmt: skip
    return subprocess.run(command, env=env, cwd=ROOT, check=False).returncode


def run_replay(url: str, pid: int, key: str, database_url: str, args: argparse.Namespace) -> int:
    options = argparse.Namespace(
        url=url,
        service_pid=pid,
        pos_key=key,
        database_url=database_url,
        limit=args.limit,
        concurrency=args.concurrency,
        run_tag=None,
    )
    return uvloop.run(replay.replay_year(options))  # the tills' loop: uvloop's, cheaper


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    runs = parser.add_subparsers(dest="run", required=True)
    load = runs.add_parser("locust", help="POS traffic, bounded time; other args: locust")
    load.add_argument("--run-time", default="60s")
    load.add_argument("--users", type=int, default=8)
    load.add_argument("--spawn-rate", type=float, default=4)
    load.add_argument("--baskets", type=int, default=5000, help="baskets of the year to draw from")
    year = runs.add_parser("replay", help="the year's baskets in time order, then ledger checks")
    year.add_argument("--limit", type=int, help="only the first N baskets")
    year.add_argument("--concurrency", type=int, default=16)
    args, extra = parser.parse_known_args(argv)
    if extra and args.run != "locust":
        parser.error(f"unknown arguments: {' '.join(extra)}")
    return args, extra


def main(argv: list[str] | None = None) -> int:
    args, extra = parse_args(argv)
    with servers(args.data_dir) as (database_url, redis_url):
        # Before the service starts: its own start would load the plain demo, whose
        # max_lateness_days refuses the year's receipts (setup.replay_program).
        key, stores, cards, _ = asyncio.run(setup.prepare(database_url, setup.configured_key()))
        print(f"harness: {stores} stores, {cards} cards, POS key {key}", flush=True)
        with service(database_url, redis_url, args.data_dir, args.port, args.workers) as served:
            return _run(args, extra, served, key, database_url)


def _run(
    args: argparse.Namespace, extra: list[str], served: tuple[str, int], key: str, database_url: str
) -> int:
    url, pid = served
    wait_for_key(url, key)
    if args.run == "locust":
        return run_locust(url, key, args, [a for a in extra if a != "--"])
    return run_replay(url, pid, key, database_url, args)


if __name__ == "__main__":
    sys.exit(main())
