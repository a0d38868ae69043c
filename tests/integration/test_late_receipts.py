"""Late receipts (SPEC §3.3, issue 16): a till that was offline sends its sales later.
Each is calculated and committed under the program version in force at its own time; one
older than the program's maximum lateness is refused; points never arrive expired.

A database of its own: the demo program, in force (by its recorded switch) since forty
days ago, then a new version published now that gives shirts 30% off. Receipts dated
before the publish get the demo's answer, receipts after it the new one's.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.storage.postgres.pool import connect
from tests.clock import demo_program_now
from tests.conftest import ADMIN, POS
from tests.integration.conftest import OwnProgram, own_program

# A card of this database's own: the demo's numbers are cached in the Redis the suite shares.
CARD = f"79{int.from_bytes(os.urandom(4), 'big'):011d}"
SHIRTS_30 = {
    "id": "shirts-30", "name": "Shirts -30%", "priority": 5,
    "target": {"categories": ["shirts"]}, "effect": {"type": "percent", "percent": "30"},
}  # fmt: skip


@pytest.fixture
async def offline(server_url: str, redis_url: str) -> AsyncIterator[tuple[OwnProgram, datetime]]:
    document = demo_program_now()
    document["points"] = {**document["points"], "pending_days": 0, "validity_days": 20}
    async with own_program(server_url, redis_url, document) as served:
        client, url, _ = served
        conn = await connect(url)
        try:  # the demo has been in force for forty days
            await conn.execute(
                "UPDATE program_switches SET switched_at = now() - interval '40 days'"
            )
            await conn.execute("INSERT INTO cards (number) VALUES ($1)", CARD)
        finally:
            await conn.close()
        draft = await client.post(
            "/v1/admin/programs",
            json={"document": {**document, "rules": [*document["rules"], SHIRTS_30]}},
            headers=ADMIN,
        )
        version = draft.json()["version"]
        published = await client.post(f"/v1/admin/programs/{version}/publish", headers=ADMIN)
        assert published.status_code == 200, published.text
        for _ in range(100):  # the workers load a publish within a second (test_admin_programs)
            active = await client.get("/v1/admin/programs/active", headers=ADMIN)
            if active.json()["version"] == version:
                break
            await asyncio.sleep(0.05)
        yield served, datetime.now(UTC)


def _shirt(when: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "store_id": "msk-001", "timestamp": when.isoformat(), "card": CARD,
        "lines": [{"line_id": "1", "sku": "SH-1", "category": "shirts", "quantity": "1",
                   "unit_price": 100_000}],
        **extra,
    }  # fmt: skip


async def test_a_receipt_is_calculated_under_the_version_of_its_time(
    offline: tuple[OwnProgram, datetime],
) -> None:
    (client, _, _), published = offline
    late = (
        await client.post("/v1/calculate", json=_shirt(published - timedelta(days=3)), headers=POS)
    ).json()
    now = (
        await client.post(
            "/v1/calculate", json=_shirt(published + timedelta(seconds=1)), headers=POS
        )
    ).json()
    assert (late["program_version"], now["program_version"]) == (1, 2)
    assert [r["rule_id"] for r in now["rules"] if r["applied"]] != [
        r["rule_id"] for r in late["rules"] if r["applied"]
    ]
    assert any(r["rule_id"] == "shirts-30" and r["applied"] for r in now["rules"])
    assert all(r["rule_id"] != "shirts-30" for r in late["rules"])
    # A commit sent whole, late, is recorded under its time's version too.
    done = await client.post(
        "/v1/commit",
        json=_shirt(published - timedelta(days=3), transaction_id="LATE-1"),
        headers=POS,
    )
    assert done.status_code == 200, done.text
    assert done.json()["program_version"] == 1
    assert done.json()["lines"] == late["lines"]


async def test_a_receipt_older_than_the_lateness_is_refused(
    offline: tuple[OwnProgram, datetime],
) -> None:
    (client, _, _), published = offline
    old = published - timedelta(days=31)
    for path, body in (
        ("/v1/calculate", _shirt(old)),
        ("/v1/commit", _shirt(old, transaction_id="OLD-1")),
    ):
        refused = await client.post(path, json=body, headers=POS)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"] == "receipt_too_old"
        assert refused.json()["max_lateness_days"] == 30


async def test_points_of_a_late_receipt_never_arrive_expired(
    offline: tuple[OwnProgram, datetime],
) -> None:
    (client, url, _), published = offline
    # Twenty-five days late, points valid twenty days: counted from the sale they expired
    # five days ago, so they live their twenty days from now.
    done = await client.post(
        "/v1/commit",
        json=_shirt(published - timedelta(days=25), transaction_id="LATE-2"),
        headers=POS,
    )
    assert done.status_code == 200, done.text
    conn = await connect(url)
    try:
        expires = await conn.fetchval(
            "SELECT l.expires_at FROM ledger_entries e JOIN point_lots l USING (card_id, lot_id)"
            " WHERE e.transaction_id = 'LATE-2' AND e.kind = 'accrual'"
        )
    finally:
        await conn.close()
    assert expires > datetime.now(UTC) + timedelta(days=19)
