"""Faults that must not cost a point: stale or lost cache, a worker killed mid-commit,
points pending or expired."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import redis.asyncio as aioredis
from fastapi import FastAPI

from service.domain.card import PointLot
from service.storage.postgres.expiry import expire_due
from service.storage.postgres.ledger import sale_json
from service.usecases.commit import Sale, commit
from service.usecases.ports import Committed, SaleEntry, SaleOutcome
from tests.conftest import redis_client
from tests.integration.conftest import NewCard
from tests.integration.test_sales import card_info, post, shirts


async def test_a_stale_cache_entry_never_allows_an_overspend(
    client: httpx.AsyncClient, app: FastAPI, new_card: NewCard, ledger_db: asyncpg.Connection
) -> None:
    number = await new_card(100)
    services = app.state.services
    now = datetime.now(UTC)
    state = await services.cards.load(number, now, services.programs.current)
    rich = PointLot(999, 100_000, now - timedelta(days=1), now + timedelta(days=30))
    poisoned = replace(state, lots=(rich,), ledger_version=state.ledger_version + 50)
    assert await services.card_cache.put(poisoned, now.date())
    shown = (await post(client, "/v1/calculate", shirts(number, redeem=400))).json()
    assert shown["totals"]["points_redeemed"] == 400  # the cache believes in 100,000 points
    sale = {**shirts(number, redeem=400), "transaction_id": f"ST-{number}",
            "calculation_id": shown["calculation_id"]}  # fmt: skip
    refused = await post(client, "/v1/commit", sale)
    assert refused.status_code == 409 and refused.json()["balance"] == 100
    remaining = await ledger_db.fetchval(
        "SELECT sum(remaining) FROM point_lots JOIN cards USING (card_id) WHERE number = $1",
        number,
    )
    assert remaining == 100


def _normalised(body: dict[str, Any]) -> dict[str, Any]:
    drop = {"calculation_id", "transaction_id", "refund_id", "number"}
    clean = {k: v for k, v in body.items() if k not in drop}
    if isinstance(clean.get("card"), dict):
        clean["card"] = {k: v for k, v in clean["card"].items() if k != "number"}
    return clean


async def _run_sales(
    client: httpx.AsyncClient,
    number: str,
    steps: list[dict[str, Any]],
    flush: aioredis.Redis | None,
) -> list[dict[str, Any]]:
    answers = []
    for i, step in enumerate(steps):
        receipt = {**step, "card": number}
        shown = (await post(client, "/v1/calculate", receipt)).json()
        if flush is not None:
            await flush.flushdb()
        sale = {**receipt, "transaction_id": f"F-{number}-{i}",
                "calculation_id": shown["calculation_id"]}  # fmt: skip
        done = (await post(client, "/v1/commit", sale)).json()
        if flush is not None:
            await flush.flushdb()
        answers += [_normalised(shown), _normalised(done)]
    refund = {"store_id": "msk-001", "transaction_id": f"F-{number}-0", "refund_id": f"FR-{number}",
              "lines": [{"line_id": "1", "quantity": "1"}]}  # fmt: skip
    answers.append(_normalised((await post(client, "/v1/refund", refund)).json()))
    answers.append(_normalised(await card_info(client, number)))
    return answers


async def test_flushing_redis_in_the_middle_of_a_run_changes_no_result(
    client: httpx.AsyncClient, new_card: NewCard, clean_redis: str
) -> None:
    steps = [shirts(None, redeem=50 * (i + 1), lines=i + 1) for i in range(4)]
    calm, stormy = await new_card(1_000), await new_card(1_000)
    redis = redis_client(clean_redis)
    try:
        expected = await _run_sales(client, calm, steps, None)
        assert await _run_sales(client, stormy, steps, redis) == expected
    finally:
        await redis.aclose()


class _Capture:
    """A ledger that only keeps the sale it is asked to commit."""

    entry: SaleEntry

    async def commit_sale(self, entry: SaleEntry) -> SaleOutcome:
        self.entry = entry
        return Committed({})


_KILLED_WORKER = """
import asyncio, json, sys
import asyncpg

async def main():
    conn = await asyncpg.connect(sys.argv[1])
    async with conn.transaction():
        await conn.fetchval("SELECT loyalty_commit($1::jsonb)", sys.argv[2])
        print("written, not committed", flush=True)
        await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_a_worker_killed_in_the_middle_of_a_commit_leaves_nothing(
    client: httpx.AsyncClient,
    app: FastAPI,
    new_card: NewCard,
    demo_database: str,
    ledger_db: asyncpg.Connection,
) -> None:
    number = await new_card(500)
    services = app.state.services
    body = {**shirts(number, redeem=200), "transaction_id": f"K-{number}"}
    from service.api.schemas import CommitRequest, receipt_from

    request = CommitRequest.model_validate(body)
    capture = _Capture()
    await commit(
        Sale(receipt_from(request), request.transaction_id, None),
        now=datetime.now(UTC),
        ports=services.sale_ports,
        ledger=capture,
    )
    worker = subprocess.Popen(  # noqa: ASYNC220 - killed below, never waited on long
        [sys.executable, "-c", _KILLED_WORKER, demo_database, json.dumps(sale_json(capture.entry))],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    line = await asyncio.to_thread(worker.stdout.readline)
    assert line.strip() == "written, not committed"
    worker.kill()
    await asyncio.to_thread(worker.wait)

    async def written() -> int:
        return int(
            await ledger_db.fetchval(
                "SELECT count(*) FROM ledger_entries JOIN cards USING (card_id)"
                " WHERE number = $1 AND ledger_entries.kind <> 'adjustment'",
                number,
            )
        )

    for _ in range(50):  # the server notices the dead client and rolls back
        if await written() == 0 and (await card_info(client, number))["balance"] == 500:
            break
        await asyncio.sleep(0.1)
    assert await written() == 0
    assert (await card_info(client, number))["balance"] == 500
    retried = await post(client, "/v1/commit", body)  # the POS retries: it now lands once
    assert retried.status_code == 200, retried.text
    assert (await card_info(client, number))["balance"] == 300


async def test_pending_and_expired_points_are_never_spendable(
    client: httpx.AsyncClient, app: FastAPI, new_card: NewCard, ledger_db: asyncpg.Connection
) -> None:
    expired = await new_card(300, expires_in_days=-1)
    info = await card_info(client, expired)
    assert info["balance"] == 0
    shown = (await post(client, "/v1/calculate", shirts(expired, redeem=100))).json()
    assert shown["totals"]["points_redeemed"] == 0
    refused = await post(
        client, "/v1/commit", {**shirts(expired, redeem=100), "transaction_id": "E1"}
    )
    assert refused.status_code == 409 and refused.json()["error"] == "insufficient_points"

    fresh = await new_card(0)
    earned = await post(client, "/v1/commit", {**shirts(fresh), "transaction_id": f"E-{fresh}"})
    assert earned.json()["card"] == {**earned.json()["card"], "balance": 0, "pending": 10}
    spend = await post(client, "/v1/commit", {**shirts(fresh, redeem=5), "transaction_id": "E2"})
    assert spend.status_code == 409  # pending points are not spendable yet

    numbers = await expire_due(app.state.services.pool, datetime.now(UTC))
    assert numbers is not None and expired in numbers
    entries = await ledger_db.fetch(
        "SELECT e.kind, e.points FROM ledger_entries e JOIN cards c USING (card_id)"
        " WHERE c.number = $1 ORDER BY e.entry_id",
        expired,
    )
    assert [(r["kind"], r["points"]) for r in entries][-1] == ("expiration", -300)
    assert await expire_due(app.state.services.pool, datetime.now(UTC)) == []
