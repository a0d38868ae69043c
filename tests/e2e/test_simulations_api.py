"""What-if simulation through HTTP: a draft version over a receipts file, in the
background, its progress, result and charts."""

from __future__ import annotations

import asyncio
import copy
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from service.rules.demo import demo_program
from tests.conftest import ADMIN, POS
from tests.unit.simulation.generated import generated
from tests.unit.simulation.test_engine import START, write_csv

ADMIN_API = "/v1/admin"


def receipts_csv(tmp_path: Path) -> bytes:
    path = tmp_path / "receipts.csv"
    write_csv(generated(120, seed=29, start=START), path)
    return path.read_bytes()


async def draft_version(client: httpx.AsyncClient) -> int:
    document = copy.deepcopy(demo_program())
    document["points"]["accrual_percent"] = "2"
    document["tiers"]["levels"][0]["accrual_percent"] = "2"
    created = await client.post(f"{ADMIN_API}/programs", json={"document": document}, headers=ADMIN)
    assert created.status_code == 201, created.text
    return int(created.json()["version"])


async def test_a_draft_simulated_in_the_background_with_its_charts(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    version = await draft_version(client)
    started = await client.post(
        f"{ADMIN_API}/programs/{version}/simulate",
        params={"breakage_percent": "25"},
        content=receipts_csv(tmp_path),
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["status"] == "running" and job["total"] == 240
    seen = []
    for _ in range(600):
        state = (await client.get(f"{ADMIN_API}/simulations/{job['job_id']}", headers=ADMIN)).json()
        seen.append(state["done"])
        if state["status"] != "running":
            break
        await asyncio.sleep(0.05)
    assert state["status"] == "done", state
    assert seen == sorted(seen) and state["done"] == 240
    result = state["result"]
    assert state["draft_version"] == version
    assert result["current"]["receipts"] == result["draft"]["receipts"] == 120
    assert result["difference"]["points_earned"] > 0
    assert result["draft"]["breakage_rate_bp"] == 2_500
    chart = f"{ADMIN_API}/simulations/{job['job_id']}/charts"
    png = await client.get(f"{chart}/liability", headers=ADMIN)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    svg = await client.get(f"{chart}/tier-mix-draft", params={"format": "svg"}, headers=ADMIN)
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in svg.content


async def test_a_bad_file_is_refused_before_any_job(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    version = await draft_version(client)
    refused = await client.post(
        f"{ADMIN_API}/programs/{version}/simulate",
        content=io.BytesIO(b"receipt_id,timestamp\nr1,yesterday\n").read(),
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert refused.status_code == 422, refused.text
    missing = await client.get(f"{ADMIN_API}/simulations/999999999", headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["error"] == "simulation_job_not_found"
    no_chart = await client.get(
        f"{ADMIN_API}/simulations/999999999/charts/liability", headers=ADMIN
    )
    assert no_chart.status_code == 404


async def test_the_ledgers_own_receipts_of_a_period(client: httpx.AsyncClient) -> None:
    """A sale committed through the POS API, then simulated from the ledger."""
    version = await draft_version(client)
    now = datetime.now(UTC)
    number = "2000000000022"  # a demo card
    sale = {
        "store_id": "msk-001", "timestamp": (now - timedelta(minutes=5)).isoformat(),
        "card": number, "transaction_id": f"SIM-LEDGER-{now.timestamp()}",
        "lines": [{"line_id": "1", "sku": "TEE-1", "category": "tops", "quantity": "1",
                   "unit_price": 149_900}],
    }  # fmt: skip
    committed = await client.post("/v1/commit", json=sale, headers=POS)
    assert committed.status_code == 200, committed.text
    period = {"since": (now - timedelta(minutes=10)).isoformat(), "until": now.isoformat()}
    started = await client.post(
        f"{ADMIN_API}/programs/{version}/simulate-ledger", params=period, headers=ADMIN
    )
    assert started.status_code == 202, started.text
    job = started.json()
    for _ in range(600):
        state = (await client.get(f"{ADMIN_API}/simulations/{job['job_id']}", headers=ADMIN)).json()
        if state["status"] != "running":
            break
        await asyncio.sleep(0.05)
    assert state["status"] == "done", state
    assert state["result"]["current"]["receipts"] >= 1
    backwards = {"since": period["until"], "until": period["since"]}
    refused = await client.post(
        f"{ADMIN_API}/programs/{version}/simulate-ledger", params=backwards, headers=ADMIN
    )
    assert refused.status_code == 422 and refused.json()["error"] == "invalid_period"
    empty = {"since": "2001-01-01T00:00:00+00:00", "until": "2001-01-02T00:00:00+00:00"}
    nothing = await client.post(
        f"{ADMIN_API}/programs/{version}/simulate-ledger", params=empty, headers=ADMIN
    )
    assert nothing.status_code == 422


async def test_the_uplift_forecast_of_the_worked_example(client: httpx.AsyncClient) -> None:
    """SPEC §10.2: 970 - 150 - 350 = 470 roubles a converted receipt, online."""
    body = {"groups": [{"channel": "online", "kind": "loyal", "customers": 1000,
                        "average_receipt": 203_000, "threshold": 300_000,
                        "purchases_per_month_milli": 2000}]}  # fmt: skip
    answer = await client.post(f"{ADMIN_API}/analysis/uplift-forecast", json=body, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["totals"]["moderate"]["online"] == 12 * 100 * 47_000
    assert result["assumptions"]["delivery_cost"] == 35_000
    refused = await client.post(
        f"{ADMIN_API}/analysis/uplift-forecast", json={"groups": []}, headers=ADMIN
    )
    assert refused.status_code == 422
    pos = await client.post(f"{ADMIN_API}/analysis/uplift-forecast", json=body, headers=POS)
    assert pos.status_code == 403
