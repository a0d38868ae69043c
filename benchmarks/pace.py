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


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> int:
    """Send one request; read its whole response; return the status code."""
    writer.write(data)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def run_paced(
    url: str, request: Request, rate: float, seconds: float, connections: int = 32
) -> PacedResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await asyncio.open_connection(host, port))
    latencies: list[float] = []
    errors = 0

    async def one(k: int, due: float) -> None:
        nonlocal errors
        reader, writer = await idle.get()
        try:
            status = await _exchange(reader, writer, request(k))
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
            reader, writer = await asyncio.open_connection(host, port)
        else:
            if status >= 400:
                errors += 1
            latencies.append(time.perf_counter() - due)
        idle.put_nowait((reader, writer))

    total = int(rate * seconds)
    start = time.perf_counter() + 0.05
    tasks = []
    for k in range(total):
        due = start + k / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(k, due)))
    await asyncio.gather(*tasks)
    while not idle.empty():
        _, writer = idle.get_nowait()
        writer.close()
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
