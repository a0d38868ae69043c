"""A safe start (SPEC §6): a port another process listens on is refused, a hung worker
is replaced, and the banner comes once the service answers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.startup import PortUnavailable, check_port
from service.supervisor import GRACEFUL_S
from tests.conftest import ADMIN_KEY, POS, POS_KEY
from tests.e2e.servers import free_port, two_workers
from tests.e2e.test_pos_api import receipt
from tests.e2e.test_supervisor import _alive, _parent, _ready_workers

UNREACHABLE = {  # the port check comes before any of these is tried
    "LOYALTY_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none",
    "LOYALTY_REDIS_URL": "redis://127.0.0.1:1/0",
}


@contextlib.contextmanager
def listener(*, reuse_port: bool) -> Iterator[int]:
    """Another process's server on a free port; with ``reuse_port``, one that sets
    SO_REUSEPORT as the service's workers do (another ``loyalty serve``, say), which the
    kernel would have let a second service join."""
    with socket.socket() as sock:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("reuse_port", [False, True], ids=["plain", "reuse-port"])
def test_a_port_another_process_listens_on_is_refused(reuse_port: bool, tmp_path: Path) -> None:
    with listener(reuse_port=reuse_port) as port:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
            env={**os.environ, **UNREACHABLE, "LOYALTY_DATA_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode != 0
    assert f"cannot serve on 127.0.0.1:{port}: another process listens on it" in done.stderr
    assert "LOYALTY_PORT=<port>" in done.stderr and "--port <port>" in done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert time.monotonic() - started < 30


def test_connections_left_in_time_wait_do_not_hold_the_port() -> None:
    """A restart right after a stop finds the port free: the connections the last run
    closed first stay in TIME_WAIT for a minute, and a plain bind would fail on them."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the workers'
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = int(server.getsockname()[1])
        with socket.create_connection(("127.0.0.1", port)):
            accepted, _ = server.accept()
            accepted.close()  # the server side closes first: its end goes to TIME_WAIT
            time.sleep(0.1)  # once the client's end closes too, after the FIN's ACK
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))
    check_port("127.0.0.1", port)


def test_a_free_port_passes_and_a_listened_one_does_not() -> None:
    check_port("127.0.0.1", free_port())
    with listener(reuse_port=True) as port, pytest.raises(PortUnavailable):
        check_port("127.0.0.1", port)


async def test_a_hung_worker_is_replaced(demo_database: str, clean_redis: str) -> None:
    hang = {"LOYALTY_WORKER_HANG_S": "3"}
    async with two_workers(demo_database, clean_redis, **hang) as served:
        supervisor = served.process.pid
        workers = await _ready_workers(served.url, 2)
        victim = min(workers)
        os.kill(victim, signal.SIGSTOP)  # its event loop stops: so does its heartbeat
        try:
            (replacement,) = await _ready_workers(served.url, 1, frozenset(workers))
            assert _parent(replacement) == supervisor
            deadline = time.monotonic() + GRACEFUL_S + 5
            while _alive(victim):
                assert time.monotonic() < deadline, "the hung worker was left running"
                await asyncio.sleep(0.2)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGCONT)
        fresh = httpx.Limits(max_keepalive_connections=0)  # either worker may answer each
        async with httpx.AsyncClient(base_url=served.url, headers=POS, limits=fresh) as client:
            for _ in range(4):
                answer = await client.post("/v1/calculate", json=receipt())
                assert answer.status_code == 200, answer.text


async def test_the_banner_comes_once_the_service_answers(
    demo_database: str, clean_redis: str
) -> None:
    """Its first line is printed once /readyz answers 200, and the call it suggests works."""
    port, data_dir = free_port(), Path(tempfile.mkdtemp(prefix="loyalty-banner-"))
    env = {
        **os.environ, "LOYALTY_DATABASE_URL": demo_database, "LOYALTY_REDIS_URL": clean_redis,
        "LOYALTY_DATA_DIR": str(data_dir), "LOYALTY_DEMO_ADMIN_KEY": ADMIN_KEY,
        "LOYALTY_DEMO_POS_KEY": POS_KEY, "LOYALTY_LOG_LEVEL": "warning",
    }  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "service.cli", "serve", "--workers", "1", "--port", str(port)],
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), 120)
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/readyz")).status_code == 200
            assert first.decode().startswith(f"Loyalty engine: {url} is ready")
            banner = [(await proc.stdout.readline()).decode() for _ in range(4)]
            suggested = banner[-1].strip()
            assert suggested.startswith("curl -s -H 'Authorization: Bearer "), banner
            card = suggested.rsplit(url, 1)[1]
            answer = await client.get(card, headers=POS)
            assert answer.status_code == 200, answer.text
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 30)
        shutil.rmtree(data_dir, ignore_errors=True)
