"""A lean HTTP/1.1 keep-alive connection for the replay's tills: one request at a time,
as a till sends them, the response parsed by httptools (uvicorn's parser, in the lock).

Written here rather than taken from httpx because the replay shares the machine's two
cores with the service it measures: with an httpx client per till the year's replay
took 396 s of CPU of its 597 (session 4), most of a core kept from the service. The
client's CPU per basket (a calculate, a commit, 3% of them a refund), session 12's
alternated ``--limit 20000`` runs: 2.6-2.9 ms with httpx, 0.34-0.37 ms with this.
The per-request work left is a write, the parser's callbacks and a future.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools


class TransportError(Exception):
    """No answer: the connection failed, closed, timed out or sent what is not HTTP."""


@dataclass(frozen=True, slots=True)
class Response:
    status_code: int
    content: bytes
    retry_after: bytes | None  # the Retry-After header, if any

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")


class _ResponseReader(asyncio.Protocol):
    """The connection's protocol: bytes in, one ``Response`` per awaited request."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[Response] | None = None
        self.closed = False
        self._body: list[bytes] = []
        self._retry_after: bytes | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(TransportError(f"not an HTTP response: {exc}"))
            self.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"retry-after":
            self._retry_after = value

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        response = Response(self.parser.get_status_code(), b"".join(self._body), self._retry_after)
        self._body, self._retry_after = [], None
        waiter = self.waiter
        if waiter is None or waiter.done() or not self.parser.should_keep_alive():
            self.close()  # out of step with the requests, or the server's last answer
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(TransportError(f"connection lost: {exc or 'closed by the server'}"))

    def _fail(self, error: TransportError) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Connection:
    """POSTs to one ``http://host:port`` base URL with fixed headers; the connection is
    opened on first use and again after a failure (whose request raised TransportError)."""

    def __init__(self, base_url: str, headers: dict[str, str], timeout_s: float) -> None:
        url = urlsplit(base_url)
        if url.scheme != "http" or url.hostname is None:
            raise ValueError(f"an http://host:port URL, not {base_url!r}")
        self._host, self._port = url.hostname, url.port or 80
        fixed = {"Host": url.netloc, **headers}
        self._head = "".join(f"{k}: {v}\r\n" for k, v in fixed.items()).encode("latin-1")
        self._timeout_s = timeout_s
        self._reader: _ResponseReader | None = None

    async def post(self, path: str, body: bytes) -> Response:
        reader = self._reader
        if reader is None or reader.closed:
            reader = await self._connect()
        assert reader.transport is not None
        reader.waiter = waiter = asyncio.get_running_loop().create_future()
        request = b"POST %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n" % (
            path.encode(), self._head, len(body)
        )  # fmt: skip
        reader.transport.write(request + body)
        try:
            async with asyncio.timeout(self._timeout_s):
                return await waiter
        except TimeoutError as exc:
            raise TransportError(f"no answer in {self._timeout_s} s") from exc
        finally:
            reader.waiter = None
            if waiter.cancelled():  # timed out or cancelled: a late answer is no one's
                reader.close()

    async def _connect(self) -> _ResponseReader:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout_s):
                _, reader = await loop.create_connection(_ResponseReader, self._host, self._port)
        except (OSError, TimeoutError) as exc:
            raise TransportError(f"connect to {self._host}:{self._port}: {exc!r}") from exc
        self._reader = reader
        return reader

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
