"""A minimal pipelined Redis reader for the one hot read: the card state on /v1/calculate.

Why not redis-py here: its asyncio client spends ~200 µs of CPU per command inside a
loaded worker (pool checkout, retry and timeout wrappers, observability hooks), which
was a fifth of the cost of a whole calculation (measured in-process under 8 concurrent
requests, benchmarks in docs/performance.md). This client keeps one connection per
worker, writes each command at once, and matches replies in order (Redis answers in
order on a connection), parsing with hiredis, which redis-py itself uses. It costs
~30 µs per command. Everything else, writes and scripts included, stays on redis-py.

Failures never hang a request: each command has a timeout, and a timeout or a lost
connection fails every command in flight and drops the connection (their replies can
no longer be matched); the next command connects again.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis


class RespUnavailable(ConnectionError):
    """Redis did not answer (down, unreachable, too slow); the caller falls back."""


def encode_command(*args: bytes | str) -> bytes:
    """A command in RESP: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self._reader = hiredis.Reader()
        self._waiters: collections.deque[asyncio.Future[Any]] = collections.deque()
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
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(RespUnavailable(reason))
        if self.transport is not None:
            self.transport.close()

    def send(self, payload: bytes) -> asyncio.Future[Any]:
        assert self.transport is not None
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self.transport.write(payload)
        return waiter


class RespClient:
    """One pipelined connection to the Redis of ``url`` (redis://, rediss:// not
    supported, or unix://), connected on first use and again after a failure."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self._url = urlsplit(url)
        self._timeout_s = timeout_s
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None

    async def command(self, *args: bytes | str) -> Any:
        protocol = await self._connection()
        try:
            async with asyncio.timeout(self._timeout_s):
                return await protocol.send(encode_command(*args))
        except TimeoutError as exc:
            protocol.fail_all("Redis did not answer in time")
            raise RespUnavailable("Redis did not answer in time") from exc

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
                    _, protocol = await loop.create_unix_connection(_Protocol, self._url.path)
                else:
                    host, port = self._url.hostname or "127.0.0.1", self._url.port or 6379
                    _, protocol = await loop.create_connection(_Protocol, host, port)
                await self._handshake(protocol)
        except (OSError, TimeoutError) as exc:
            raise RespUnavailable(f"cannot connect to Redis: {exc}") from exc
        return protocol

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
