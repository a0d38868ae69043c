"""Migrations under an advisory lock: pods that start at once migrate the schema once."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from alembic.script import ScriptDirectory

from service.storage.postgres import migrate
from tests.conftest import _admin_execute, _with_database


@pytest.fixture
async def empty_database(server_url: str) -> AsyncIterator[str]:
    name = f"loyalty_lock_{uuid.uuid4().hex[:10]}"
    await _admin_execute(server_url, f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(server_url, name)
    finally:
        await _admin_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _versions(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        if not await conn.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL"):
            return []
        return [r[0] for r in await conn.fetch("SELECT version_num FROM alembic_version")]
    finally:
        await conn.close()


async def _loyalty_migrate(database_url: str) -> tuple[int, str]:
    redis = "redis://127.0.0.1:1/0"  # not used by migrate: no embedded Redis started for it
    env = {**os.environ, "LOYALTY_DATABASE_URL": database_url, "LOYALTY_REDIS_URL": redis}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service.cli", "migrate", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, output.decode()


async def test_four_pods_migrating_at_once_all_succeed(empty_database: str) -> None:
    """Four processes, as four pods starting together; without the lock, some of them
    fail on objects another one created meanwhile."""
    done = await asyncio.gather(*(_loyalty_migrate(empty_database) for _ in range(4)))
    for code, output in done:
        assert code == 0, output
        assert "schema is up to date" in output
    head = ScriptDirectory.from_config(migrate.alembic_config(empty_database)).get_current_head()
    assert await _versions(empty_database) == [head]
    assert migrate.head_revision() == head  # what a start at the head skips Alembic by


async def test_an_upgrade_waits_while_another_holds_the_lock(empty_database: str) -> None:
    holder = await asyncpg.connect(empty_database)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", migrate._ADVISORY_KEY)
        upgrading = asyncio.create_task(migrate.upgrade_async(empty_database))
        await asyncio.sleep(1.0)
        assert not upgrading.done()
        assert await _versions(empty_database) == []
        await holder.execute("SELECT pg_advisory_unlock($1)", migrate._ADVISORY_KEY)
        await asyncio.wait_for(upgrading, 60)
    finally:
        await holder.close()
    assert len(await _versions(empty_database)) == 1
