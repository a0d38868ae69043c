"""The program's analytics and the pilot report over a period of the ledger (SPEC §10.3,
issue 19): ``GET /v1/admin/analysis/figures`` and ``/analysis/pilot``, against what the
ledger holds for the same period."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from tests.conftest import ADMIN
from tests.integration.conftest import NewCard
from tests.integration.test_sales import post, shirts

MOSCOW = ZoneInfo("Europe/Moscow")
FIGURES, PILOT = "/v1/admin/analysis/figures", "/v1/admin/analysis/pilot"


def _days() -> tuple[datetime, datetime]:
    """A three-day period that ended a week ago (Moscow midnights), out of other tests'
    way: sales are placed on its days at noon."""
    first = (datetime.now(MOSCOW) - timedelta(days=10)).date()
    since = datetime.combine(first, time(0), MOSCOW)
    return since, since + timedelta(days=3)


async def _sell(client: httpx.AsyncClient, card: str | None, store: str, at: datetime,
                tx: str, price: int, **extra: Any) -> None:  # fmt: skip
    body = {**shirts(card, price=price), "store_id": store, "timestamp": at.isoformat(),
            "transaction_id": tx, **extra}  # fmt: skip
    answer = await post(client, "/v1/commit", body)
    assert answer.status_code == 200, answer.text


async def _ledger(db: asyncpg.Connection, since: datetime, until: datetime) -> list[Any]:
    return await db.fetch(
        "SELECT store_id, card_id, points_earned, points_redeemed, subtotal, channel,"
        " payment_method FROM receipts"
        " WHERE occurred_at >= $1 AND occurred_at < $2",
        since, until,
    )  # fmt: skip


async def test_figures_per_store_region_and_month_add_up_to_the_ledger(
    client: httpx.AsyncClient, new_card: NewCard, ledger_db: asyncpg.Connection
) -> None:
    since, until = _days()
    one, two = await new_card(), await new_card()
    noon = since + timedelta(hours=12)
    await _sell(client, one, "msk-001", noon, f"AN-1-{one}", 100_000)
    await _sell(client, one, "msk-001", noon + timedelta(days=1), f"AN-2-{one}", 300_000)
    await _sell(client, two, "ekb-001", noon + timedelta(days=2), f"AN-3-{two}", 200_000)
    await _sell(client, None, "msk-001", noon + timedelta(days=2), f"AN-4-{two}", 50_000)
    await _sell(client, two, "web", noon + timedelta(days=2), f"AN-5-{two}", 70_000,
                channel="online", payment_method="sbp")  # fmt: skip
    ledger = await _ledger(ledger_db, since, until)
    online = [r for r in ledger if r["channel"] == "online"]
    assert ("web", "sbp") in {(r["store_id"], r["payment_method"]) for r in online}
    period = {"since": since.isoformat(), "until": until.isoformat()}

    by_store = await client.get(FIGURES, params={**period, "by": "store"}, headers=ADMIN)
    assert by_store.status_code == 200, by_store.text
    slices = {s["slice"]: s for s in by_store.json()["slices"]}
    for store in ("msk-001", "ekb-001"):
        mine = [r for r in ledger if r["store_id"] == store]
        carded = [r for r in mine if r["card_id"] is not None]
        assert slices[store]["receipts"] == len(mine)
        assert slices[store]["receipts_with_card"] == len(carded)
        assert slices[store]["points_earned"] == sum(r["points_earned"] for r in mine)
        assert slices[store]["active_members"] == len({r["card_id"] for r in carded})
    for by in ("group", "month", "channel"):
        answer = await client.get(FIGURES, params={**period, "by": by}, headers=ADMIN)
        assert answer.status_code == 200, answer.text
        rows = answer.json()["slices"]
        assert sum(s["receipts"] for s in rows) == len(ledger), by
        assert sum(s["points_earned"] for s in rows) == sum(r["points_earned"] for r in ledger)
    channels = await client.get(FIGURES, params={**period, "by": "channel"}, headers=ADMIN)
    by_channel = {s["slice"]: s["receipts"] for s in channels.json()["slices"]}
    assert by_channel["online"] == len(online)
    assert by_channel["offline"] == len(ledger) - len(online)
    groups = await client.get(FIGURES, params={**period, "by": "group"}, headers=ADMIN)
    assert {"moscow", "urals"} <= {s["slice"] for s in groups.json()["slices"]}

    download = await client.get(FIGURES, params={**period, "format": "csv"}, headers=ADMIN)
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(download.text)))
    assert {row["slice"]: int(row["receipts"]) for row in table} == {
        name: s["receipts"] for name, s in slices.items()
    }


async def test_pilot_report_from_the_ledger_and_its_chart(
    client: httpx.AsyncClient, new_card: NewCard
) -> None:
    since, until = _days()
    card = await new_card()
    for day in range(3):
        noon = since + timedelta(days=day, hours=12)
        for store, price in (("msk-001", 100_000 * (2 if day else 1)), ("ekb-001", 100_000)):
            await _sell(client, card, store, noon, f"PI-{day}-{store}-{card}", price)
    starts = (since + timedelta(days=1)).date().isoformat()
    asked = {"since": since.isoformat(), "until": until.isoformat(), "pilot": "msk-001",
             "control": "ekb-001", "starts": starts}  # fmt: skip
    report = await client.get(PILOT, params=asked, headers=ADMIN)
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["pilot_before"]["store_days"] == 1 and body["pilot_after"]["store_days"] == 2
    assert body["pilot_after"]["sales"] >= 2 * 200_000  # ours at least, other tests' aside
    assert set(body["average_receipt"]) == {"uplift_bp", "low_bp", "high_bp", "found"}
    chart = await client.get(PILOT, params={**asked, "format": "png"}, headers=ADMIN)
    assert chart.status_code == 200 and chart.content.startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("asked", "code"),
    [
        ({"pilot": "msk-001", "control": "msk-001"}, "invalid_input"),
        ({"pilot": "nowhere", "control": "ekb-001"}, "invalid_input"),
    ],
)
async def test_a_pilot_needs_two_groups_of_known_stores(
    client: httpx.AsyncClient, asked: dict[str, str], code: str
) -> None:
    since, until = _days()
    query = {"since": since.isoformat(), "until": until.isoformat(),
             "starts": (since + timedelta(days=1)).date().isoformat(), **asked}  # fmt: skip
    refused = await client.get(PILOT, params=query, headers=ADMIN)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"] == code


async def test_a_period_must_be_a_period(client: httpx.AsyncClient) -> None:
    now = datetime.now(UTC)
    backwards = {"since": now.isoformat(), "until": (now - timedelta(days=1)).isoformat()}
    refused = await client.get(FIGURES, params=backwards, headers=ADMIN)
    assert (refused.status_code, refused.json()["error"]) == (422, "invalid_period")
    naive = {"since": "2026-01-01T00:00:00", "until": "2026-02-01T00:00:00"}
    assert (await client.get(FIGURES, params=naive, headers=ADMIN)).status_code == 422
    years = {"since": (now - timedelta(days=800)).isoformat(), "until": now.isoformat()}
    refused = await client.get(FIGURES, params=years, headers=ADMIN)
    assert (refused.status_code, refused.json()["error"]) == (422, "period_too_long")


async def test_uplift_forecast_on_groups_built_from_the_ledger(
    client: httpx.AsyncClient, new_card: NewCard
) -> None:
    since, until = _days()
    card = await new_card()
    noon = since + timedelta(hours=12)
    await _sell(client, card, "msk-001", noon, f"UP-1-{card}", 200_000)
    await _sell(client, card, "msk-001", noon + timedelta(days=1), f"UP-2-{card}", 240_000)
    body = {"ledger": {"since": since.isoformat(), "until": until.isoformat(),
                       "threshold": 300_000, "new_days": 0}}  # fmt: skip
    answer = await client.post("/v1/admin/analysis/uplift-forecast", json=body, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    ours = [g for g in result["groups"] if g["average_receipt"] == 220_000]
    assert ours and all(g["threshold"] == 300_000 for g in result["groups"])
    assert ours[0]["kind"] == "loyal" and ours[0]["channel"] == "offline"
    assert result["totals"]["moderate"]["total"] > 0
    both = {**body, "groups": [{"channel": "online", "kind": "loyal", "customers": 1,
                                "average_receipt": 1, "threshold": 2,
                                "purchases_per_month_milli": 1}]}  # fmt: skip
    refused = await client.post("/v1/admin/analysis/uplift-forecast", json=both, headers=ADMIN)
    assert refused.status_code == 422


async def test_a_quiet_period_has_no_slices_and_no_pilot(client: httpx.AsyncClient) -> None:
    long_ago = datetime(2001, 1, 1, tzinfo=UTC)
    period = {"since": long_ago.isoformat(), "until": (long_ago + timedelta(days=30)).isoformat()}
    quiet = await client.get(FIGURES, params=period, headers=ADMIN)
    assert quiet.status_code == 200 and quiet.json()["slices"] == []
    asked = {**period, "pilot": "msk-001", "control": "ekb-001", "starts": "2001-01-15"}
    refused = await client.get(PILOT, params=asked, headers=ADMIN)
    assert (refused.status_code, refused.json()["error"]) == (422, "no_receipts_in_period")
