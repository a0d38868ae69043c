"""The replay's lean HTTP/1.1 connection (loadtests/http1.py) against a loopback server that
answers with canned bytes: keep-alive, a chunked body, Retry-After, a server that closes
the connection, one that never answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import uvloop

from loadtests import http1

Answer = Callable[[bytes], bytes | None]  # request -> response (None: silence, b"": close)


def _ok(body: bytes, *headers: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n%s" % (head.encode(), len(body), body)


class _Server:
    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                response = self.answer(request)
                if response is None:
                    await asyncio.sleep(10)
                if not response:  # silence, or b"": the connection closed without an answer
                    return
                writer.write(response)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


Serve = Callable[[Answer], Awaitable[tuple[str, _Server]]]  # its URL, what it was sent


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[asyncio.Server] = []

    async def start(answer: Answer) -> tuple[str, _Server]:
        fake = _Server(answer)
        server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}", fake

    yield start
    for server in servers:
        server.close()


async def test_keep_alive_requests_carry_the_headers_and_body(serve: Serve) -> None:
    url, fake = await serve(lambda request: _ok(b'{"n": %d}' % len(request)))
    connection = http1.Connection(url, {"Authorization": "Bearer k"}, timeout_s=5)
    first = await connection.post("/v1/calculate", b'{"a":1}')
    second = await connection.post("/v1/commit", b"{}")
    connection.close()
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.content.startswith(b'{"n": ')
    assert fake.connections == 1
    assert fake.requests[0].startswith(b"POST /v1/calculate HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b'\r\nAuthorization: Bearer k\r\nContent-Length: 7\r\n\r\n{"a":1}' in fake.requests[0]
    assert fake.requests[1].startswith(b"POST /v1/commit HTTP/1.1\r\n")


async def test_a_chunked_body_and_retry_after(serve: Serve) -> None:
    chunked = (
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n3\r\nbus\r\n1\r\ny\r\n0\r\n\r\n"
    )
    url, _ = await serve(lambda request: chunked)
    connection = http1.Connection(url, {}, timeout_s=5)
    response = await connection.post("/v1/commit", b"{}")
    connection.close()
    assert (response.status_code, response.content, response.retry_after) == (503, b"busy", b"2")
    assert response.text == "busy"


async def test_a_closed_connection_fails_its_request_and_the_next_one_reconnects(
    serve: Serve,
) -> None:
    answers = iter([_ok(b"1", "Connection: close"), _ok(b"2"), b"", _ok(b"4")])
    url, fake = await serve(lambda request: next(answers))
    connection = http1.Connection(url, {}, timeout_s=5)
    assert (await connection.post("/", b"")).content == b"1"  # the server's last answer
    assert (await connection.post("/", b"")).content == b"2"  # on a fresh connection
    with pytest.raises(http1.TransportError, match="connection lost"):
        await connection.post("/", b"")  # closed without an answer
    assert (await connection.post("/", b"")).content == b"4"
    assert fake.connections == 3
    connection.close()


async def test_no_answer_is_a_transport_error_and_the_connection_is_dropped(serve: Serve) -> None:
    replies = iter([None, _ok(b"late")])
    url, fake = await serve(lambda request: next(replies))
    connection = http1.Connection(url, {}, timeout_s=0.2)
    with pytest.raises(http1.TransportError, match="no answer"):
        await connection.post("/", b"")
    assert (await connection.post("/", b"")).content == b"late"
    assert fake.connections == 2
    connection.close()


async def test_nothing_listening_is_a_transport_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    connection = http1.Connection(f"http://127.0.0.1:{port}", {}, timeout_s=5)
    with pytest.raises(http1.TransportError, match="connect to"):
        await connection.post("/", b"")


def test_on_uvloop_as_the_replay_runs_it() -> None:
    async def exchange() -> bytes:
        server = await asyncio.start_server(
            _Server(lambda request: _ok(b"uv")).handle, "127.0.0.1", 0
        )
        port = server.sockets[0].getsockname()[1]
        connection = http1.Connection(f"http://127.0.0.1:{port}", {}, timeout_s=5)
        try:
            return (await connection.post("/", b"")).content
        finally:
            connection.close()
            server.close()

    assert uvloop.run(exchange()) == b"uv"
