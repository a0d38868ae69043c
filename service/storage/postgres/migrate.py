"""Schema migrations with Alembic, applied at start and by ``loyalty migrate``.

Every run holds a Postgres advisory lock (``_ADVISORY_KEY``) from before Alembic reads
the schema's revision to after it commits: of many pods started at once, one migrates
and the others wait, then find the schema up to date and change nothing. The lock is
held by a connection of its own, so a migrator that dies releases it with its session
(and Alembic's transaction rolls back); one that hangs holds the others until it is
killed. Session advisory locks need a session: point the service at Postgres itself,
or at a pooler in session mode, not at one in transaction mode.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

if TYPE_CHECKING:
    from alembic.config import Config

_MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant other than the expiry job's (expiry.py): one schema change at a time.
_ADVISORY_KEY = 0x5C_4E3A

_log = logging.getLogger(__name__)


def sqlalchemy_url(database_url: str) -> str:
    """The same DSN for SQLAlchemy's asyncpg dialect (``postgresql+asyncpg://``). Hosts
    listed in the netloc (``u@h1:5432,h2:5433/db``, a primary and its standbys) move to
    libpq's ``?host=h1,h2&port=5432,5433``, which SQLAlchemy reads and asyncpg honours."""
    parts = urlsplit(database_url)
    if parts.scheme not in ("postgres", "postgresql", "postgresql+asyncpg"):
        raise ValueError(f"not a Postgres URL: scheme {parts.scheme!r}")
    user, at, hosts = parts.netloc.rpartition("@")
    if "," in hosts:
        pairs = [host.rpartition(":") if ":" in host else (host, "", "5432") for host in
                 hosts.split(",")]  # fmt: skip
        query = [*parse_qsl(parts.query), ("host", ",".join(h for h, _, _ in pairs)),
                 ("port", ",".join(p for _, _, p in pairs))]  # fmt: skip
        parts = parts._replace(netloc=f"{user}{at}", query=urlencode(query, safe=","))
    return urlunsplit(parts._replace(scheme="postgresql+asyncpg"))


def head_revision() -> str:
    """The newest revision, by the migrations' file names (``0009_keys_and_roles.py``:
    numbered, one after the other; tests/integration/test_migrate_lock.py holds it to
    Alembic's own head)."""
    return max(path.name.partition("_")[0] for path in (_MIGRATIONS / "versions").glob("0*.py"))


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    # ConfigParser interpolation treats '%' specially; escape it in passwords.
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    return config


@asynccontextmanager
async def _migration_lock(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """Hold the migrations' advisory lock for the block, waiting for it if need be."""
    dsn = urlunsplit(urlsplit(database_url)._replace(scheme="postgresql"))
    conn = await asyncpg.connect(dsn)
    try:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _ADVISORY_KEY):
            _log.info("another process is migrating the schema; waiting for it")
            await conn.execute("SELECT pg_advisory_lock($1)", _ADVISORY_KEY)
        yield conn
    finally:
        await conn.close()  # ends the session, and with it the lock


async def upgrade_async(database_url: str, revision: str = "head") -> None:
    """Bring the schema to ``revision``, under the migrations' lock. Alembic runs its
    own event loop, so in a thread. A schema already at the head is left without loading
    Alembic: its import (SQLAlchemy's with it) is 1.2 s of every start and every
    ``loyalty keys`` command (`python -X importtime`, this 2-core box)."""
    async with _migration_lock(database_url) as conn:
        if revision == "head" and await _revision(conn) == head_revision():
            return
        from alembic import command

        await asyncio.to_thread(command.upgrade, alembic_config(database_url), revision)


async def _revision(conn: asyncpg.Connection) -> str | None:
    if await conn.fetchval("SELECT to_regclass('alembic_version')") is None:
        return None
    revision: str | None = await conn.fetchval("SELECT version_num FROM alembic_version")
    return revision


async def downgrade_async(database_url: str, revision: str) -> None:
    from alembic import command

    async with _migration_lock(database_url):
        await asyncio.to_thread(command.downgrade, alembic_config(database_url), revision)


def upgrade(database_url: str, revision: str = "head") -> None:
    """``upgrade_async`` from code with no event loop running (the CLI)."""
    asyncio.run(upgrade_async(database_url, revision))


def downgrade(database_url: str, revision: str) -> None:
    asyncio.run(downgrade_async(database_url, revision))
