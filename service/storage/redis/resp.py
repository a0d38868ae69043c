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

On a Redis Cluster (``cluster=True``; ``connect.redis_clients`` finds out from the URL of
any node) there is one such connection per master: a command goes to the master of its
key's slot (every key of one card shares its hash tag, so one slot), the slot map comes
from ``CLUSTER SLOTS`` and is read again after a MOVED reply or a lost node (a failover),
an ASK reply is followed once. ``rediss://`` connects over TLS (``ssl_ca_certs``,
``ssl_certfile``, ``ssl_keyfile``, ``ssl_cert_reqs``, ``ssl_check_hostname`` in the
query, as redis-py reads them); a user and password in the URL are sent with AUTH (ACL).

Failures never hang a request: each write has a timeout, and a timeout or a lost
connection fails every command in flight and drops the connection (their replies can
no longer be matched); the next command connects again. The timeout is one timer per
write, not an ``asyncio.timeout`` per command (2.4 against 5.4 µs per awaited
command, uvloop, measured in isolation).
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, cast
from urllib.parse import SplitResult, parse_qs, quote, unquote, urlencode, urlsplit

import hiredis
import redis.asyncio as aioredis
from redis.crc import key_slot


class RespUnavailable(ConnectionError):
    """Redis did not answer (down, unreachable, too slow); the caller falls back."""


class Redirected(RespUnavailable):
    """A cluster node's MOVED or ASK reply: the key's slot is served at ``address``."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        kind, slot, address = reply.split()
        host, _, port = address.rpartition(":")
        self.ask = kind == "ASK"
        self.slot = int(slot)
        self.address = (host, int(port))


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
                text = str(reply)
                redirected = text.startswith(("MOVED ", "ASK "))
                waiter.set_exception(Redirected(text) if redirected else RespUnavailable(text))
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


Address = tuple[str, int]


@dataclass(frozen=True)
class _Dial:
    """How to reach and greet a node: TLS, credentials, database, timeout."""

    timeout_s: float
    ssl: ssl.SSLContext | None
    user: str | None
    password: str | None
    database: int

    async def open(self, host: str, port: int, path: str | None = None) -> _Protocol:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout_s):
                factory = partial(_Protocol, self.timeout_s)
                if path is not None:
                    _, protocol = await loop.create_unix_connection(factory, path)
                else:
                    _, protocol = await loop.create_connection(
                        factory, host, port, ssl=self.ssl,
                        server_hostname=host if self.ssl is not None else None,
                    )  # fmt: skip
                if self.password:
                    await protocol.send(
                        encode_command("AUTH", self.user or "default", self.password)
                    )
                if self.database:
                    await protocol.send(encode_command("SELECT", str(self.database)))
        except (OSError, TimeoutError) as exc:
            raise RespUnavailable(f"cannot connect to Redis: {exc}") from exc
        return protocol


def _dial(url: SplitResult, timeout_s: float) -> _Dial:
    query = {name: values[0] for name, values in parse_qs(url.query).items()}
    if url.scheme == "unix":
        database = int(query.get("db", "0"))
    else:
        path = url.path.strip("/")
        database = int(path) if path else int(query.get("db", "0"))
    return _Dial(
        timeout_s,
        _ssl_context(query) if url.scheme == "rediss" else None,
        unquote(url.username) if url.username else None,
        unquote(url.password) if url.password else None,
        database,
    )


def _ssl_context(query: dict[str, str]) -> ssl.SSLContext:
    """TLS as redis-py's URL options ask for it: verified against ``ssl_ca_certs`` (else
    the system's CAs) unless ``ssl_cert_reqs=none``; a client certificate if given."""
    context = ssl.create_default_context(cafile=query.get("ssl_ca_certs"))
    if "ssl_certfile" in query:
        context.load_cert_chain(query["ssl_certfile"], query.get("ssl_keyfile"))
    requirement = query.get("ssl_cert_reqs", "required").lower()
    check_hostname = query.get("ssl_check_hostname", "true").lower() not in ("false", "0", "no")
    if requirement == "none":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.check_hostname = check_hostname
        if requirement == "optional":
            context.verify_mode = ssl.CERT_OPTIONAL
    return context


class _Link:
    """One pipelined connection to one node, opened on first use and after a failure."""

    def __init__(self, dial: _Dial, host: str, port: int, path: str | None = None) -> None:
        self._dial = dial
        self._where = (host, port, path)
        self.protocol: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None

    async def connection(self) -> _Protocol:
        protocol = self.protocol
        if protocol is not None and not protocol.closed:
            return protocol
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self.protocol is None or self.protocol.closed:
                self.protocol = await self._dial.open(*self._where)
        return self.protocol

    def close(self, reason: str = "client closed") -> None:
        if self.protocol is not None:
            self.protocol.fail_all(reason)


async def _replies(waiters: Sequence[asyncio.Future[Any]]) -> list[Any]:
    """Every reply in order, or the first failure once every reply has come or failed."""
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


class RespClient:
    """One pipelined connection to the Redis of ``url`` (redis://, rediss:// or unix://),
    or with ``cluster=True`` one per master of the Redis Cluster ``url`` is a node of."""

    def __init__(self, url: str, timeout_s: float, *, cluster: bool = False) -> None:
        parts = urlsplit(url)
        dial = _dial(parts, timeout_s)
        if parts.scheme == "unix":
            self._link = _Link(dial, "", 0, parts.path)
        else:
            self._link = _Link(dial, parts.hostname or "127.0.0.1", parts.port or 6379)
        self._cluster = _Cluster(dial, self._link) if cluster else None

    @classmethod
    def like(cls, client: aioredis.Redis | aioredis.RedisCluster,
             default_timeout_s: float = 0.5) -> RespClient:  # fmt: skip
        """A client to the server (or cluster), database, user and TLS of a redis-py
        ``client``."""
        if isinstance(client, aioredis.RedisCluster):
            node = client.get_default_node() or client.get_nodes()[0]
            kwargs = {**node.connection_kwargs, "host": node.host, "port": node.port}
        else:
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
            tls = {
                name: str(kwargs[name]).lower() if isinstance(kwargs[name], bool) else kwargs[name]
                for name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname")
                if kwargs.get(name) is not None
            }
            scheme = "rediss" if "ssl_ca_certs" in tls or kwargs.get("ssl") else "redis"
            query = f"?{urlencode(tls)}" if tls else ""
            url = f"{scheme}://{auth}{host}:{port}/{database}{query}"
        return cls(
            url,
            kwargs.get("socket_timeout") or default_timeout_s,
            cluster=isinstance(client, aioredis.RedisCluster),
        )

    async def command(self, *args: bytes | str) -> Any:
        if self._cluster is not None:
            return await self._cluster.command(args)
        protocol = self._link.protocol
        if protocol is None or protocol.closed:
            protocol = await self._link.connection()
        return await protocol.send(encode_command(*args))

    async def pipeline(self, commands: Sequence[Sequence[bytes | str]]) -> list[Any]:
        """Several commands in one write (per node); their replies in order. Raises the
        first failure, after every reply has arrived or failed."""
        if self._cluster is not None:
            return await self._cluster.pipeline(commands)
        protocol = await self._link.connection()
        return await _replies([protocol.send(encode_command(*command)) for command in commands])

    def close(self) -> None:
        self._link.close()
        if self._cluster is not None:
            self._cluster.close()


_EVALS = frozenset(("EVAL", "EVALSHA", "eval", "evalsha", b"EVAL", b"EVALSHA"))


def command_key(command: Sequence[bytes | str]) -> bytes | str:
    """The key a command's slot is taken from: EVAL's first key, else the first argument."""
    return command[3] if command[0] in _EVALS else command[1]


def slot_of(key: bytes | str) -> int:
    return int(key_slot(key.encode() if isinstance(key, str) else key))


class _Cluster:
    """Slot routing over one ``_Link`` per node; the seed link is the node of the URL."""

    REDIRECTS = 3  # MOVED followed (the map read again) before giving up

    def __init__(self, dial: _Dial, seed: _Link) -> None:
        self._dial = dial
        self._seed = seed
        self._links: dict[Address, _Link] = {}
        self._slots: list[Address] | None = None
        self._refreshing: asyncio.Lock | None = None

    def _link_to(self, address: Address) -> _Link:
        link = self._links.get(address)
        if link is None:
            link = self._links[address] = _Link(self._dial, *address)
        return link

    async def _slot_map(self) -> list[Address]:
        slots = self._slots
        if slots is not None:
            return slots
        if self._refreshing is None:
            self._refreshing = asyncio.Lock()
        async with self._refreshing:
            if self._slots is None:
                self._slots = await self._read_slots()
            return self._slots

    async def _read_slots(self) -> list[Address]:
        """CLUSTER SLOTS from the first node that answers: the known ones, then the seed."""
        failure: Exception = RespUnavailable("no Redis Cluster node known")
        for link in [*self._links.values(), self._seed]:
            try:
                protocol = await link.connection()
                ranges = await protocol.send(encode_command("CLUSTER", "SLOTS"))
            except RespUnavailable as exc:
                failure = exc
                continue
            host_asked = link._where[0]
            slots: list[Address] = [("", 0)] * 16384
            for start, end, master, *_ in ranges:
                host = master[0].decode() if master[0] else host_asked
                slots[start : end + 1] = [(host, int(master[1]))] * (end - start + 1)
            if ("", 0) in slots:
                raise RespUnavailable("the Redis Cluster does not cover every slot")
            return slots
        raise RespUnavailable(f"no Redis Cluster node answers: {failure}")

    def _moved(self) -> None:
        """The map is stale (a MOVED, a lost node): read it again on the next command."""
        self._slots = None

    async def command(self, args: Sequence[bytes | str]) -> Any:
        slot = slot_of(command_key(args))
        for _ in range(self.REDIRECTS):
            slots = self._slots  # awaited only when it must be read again
            address = (slots if slots is not None else await self._slot_map())[slot]
            try:
                link = self._link_to(address)
                protocol = link.protocol
                if protocol is None or protocol.closed:
                    protocol = await link.connection()
                return await protocol.send(encode_command(*args))
            except Redirected as redirect:
                if redirect.ask:
                    return await self._asking(redirect.address, args)
                self._moved()
            except RespUnavailable:
                self._moved()  # the node may be gone for good: a replica takes over
                raise
        raise RespUnavailable(f"slot {slot} moved {self.REDIRECTS} times")

    async def _asking(self, address: Address, args: Sequence[bytes | str]) -> Any:
        protocol = await self._link_to(address).connection()
        asking = protocol.send(encode_command("ASKING"))
        reply = protocol.send(encode_command(*args))
        return (await _replies([asking, reply]))[1]

    async def pipeline(self, commands: Sequence[Sequence[bytes | str]]) -> list[Any]:
        """Commands grouped by the node of their slot, each group in one write; a
        command redirected is sent again alone."""
        slots = await self._slot_map()
        waiters: list[asyncio.Future[Any]] = []
        try:
            for command in commands:
                address = slots[slot_of(command_key(command))]
                protocol = await self._link_to(address).connection()
                waiters.append(protocol.send(encode_command(*command)))
        except RespUnavailable:
            self._moved()
            await asyncio.gather(*waiters, return_exceptions=True)
            raise
        settled = await asyncio.gather(*waiters, return_exceptions=True)
        replies: list[Any] = []
        failure: BaseException | None = None
        for command, reply in zip(commands, settled, strict=True):
            if isinstance(reply, Redirected):
                try:
                    reply = await self.command(command)
                except RespUnavailable as exc:
                    reply = exc
            if isinstance(reply, BaseException):
                self._moved()  # a node lost, say: the next command reads the map again
                failure = failure or reply
            replies.append(reply)
        if failure is not None:
            raise failure
        return replies

    def close(self) -> None:
        for link in self._links.values():
            link.close()
