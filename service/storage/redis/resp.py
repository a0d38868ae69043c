"""A minimal pipelined Redis client for the hot path: the card state on /v1/calculate.

Why not redis-py here: its asyncio client spends ~200 µs of CPU per command inside a
loaded worker (pool checkout, retry and timeout wrappers, observability hooks), which
was a fifth of the cost of a whole calculation (measured in-process under 8 concurrent
requests, benchmarks in docs/performance.md). This client keeps one connection per
worker and matches replies in order (Redis answers in order on a connection), parsing
with hiredis, which redis-py itself uses. Writes behind the response (calculation
records, card states after a commit) go through it too, with ``pipeline``; everything
else stays on redis-py.

Commands issued in one turn of the event loop leave in one write: under load the
requests of a turn share a send() (on loopback TCP the kernel's side of a send was
most of the client's cost: ``_Protocol.send`` was 8% of a loaded worker's samples,
py-spy, when each command was written at once). With the records written here
instead of through redis-py, profile_calculate's whole /v1/calculate went from
476-485 to 365-374 CPU µs per request.

Failures never hang a request: each write has a timeout, and a timeout or a lost
connection fails every command in flight and drops the connection (their replies can
no longer be matched); the next command connects again. The timeout is one timer per
write, not an ``asyncio.timeout`` per command (2.4 against 5.4 µs per awaited
command, uvloop, measured in isolation).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Sequence
from typing import Any, cast
from urllib.parse import parse_qs, quote, unquote, urlsplit

import hiredis
import redis.asyncio as aioredis


class RespUnavailable(ConnectionError):
    """Redis did not answer (down, unreachable, too slow); the caller falls back."""


# Told of each Redis failure whose work went to Postgres instead: ("read" or "write", how
# many); the app wires its metrics in (service.api.state).
FallbackCounter = Callable[[str, int], None]


def uncounted(op: str, count: int) -> None:
    """The fallback counter of an adapter nobody watches (scripts, tests)."""


def encode_command(*args: bytes | str) -> bytes:
    """A command in RESP: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class _Protocol(asyncio.Protocol):
    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._reader = hiredis.Reader()
        self._waiters: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._outgoing: list[bytes] = []
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.WriteTransport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; they do write.
        self.transport = cast(asyncio.WriteTransport, transport)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while (reply := self._reader.gets()) is not False:
            waiter = self._waiters.popleft()
            if waiter.done():
                continue
            if isinstance(reply, hiredis.ReplyError):
                waiter.set_exception(RespUnavailable(str(reply)))
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail_all("connection to Redis lost")

    def fail_all(self, reason: str) -> None:
        self.closed = True
        self._outgoing.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(RespUnavailable(reason))
        if self.transport is not None:
            self.transport.close()

    def send(self, payload: bytes) -> asyncio.Future[Any]:
        """Queue one encoded command; its reply arrives on the returned future."""
        if self.closed:
            raise RespUnavailable("connection to Redis lost")
        waiter: asyncio.Future[Any] = self._loop.create_future()
        self._waiters.append(waiter)
        if not self._outgoing:
            self._loop.call_soon(self._flush)
        self._outgoing.append(payload)
        return waiter

    def _flush(self) -> None:
        """Write what this turn of the loop queued; it times out as one."""
        if self.closed or not self._outgoing:
            return
        assert self.transport is not None
        try:
            self.transport.write(b"".join(self._outgoing))
        except (RuntimeError, OSError) as exc:  # closed under us, connection_lost not yet run
            self.fail_all(f"cannot write to Redis: {exc}")
            return
        self._outgoing.clear()
        self._loop.call_later(self._timeout_s, self._expire, self._waiters[-1])

    def _expire(self, last: asyncio.Future[Any]) -> None:
        # Replies come in order: the last command of a write answered means all did.
        if not last.done() and not self.closed:
            self.fail_all("Redis did not answer in time")


class RespClient:
    """One pipelined connection to the Redis of ``url`` (redis://, rediss:// not
    supported, or unix://), connected on first use and again after a failure."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self._url = urlsplit(url)
        self._timeout_s = timeout_s
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None

    @classmethod
    def like(cls, client: aioredis.Redis, default_timeout_s: float = 0.5) -> RespClient:
        """A client to the server, database and user of a redis-py ``client``."""
        kwargs = client.connection_pool.connection_kwargs
        user, password = kwargs.get("username"), kwargs.get("password")
        auth = (
            ""
            if not password
            else f"{quote(user or 'default', safe='')}:{quote(password, safe='')}@"
        )
        database = kwargs.get("db") or 0
        if "path" in kwargs:
            url = f"unix://{auth}{kwargs['path']}?db={database}"
        else:
            host, port = str(kwargs.get("host", "127.0.0.1")), kwargs.get("port", 6379)
            host = f"[{host}]" if ":" in host else host  # IPv6
            url = f"redis://{auth}{host}:{port}/{database}"
        return cls(url, kwargs.get("socket_timeout") or default_timeout_s)

    async def command(self, *args: bytes | str) -> Any:
        protocol = self._protocol
        if protocol is None or protocol.closed:
            protocol = await self._connection()
        return await protocol.send(encode_command(*args))

    async def pipeline(self, commands: Sequence[Sequence[bytes | str]]) -> list[Any]:
        """Several commands in one write; their replies in order. Raises the first
        failure, after every reply has arrived or failed."""
        protocol = self._protocol
        if protocol is None or protocol.closed:
            protocol = await self._connection()
        waiters = [protocol.send(encode_command(*command)) for command in commands]
        replies: list[Any] = []
        failure: RespUnavailable | None = None
        for waiter in waiters:
            try:
                replies.append(await waiter)
            except RespUnavailable as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
        return replies

    async def _connection(self) -> _Protocol:
        if self._protocol is not None and not self._protocol.closed:
            return self._protocol
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._protocol is None or self._protocol.closed:
                self._protocol = await self._connect()
        return self._protocol

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout_s):
                if self._url.scheme == "unix":
                    _, protocol = await loop.create_unix_connection(
                        self._new_protocol, self._url.path
                    )
                else:
                    host, port = self._url.hostname or "127.0.0.1", self._url.port or 6379
                    _, protocol = await loop.create_connection(self._new_protocol, host, port)
                await self._handshake(protocol)
        except (OSError, TimeoutError) as exc:
            raise RespUnavailable(f"cannot connect to Redis: {exc}") from exc
        return protocol

    def _new_protocol(self) -> _Protocol:
        return _Protocol(self._timeout_s)

    async def _handshake(self, protocol: _Protocol) -> None:
        if self._url.password:
            user = unquote(self._url.username or "default")
            await protocol.send(encode_command("AUTH", user, unquote(self._url.password)))
        database = self._database()
        if database:
            await protocol.send(encode_command("SELECT", str(database)))

    def _database(self) -> int:
        if self._url.scheme == "unix":
            return int(parse_qs(self._url.query).get("db", ["0"])[0])
        path = self._url.path.strip("/")
        return int(path) if path else 0

    def close(self) -> None:
        if self._protocol is not None:
            self._protocol.fail_all("client closed")
