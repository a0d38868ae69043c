"""Where a /v1/calculate request spends its CPU, by taking the parts away one at a time.

    LOYALTY_DATABASE_URL=... LOYALTY_REDIS_URL=... .venv/bin/python -m benchmarks.profile_calculate

Runs the real app in-process (lifespan on, against the given Postgres and Redis, on a
database prepared by benchmarks/fixtures.py or `loyalty serve`), drives it with 8
concurrent ASGI requests, and reports CPU microseconds per request: the whole request,
then with the calculation record not kept, the card state not read from Redis, the
evaluation not run, the answer not built. Each difference is what that part costs.
The bare stack (benchmarks/bare_app.py) is measured the same way for reference: its echo
by FastAPI's standard body handling and its lean echo by calculate's own path (PosRoute).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import uvloop
from fastapi import FastAPI

from benchmarks.bare_app import create_bare_app
from benchmarks.fixtures import POS_KEY, calculate_body
from service import kernels
from service.api.app import create_app
from service.settings import Settings
from service.usecases import calculate as calculate_module

CONCURRENCY = 8


async def asgi_post(app: FastAPI, path: str, body: bytes) -> int:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
        "headers": [(b"host", b"bench"), (b"content-type", b"application/json"),
                    (b"authorization", f"Bearer {POS_KEY}".encode()),
                    (b"content-length", str(len(body)).encode())],
    }  # fmt: skip
    delivered = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            await asyncio.Event().wait()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def cpu_per_request(call: Callable[[], Awaitable[int]], requests: int = 1_600) -> float:
    """Best of three rounds of CPU µs per request, ``CONCURRENCY`` requests in flight."""

    async def worker(count: int) -> None:
        for _ in range(count):
            assert await call() == 200

    await asyncio.gather(*(worker(20) for _ in range(CONCURRENCY)))
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        await asyncio.gather(*(worker(requests // CONCURRENCY) for _ in range(CONCURRENCY)))
        best = min(best, (time.process_time() - started) / requests * 1e6)
    return best


def _memoised(function: Callable[..., Any]) -> Callable[..., Any]:
    kept: dict[str, Any] = {}

    def once(*args: Any) -> Any:
        if "value" not in kept:
            kept["value"] = function(*args)
        return kept["value"]

    return once


async def measure() -> list[tuple[str, float]]:
    body = calculate_body()
    rows = []
    bare = create_bare_app()
    rows.append(
        ("bare stack (echo)", await cpu_per_request(lambda: asgi_post(bare, "/v1/echo", body)))
    )
    rows.append(
        (
            "bare stack (lean echo)",
            await cpu_per_request(lambda: asgi_post(bare, "/v1/echo-lean", body)),
        )
    )
    app = create_app(Settings())
    async with app.router.lifespan_context(app):
        services = app.state.services

        async def request() -> int:
            return await asgi_post(app, "/v1/calculate", body)

        rows.append(("whole /v1/calculate", await cpu_per_request(request)))

        async def keep_nothing(calculation_id: str, record: dict[str, Any]) -> None:
            return None

        services.calculations.save = keep_nothing
        rows.append(("- calculation record", await cpu_per_request(request)))
        card = await services.cards.get(
            "2000000000022", datetime.now(UTC), services.programs.current
        )

        async def cached(*args: Any) -> Any:
            return card

        services.cards.get = cached
        rows.append(("- card state read", await cpu_per_request(request)))
        kernels.evaluate = _memoised(kernels.evaluate)  # type: ignore[assignment]
        rows.append(("- evaluation", await cpu_per_request(request)))
        calculate_module.Calculation.view = _memoised(calculate_module.Calculation.view)  # type: ignore[method-assign]
        rows.append(("- building the answer", await cpu_per_request(request)))
    return rows


def main() -> None:
    argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()
    rows = uvloop.run(measure())
    for (label, value), previous in zip(rows, [None, *rows], strict=False):
        step = (
            ""
            if previous is None or label.startswith(("whole", "bare"))
            else f"  (part: {previous[1] - value:.0f})"
        )
        print(f"{label:28s} {value:7.0f} µs CPU/request{step}")


if __name__ == "__main__":
    main()
