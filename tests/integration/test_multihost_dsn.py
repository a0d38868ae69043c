"""A multi-host DSN and a failover, at the pool, against the real Postgres.

Each "host" here is a TCP forwarder on 127.0.0.1 in front of the test server: a plain
one stands for a primary; one that adds ``default_transaction_read_only=on`` to the
startup packet stands for a server that takes no writes (Postgres itself then reports
the session read-only, as a standby's sessions are); closing a forwarder cuts its
connections, as a primary's death does. The server, its answers and its errors are
real: nothing of Postgres is mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, urlsplit

import asyncpg
import pytest

from service.domain.errors import Unavailable
from service.storage.postgres.pool import create_pool, database_errors, domain_error
from tests.conftest import _admin_execute, _with_database

_SSL_REQUEST, _GSS_REQUEST = 80877103, 80877104


@dataclass
class Forwarder:
    """A host of a multi-host DSN: 127.0.0.1:port, forwarding to the test server."""

    upstream: tuple[str, int] | str  # (host, port), or a Unix socket's path
    read_only: bool = False  # add default_transaction_read_only=on to each startup
    server: asyncio.Server | None = None
    writers: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> Forwarder:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def _startup(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
        """The client's startup packet (an SSL or GSS request before it is declined)."""
        while True:
            (length,) = struct.unpack("!I", await reader.readexactly(4))
            body = await reader.readexactly(length - 4)
            if struct.unpack("!I", body[:4])[0] not in (_SSL_REQUEST, _GSS_REQUEST):
                break
            writer.write(b"N")
        if self.read_only:  # parameters end with an empty name: insert before it
            body = body[:-1] + b"default_transaction_read_only\0on\0\0"
        return struct.pack("!I", len(body) + 4) + body

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            startup = await self._startup(reader, writer)
            if isinstance(self.upstream, str):
                up_reader, up_writer = await asyncio.open_unix_connection(self.upstream)
            else:
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            self.writers.add(up_writer)
            up_writer.write(startup)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for end in list(self.writers):
                if end is writer or end.transport.get_extra_info("peername") is None:
                    self.writers.discard(end)
            writer.close()

    def cut(self) -> None:
        """Stop listening and drop every connection at once: the host died."""
        assert self.server is not None
        self.server.close()
        for end in self.writers:
            end.transport.abort()
        self.writers.clear()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


def _upstream(url: str) -> tuple[str, int] | str:
    parts = urlsplit(url)
    if parts.hostname:
        return parts.hostname, parts.port or 5432
    socket_dir = parse_qs(parts.query)["host"][0]  # the embedded server: a Unix socket
    return f"{socket_dir}/.s.PGSQL.{parts.port or 5432}"


def _multi_host(url: str, ports: list[int], query: str = "") -> str:
    """``url``'s user and database on 127.0.0.1 at each of ``ports``, in order."""
    parts = urlsplit(url)
    user = quote(parts.username or "postgres")
    if parts.password:
        user += ":" + quote(parts.password)
    hosts = ",".join(f"127.0.0.1:{port}" for port in ports)
    return f"postgresql://{user}@{hosts}{parts.path}" + (f"?{query}" if query else "")


def _refused_port() -> int:
    """A port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def scratch_url(server_url: str) -> AsyncIterator[str]:
    """An empty database of this test's own, with a table to write to."""
    name = f"loyalty_dsn_{uuid.uuid4().hex[:10]}"
    await _admin_execute(server_url, f'CREATE DATABASE "{name}"')
    url = _with_database(server_url, name)
    try:
        await _admin_execute(url, "CREATE TABLE probe (n int)")
        yield url
    finally:
        await _admin_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def forwarders(scratch_url: str) -> AsyncIterator[list[Forwarder]]:
    """A primary-like and a standby-like host in front of the test server."""
    started = [
        await Forwarder(_upstream(scratch_url)).start(),
        await Forwarder(_upstream(scratch_url), read_only=True).start(),
    ]
    yield started
    for forwarder in started:
        with contextlib.suppress(Exception):
            forwarder.cut()


async def _write(pool: asyncpg.Pool) -> None:
    async with database_errors():
        await pool.execute("INSERT INTO probe VALUES (1)")


@pytest.mark.parametrize("style", ["netloc", "libpq"])
async def test_the_first_host_refusing_the_pool_connects_to_the_second(
    scratch_url: str, forwarders: list[Forwarder], style: str
) -> None:
    down, up = _refused_port(), forwarders[0].port
    if style == "netloc":  # postgresql://u@h1:p1,h2:p2/db
        dsn = _multi_host(scratch_url, [down, up])
    else:  # postgresql://u@/db?host=h1,h2&port=p1,p2 (what SQLAlchemy's URL also reads)
        parts = urlsplit(_multi_host(scratch_url, [up]))
        user = parts.netloc.rsplit("@", 1)[0]
        dsn = f"postgresql://{user}@{parts.path}?host=127.0.0.1,127.0.0.1&port={down},{up}"
    pool = await create_pool(dsn, min_size=2, max_size=2)
    try:
        await _write(pool)
        assert await pool.fetchval("SELECT count(*) FROM probe") == 1
    finally:
        await pool.close()


async def test_a_read_only_first_host_is_passed_over_for_the_primary(
    scratch_url: str, forwarders: list[Forwarder]
) -> None:
    primary, standby = forwarders
    dsn = _multi_host(scratch_url, [standby.port, primary.port])
    pool = await create_pool(dsn, min_size=2, max_size=2)  # no target_session_attrs named
    try:
        assert await pool.fetchval("SHOW default_transaction_read_only") == "off"
        await _write(pool)
    finally:
        await pool.close()


@pytest.mark.parametrize("attrs", ["", "target_session_attrs=any"])
async def test_a_read_only_server_alone_is_refused_as_unavailable(
    scratch_url: str, forwarders: list[Forwarder], attrs: str
) -> None:
    """Whether asyncpg passes it over (read-write, the pool's default) or lets it through
    (``any``: the pool's init refuses it), no pool is built on a server that takes no
    writes, and the error is the database unavailable (503, retry)."""
    dsn = _multi_host(scratch_url, [forwarders[1].port], attrs)
    with pytest.raises(asyncpg.exceptions.TargetServerAttributeNotMatched) as raised:
        await create_pool(dsn, min_size=1, max_size=1)
    assert isinstance(domain_error(raised.value), Unavailable)


async def test_a_connection_turned_read_only_answers_unavailable_and_is_not_kept(
    scratch_url: str, forwarders: list[Forwarder]
) -> None:
    """A primary fenced under a live connection (here the session's own SET; a reload of
    ``default_transaction_read_only`` reaches every session the same way): its writes fail
    with 25006, answered as unavailable, and the pool closes it on release."""
    pool = await create_pool(_multi_host(scratch_url, [forwarders[0].port]), min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            fenced = conn.get_server_pid()
            await conn.execute("SET default_transaction_read_only = on")
            with pytest.raises(Unavailable) as raised:
                async with database_errors():
                    await conn.execute("INSERT INTO probe VALUES (1)")
            assert isinstance(raised.value.__cause__, asyncpg.ReadOnlySQLTransactionError)
        # the release (no error to the caller) ran the pool's reset, which dropped it
        async with pool.acquire() as conn:
            assert conn.get_server_pid() != fenced
            await conn.execute("INSERT INTO probe VALUES (1)")
    finally:
        await pool.close()


async def test_the_pool_follows_a_failover_without_a_restart(
    scratch_url: str, forwarders: list[Forwarder]
) -> None:
    """Primary first, standby second in the DSN; the primary dies (its connections cut,
    its port refusing): writes answer unavailable, never anything else, until the standby
    is promoted; then the same pool writes to it."""
    primary, standby = forwarders
    pool = await create_pool(_multi_host(scratch_url, [primary.port, standby.port]), max_size=4)
    try:
        await _write(pool)
        primary.cut()
        for _ in range(6):  # broken connections, then no read-write host: 503 each time
            with pytest.raises(Unavailable):
                await _write(pool)
        standby.read_only = False  # promoted: new sessions are read-write
        await _write(pool)
        assert await pool.fetchval("SELECT count(*) FROM probe") == 2
    finally:
        await pool.close()


async def test_migrations_run_through_a_multi_host_dsn(
    scratch_url: str, forwarders: list[Forwarder]
) -> None:
    """``loyalty serve`` migrates first: SQLAlchemy reads the hosts of the netloc form once
    they are moved to libpq's query (service.storage.postgres.migrate.sqlalchemy_url)."""
    from service.storage.postgres.migrate import sqlalchemy_url, upgrade_async

    dsn = _multi_host(scratch_url, [_refused_port(), forwarders[0].port])
    assert "host=127.0.0.1,127.0.0.1&port=" in sqlalchemy_url(dsn)
    await upgrade_async(dsn)
    conn = await asyncpg.connect(scratch_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM alembic_version") == 1
    finally:
        await conn.close()
