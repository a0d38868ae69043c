"""Schemathesis over ``/openapi.json``, as every role: no input may make a 500, and every
status the service answers is one its OpenAPI document declares.

It drives a real two-worker server over a database and a Redis database of its own: the
generated requests publish programs, block cards and erase customers, which the rest of
the suite must not see. Bounded: ``LOYALTY_FUZZ_EXAMPLES`` examples per operation (the
default keeps the run under a minute or so), ``LOYALTY_FUZZ_SEED`` to reproduce a run.
Marked slow, out of ``make test``: ``make fuzz`` runs it with 100 (CI does).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import ADMIN_KEY, POS_KEY, fresh_database, load_test_demo, worker_redis_db
from tests.e2e.servers import Served, two_workers

EXAMPLES = int(os.environ.get("LOYALTY_FUZZ_EXAMPLES", "8"))
SEED = int(os.environ.get("LOYALTY_FUZZ_SEED", "20261207"))
CHECKS = "not_a_server_error,status_code_conformance"
ROLES = {"admin": ADMIN_KEY, "pos": POS_KEY, "no key": None}


@pytest.fixture(scope="module")
async def fuzz_server(server_url: str, redis_url: str) -> AsyncIterator[Served]:
    async with fresh_database(server_url, "loyalty_fuzz") as url:
        await load_test_demo(url)
        async with two_workers(url, worker_redis_db(redis_url, offset=2)) as served:
            yield served


def _folders(root: Path) -> dict[str, Path]:
    """A working folder per role, for schemathesis's reports."""
    folders = {role: root / role.replace(" ", "-") for role in ROLES}
    for folder in folders.values():
        folder.mkdir()
    return folders


async def _schemathesis(url: str, key: str | None, folder: Path) -> tuple[int, str]:
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json",
        "--checks", CHECKS, "--max-examples", str(EXAMPLES), "--seed", str(SEED),
        "--phases", "examples,coverage,fuzzing", "--no-color",
        "--generation-database", "none", "--report-dir", str(folder),
    ]  # fmt: skip
    if key is not None:
        command += ["--header", f"Authorization: Bearer {key}"]
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=folder
    )
    output, _ = await asyncio.wait_for(proc.communicate(), timeout=600)
    assert proc.returncode is not None
    return proc.returncode, output.decode(errors="replace")


@pytest.mark.slow
async def test_no_server_error_and_only_declared_statuses_for_every_role(
    fuzz_server: Served, tmp_path: Path
) -> None:
    """The three roles at once (the server has two workers and the run waits on it)."""
    folders = _folders(tmp_path)
    runs = await asyncio.gather(
        *(_schemathesis(fuzz_server.url, key, folders[role]) for role, key in ROLES.items())
    )
    failed = {role: text[-6000:] for role, (code, text) in zip(ROLES, runs, strict=True) if code}
    assert not failed, "\n\n".join(f"schemathesis as {r}:\n{t}" for r, t in failed.items())
