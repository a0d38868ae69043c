"""Latency at a fixed request rate (open loop), corrected for coordinated omission.

Request k is due at ``start + k / rate`` whatever happened before; its latency runs
from that due time to the end of its response, so a stalled server shows up as the
queue of late requests behind the stall (as wrk2 measures; wrk alone cannot pace).
Requests go over a pool of keep-alive HTTP/1.1 connections; a request waits for a
free connection when all are busy, and that wait counts too.

    python -m benchmarks.pace --url http://127.0.0.1:8000/healthz --rate 1000 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import uvloop

Request = Callable[[int], bytes]


@dataclass(frozen=True)
class PacedResult:
    rate: float
    sent: int
    errors: int
    latencies: list[float]  # seconds, sorted

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        index = min(len(self.latencies) - 1, int(q / 100 * len(self.latencies)))
        return self.latencies[index]

    def summary(self) -> dict[str, float]:
        return {
            "rate": self.rate,
            "sent": self.sent,
            "errors": self.errors,
            "p50_ms": self.percentile(50) * 1000,
            "p99_ms": self.percentile(99) * 1000,
            "p999_ms": self.percentile(99.9) * 1000,
        }


def http_request(
    method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    parts = urlsplit(url)
    lines = [f"{method} {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1",
             f"Host: {parts.netloc}", f"Content-Length: {len(body)}"]  # fmt: skip
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its response read by callbacks
    (no task, no stream per request: the generator shares the cores with the service,
    and its own delays would count as the service's latency)."""

    def __init__(self, done: Callable[[_Connection, int | None], None]) -> None:
        self._done = done
        self._buffer = bytearray()
        self._busy = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self._busy = True
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0 or not self._busy:
            return
        head = bytes(self._buffer[:end])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if len(self._buffer) < end + 4 + length:
            return
        del self._buffer[: end + 4 + length]
        self._busy = False
        self._done(self, int(head[9:12]))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._busy:
            self._busy = False
            self._done(self, None)


async def run_paced(
    url: str, request: Request, rate: float, seconds: float, connections: int = 32
) -> PacedResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    loop = asyncio.get_running_loop()
    total = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    idle: list[_Connection] = []
    due_waiting: collections.deque[tuple[int, float]] = collections.deque()
    in_flight: dict[_Connection, float] = {}
    finished = loop.create_future()

    replacing: set[asyncio.Task[None]] = set()

    def start(conn: _Connection, k: int, due: float) -> None:
        assert conn.transport is not None
        if conn.transport.is_closing():  # closed by the server while idle
            due_waiting.appendleft((k, due))
            replace_later()
            return
        in_flight[conn] = due
        conn.send(request(k))

    def replace_later() -> None:
        task = loop.create_task(replace())
        replacing.add(task)
        task.add_done_callback(replacing.discard)

    def done(conn: _Connection, status: int | None) -> None:
        nonlocal errors
        due = in_flight.pop(conn)
        if status is None or status >= 400:
            errors += 1
        else:
            latencies.append(time.perf_counter() - due)
        if status is None:  # the connection is gone: another takes its place
            replace_later()
        elif due_waiting:
            start(conn, *due_waiting.popleft())
        else:
            idle.append(conn)
        if len(latencies) + errors == total and not finished.done():
            finished.set_result(None)

    async def connect() -> _Connection:
        _, conn = await loop.create_connection(lambda: _Connection(done), host, port)
        return conn

    async def replace() -> None:
        conn = await connect()
        if due_waiting:
            start(conn, *due_waiting.popleft())
        else:
            idle.append(conn)

    for _ in range(connections):
        idle.append(await connect())
    begin = time.perf_counter() + 0.05
    for k in range(total):
        due = begin + k / rate
        delay = due - time.perf_counter()
        if delay > 0.0005:  # requests due within half a millisecond leave together
            await asyncio.sleep(delay)
        if idle:
            start(idle.pop(), k, due)
        else:
            due_waiting.append((k, due))
    if total:
        await finished
    for conn in idle:
        assert conn.transport is not None
        conn.transport.close()
    return PacedResult(rate, total, errors, sorted(latencies))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    data = http_request("GET", args.url)
    result = uvloop.run(
        run_paced(args.url, lambda _: data, args.rate, args.seconds, args.connections)
    )
    print(result.summary())


if __name__ == "__main__":
    main()
