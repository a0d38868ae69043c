"""The asyncpg pool and the mapping of Postgres failures to domain errors."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson

from service.domain.errors import Unavailable

# Connection-level failures: the database is down, restarting or unreachable.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.InterfaceError,
    TimeoutError,
)


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=lambda v: orjson.dumps(v).decode(),
        decoder=orjson.loads, format="text",
    )  # fmt: skip
    await conn.set_type_codec(
        "json", schema="pg_catalog", encoder=lambda v: orjson.dumps(v).decode(),
        decoder=orjson.loads, format="text",
    )  # fmt: skip


async def connect(dsn: str) -> asyncpg.Connection:
    """A single connection with the service's codecs (scripts, migrations, tests)."""
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What a connection going back to the pool needs beyond asyncpg's own clean-up (it
    rolls back an open transaction and drops listeners): nothing. The service leaves no
    session state behind: no SET outside a transaction, no LISTEN, no open cursor, and
    the one session advisory lock (storage/expiry.py) is released by its holder. asyncpg's
    default reset query (advisory unlock all, CLOSE ALL, UNLISTEN *, RESET ALL) costs a
    round trip on every release: half the client CPU of a short query."""


async def create_pool(
    dsn: str, *, min_size: int = 2, max_size: int = 10, command_timeout: float = 5.0
) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=command_timeout,
        init=_init_connection,
        reset=_keep_session,
        server_settings={"application_name": "loyalty", "synchronous_commit": "on"},
    )
    assert pool is not None
    return pool


@contextlib.asynccontextmanager
async def database_errors() -> AsyncIterator[None]:
    """Turn a lost or refused database connection into ``Unavailable`` (503, retry)."""
    try:
        yield
    except CONNECTION_ERRORS as exc:
        raise Unavailable("the database is unavailable; retry shortly", retry_after=1) from exc


async def ping(pool: asyncpg.Pool, timeout_s: float = 1.0) -> bool:
    try:
        async with pool.acquire(timeout=timeout_s) as conn:
            value: Any = await conn.fetchval("SELECT 1", timeout=timeout_s)
            return bool(value == 1)
    except (*CONNECTION_ERRORS, asyncpg.PostgresError):
        return False
