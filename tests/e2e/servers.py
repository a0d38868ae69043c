"""A real `loyalty serve --workers 2` process over the test session's Postgres and Redis."""

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
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import ADMIN_KEY, POS_KEY


@dataclass(frozen=True)
class Served:
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]  # the supervisor

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def loyalty(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The ``loyalty`` command line (``python -m service.cli``) against a database."""
    env = {**os.environ, "LOYALTY_DATABASE_URL": database_url, "LOYALTY_LOG_LEVEL": "warning"}
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(url: str, attempts: int = 300) -> None:
    async with httpx.AsyncClient(base_url=url) as client:
        for _ in range(attempts):
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"{url} did not become ready")


@contextlib.asynccontextmanager
async def two_workers(
    database_url: str, redis_url: str, *, demo_keys: bool = True, **settings: str
) -> AsyncIterator[Served]:
    """Serve with two workers until the block ends (then SIGINT, as an operator would);
    with the tests' fixed demo keys unless ``demo_keys`` is False (production refuses them)."""
    port, data_dir = free_port(), Path(tempfile.mkdtemp(prefix="loyalty-served-"))
    keys = {"LOYALTY_DEMO_ADMIN_KEY": ADMIN_KEY, "LOYALTY_DEMO_POS_KEY": POS_KEY}
    env = {
        **{k: v for k, v in os.environ.items() if k not in keys},
        "LOYALTY_DATABASE_URL": database_url, "LOYALTY_REDIS_URL": redis_url,
        "LOYALTY_DATA_DIR": str(data_dir), **(keys if demo_keys else {}),
        "LOYALTY_LOG_LEVEL": "warning", **settings,
    }  # fmt: skip
    command = [sys.executable, "-m", "service.cli", "serve", "--workers", "2",
               "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, waited for over HTTP
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    served = Served(port, data_dir, proc)
    try:
        await wait_ready(served.url)
        yield served
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(data_dir, ignore_errors=True)
