"""The asyncpg pool and the mapping of Postgres failures to domain errors."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import asyncpg
import orjson

from service.domain.errors import InvalidInput, Unavailable

_log = logging.getLogger(__name__)

# The database is down, restarting, unreachable or out of room: whatever the driver
# raises on the way down (``InternalClientError: cannot switch to state 12`` was seen
# while Postgres shut down), the caller is told to retry.
CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # 57: shutdown, crash, query cancelled
    asyncpg.exceptions.InsufficientResourcesError,  # 53: too many connections, disk full
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    TimeoutError,
)
# Two transactions that met: nothing was written, the same request may simply be sent again.
RETRY_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.exceptions.SerializationError,  # 40001
    asyncpg.exceptions.DeadlockDetectedError,  # 40P01
)
# Input the schemas let through but the ledger cannot hold (22: a value out of range, a
# character Postgres refuses; 23514: a check constraint).
INPUT_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.exceptions.DataError,
    asyncpg.exceptions.CheckViolationError,
)

Executor: TypeAlias = asyncpg.Connection | asyncpg.Pool
"""What a query runs on: a connection (inside a transaction, say) or the pool."""


def domain_error(exc: BaseException) -> Unavailable | InvalidInput | None:
    """The domain error a driver exception stands for, by its SQLSTATE class; None if it
    is none of these (a bug, to be seen as such)."""
    if isinstance(exc, CONNECTION_ERRORS):
        return Unavailable("the database is unavailable; retry shortly", retry_after=1)
    if isinstance(exc, RETRY_ERRORS):
        return Unavailable("the ledger was busy with the same data; retry", code="retry")
    if isinstance(exc, INPUT_ERRORS):
        _log.warning("input refused by the database: %s", exc)
        return InvalidInput("a value is outside what the ledger can store", code="unstorable")
    return None


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=lambda v: orjson.dumps(v).decode(),
        decoder=orjson.loads,
        format="text",
    )
    await conn.set_type_codec(
        "json",
        schema="pg_catalog",
        encoder=lambda v: orjson.dumps(v).decode(),
        decoder=orjson.loads,
        format="text",
    )


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
    """Turn a lost or refused connection into ``Unavailable`` (503, retry) and input the
    ledger cannot hold into ``InvalidInput``. A conflict between transactions is left to
    its caller, who may retry it (the ledger's batches do); unhandled, the API answers it
    as a retry."""
    try:
        yield
    except (*CONNECTION_ERRORS, *INPUT_ERRORS) as exc:
        error = domain_error(exc)
        assert error is not None
        raise error from exc


async def ping(pool: asyncpg.Pool, timeout_s: float = 1.0) -> bool:
    try:
        async with pool.acquire(timeout=timeout_s) as conn:
            value: Any = await conn.fetchval("SELECT 1", timeout=timeout_s)
            return bool(value == 1)
    except (*CONNECTION_ERRORS, asyncpg.PostgresError):
        return False
