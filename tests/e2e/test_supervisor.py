"""`loyalty serve --workers 2`: a worker that dies is replaced; SIGTERM stops them all."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import POS
from tests.e2e.servers import two_workers
from tests.e2e.test_pos_api import receipt


async def _ready_workers(url: str, want: int, known: frozenset[int] = frozenset()) -> set[int]:
    """Pids of ``want`` workers not in ``known`` that answer /readyz with 200; fresh
    connections in bursts, so that either worker gets to answer."""
    seen: set[int] = set()
    deadline = time.monotonic() + 30
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=limits) as client:
        while len(seen) < want:
            assert time.monotonic() < deadline, f"only {seen} ready"
            answers = await asyncio.gather(
                *(client.get("/readyz") for _ in range(8)), return_exceptions=True
            )
            seen |= {
                int(a.headers["x-worker-pid"])
                for a in answers
                if isinstance(a, httpx.Response) and a.status_code == 200
            } - known
            await asyncio.sleep(0.05)
    return seen


def _parent(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_killed_worker_is_replaced_and_sigterm_stops_everything(
    demo_database: str, clean_redis: str
) -> None:
    async with two_workers(demo_database, clean_redis) as served:
        supervisor = served.process.pid
        workers = await _ready_workers(served.url, 2)
        assert {_parent(pid) for pid in workers} == {supervisor}

        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        (replacement,) = await _ready_workers(served.url, 1, frozenset(workers))
        assert _parent(replacement) == supervisor
        fresh = httpx.Limits(max_keepalive_connections=0)  # either worker may answer each
        async with httpx.AsyncClient(base_url=served.url, headers=POS, limits=fresh) as client:
            for _ in range(4):
                answer = await client.post("/v1/calculate", json=receipt())
                assert answer.status_code == 200, answer.text

        served.process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(served.process.wait, 30) == 0
        for pid in workers - {victim} | {replacement}:
            assert not _alive(pid), f"worker {pid} outlived the supervisor"
        async with httpx.AsyncClient(base_url=served.url) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get("/healthz")
