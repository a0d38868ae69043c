"""The asyncpg pool and the mapping of Postgres failures to domain errors."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Any, TypeAlias
from urllib.parse import parse_qs, urlsplit

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
    asyncpg.exceptions.InternalClientError,  # and TargetServerAttributeNotMatched: no primary
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # 25006: a standby, or a fenced primary
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


def _read_only(conn: asyncpg.Connection) -> bool:
    """The server this connection reached takes no writes: a hot standby, or a server set
    ``default_transaction_read_only`` (as a failover fences an old primary). Both are
    reported by the server (ParameterStatus, Postgres 14 and later): no round trip."""
    settings = conn.get_settings()
    return (
        getattr(settings, "in_hot_standby", "off") == "on"
        or getattr(settings, "default_transaction_read_only", "off") == "on"
    )


def _refuse_read_only(conn: asyncpg.Connection) -> None:
    if _read_only(conn):
        raise asyncpg.exceptions.TargetServerAttributeNotMatched(
            "the server is read-only (a standby, or fenced): no primary reached"
        )


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


async def _init_pooled(conn: asyncpg.Connection) -> None:
    """A new pool connection: one that reached a read-only server is closed (asyncpg
    closes a connection whose ``init`` raises) and its acquire answered as the database
    unavailable. With ``target_session_attrs=read-write`` (the pool's default, below)
    asyncpg has already passed over such hosts; this holds for a DSN that names ``any``."""
    _refuse_read_only(conn)
    await _init_connection(conn)


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
    round trip on every release: half the client CPU of a short query.

    One check, no round trip (about a microsecond): a connection whose server has turned
    read-only (a primary fenced with ``default_transaction_read_only`` and a reload; its
    writes failed with 25006, answered 503) is not kept. It is terminated here, which
    hands its holder back to the pool empty (as a connection lost while idle does), and
    the next acquire connects anew, to whichever host is the primary then; the caller,
    whose request may have succeeded before the fence, is not failed for it."""
    if _read_only(conn):
        _log.warning("a pooled connection's server turned read-only; dropping it")
        conn.terminate()


def target_session_attrs(dsn: str) -> str | None:
    """``read-write`` unless the DSN (or ``PGTARGETSESSIONATTRS``) names its own: of a
    multi-host DSN (``postgresql://u@h1:5432,h2:5432/db``, or libpq's
    ``?host=h1,h2&port=5432,5432``) the pool wants the primary, wherever it is now, and
    asyncpg's default, ``any``, would settle for the first host that answers."""
    named = "target_session_attrs" in parse_qs(urlsplit(dsn).query)
    return None if named or os.environ.get("PGTARGETSESSIONATTRS") else "read-write"


async def create_pool(
    dsn: str, *, min_size: int = 2, max_size: int = 10, command_timeout: float = 5.0
) -> asyncpg.Pool:
    """The service's pool. After a failover it follows the new primary by itself: a
    connection the old primary's end broke is closed on its release (its request answered
    503), and each new one tries the DSN's hosts in order for a read-write server; until
    one is promoted, acquiring answers 503 as well."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=command_timeout,
        init=_init_pooled,
        reset=_keep_session,
        server_settings={"application_name": "loyalty", "synchronous_commit": "on"},
        target_session_attrs=target_session_attrs(dsn),
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
