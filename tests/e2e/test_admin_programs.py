"""Back office: program drafts, validation, dry runs, publication, schedules, rollbacks,
the audit log; a publish seen by both workers of a real two-worker server."""

from __future__ import annotations

import asyncio
import copy
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.clock import FRIDAY_NOON_AT
from tests.clock import demo_program_now as demo_program
from tests.conftest import ADMIN, POS
from tests.e2e.servers import two_workers
from tests.e2e.test_pos_api import receipt

PROGRAMS = "/v1/admin/programs"


def same_program(note: str) -> dict[str, Any]:
    """The demo program under another description: publishing it changes no calculation,
    so the rest of the suite, sharing the database, sees the same results."""
    return {**demo_program(), "description": f"copy: {note}"}


async def current_version(client: httpx.AsyncClient) -> int:
    versions = (await client.get(PROGRAMS, headers=ADMIN)).json()["versions"]
    return next(v["version"] for v in versions if v["current"])


async def wait_active(client: httpx.AsyncClient, version: int, seconds: float = 3.0) -> float:
    """Seconds until the app calculates with ``version``."""
    started = time.monotonic()
    while True:
        active = (await client.get(f"{PROGRAMS}/active", headers=ADMIN)).json()
        if active["version"] == version:
            return time.monotonic() - started
        assert time.monotonic() - started < seconds, active
        await asyncio.sleep(0.05)


async def new_draft(client: httpx.AsyncClient, document: dict[str, Any]) -> int:
    response = await client.post(PROGRAMS, json={"document": document}, headers=ADMIN)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "draft" and body["current"] is False
    return int(body["version"])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", PROGRAMS),
        ("POST", PROGRAMS),
        ("GET", f"{PROGRAMS}/1"),
        ("POST", f"{PROGRAMS}/1/publish"),
        ("GET", "/v1/admin/audit"),
    ],
)
async def test_admin_endpoints_refuse_a_pos_key(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, path, headers=POS, json={"document": {}})
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "forbidden"
    assert (await client.request(method, path)).status_code == 401


async def test_validate_names_each_bad_field(client: httpx.AsyncClient) -> None:
    ok = await client.post(f"{PROGRAMS}/validate", json={"document": demo_program()}, headers=ADMIN)
    assert ok.status_code == 200 and ok.json() == {"valid": True, "errors": []}
    broken = copy.deepcopy(demo_program())
    broken["points"]["max_share_percent"] = "150"
    broken["rules"][0]["group"] = "nowhere"
    report = (
        await client.post(f"{PROGRAMS}/validate", json={"document": broken}, headers=ADMIN)
    ).json()
    assert report["valid"] is False
    fields = {e["field"] for e in report["errors"]}
    assert "document.points.max_share_percent" in fields


async def test_an_invalid_draft_is_422_and_stores_nothing(client: httpx.AsyncClient) -> None:
    before = (await client.get(PROGRAMS, headers=ADMIN)).json()["versions"][0]["version"]
    broken = {**demo_program(), "points": {"point_value": 0}}
    response = await client.post(PROGRAMS, json={"document": broken}, headers=ADMIN)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "program_invalid"
    assert body["fields"][0]["field"] == "document.points.point_value"
    assert (await client.get(PROGRAMS, headers=ADMIN)).json()["versions"][0]["version"] == before
    missing = await client.post(PROGRAMS, json={"doc": {}}, headers=ADMIN)
    assert missing.status_code == 422
    assert {f["field"] for f in missing.json()["fields"]} == {"document", "doc"}


async def test_draft_edit_and_dry_run_leave_the_current_program_alone(
    client: httpx.AsyncClient,
) -> None:
    version = await new_draft(client, same_program("draft to edit"))
    richer = copy.deepcopy(demo_program())
    richer["tiers"]["levels"][1]["discount_percent"] = "7"  # silver 7% instead of 5%
    updated = await client.put(f"{PROGRAMS}/{version}", json={"document": richer}, headers=ADMIN)
    assert updated.status_code == 200 and updated.json()["document"] == richer

    sample = {"receipt": receipt(), "now": (FRIDAY_NOON_AT + timedelta(seconds=5)).isoformat()}
    dry = await client.post(f"{PROGRAMS}/{version}/dry-run", json=sample, headers=ADMIN)
    assert dry.status_code == 200, dry.text
    assert dry.json()["program_version"] == version
    assert dry.json()["totals"]["discount"] == 24493  # 7% of 3,499 roubles
    live = await client.post("/v1/calculate", json=receipt(), headers=POS)
    assert live.json()["totals"]["discount"] == 17495  # still 5%
    # The marketer reads why each rule did not apply, in words, in their language.
    ru = {**ADMIN, "Accept-Language": "ru"}
    explained = (await client.post(f"{PROGRAMS}/{version}/dry-run", json=sample, headers=ru)).json()
    verdicts = {v["rule_id"]: v for v in explained["rules"]}
    assert verdicts["autumn10"]["reason"] == "promo_code_missing"
    assert verdicts["autumn10"]["reason_text"] == "Для акции нужен промокод, которого нет в чеке."
    assert all(v["reason_text"] is None for v in explained["rules"] if v["applied"])

    bad = {"receipt": receipt(lines=[{"line_id": "1", "sku": "x", "quantity": "1",
                                       "unit_price": -5}])}  # fmt: skip
    refused = await client.post(f"{PROGRAMS}/{version}/dry-run", json=bad, headers=ADMIN)
    assert refused.status_code == 422
    assert refused.json()["fields"][0]["field"] == "receipt.lines[0].unit_price"

    deleted = await client.delete(f"{PROGRAMS}/{version}", headers=ADMIN)
    assert deleted.status_code == 200
    assert (await client.get(f"{PROGRAMS}/{version}", headers=ADMIN)).status_code == 404


async def test_publish_then_roll_back(client: httpx.AsyncClient) -> None:
    previous = await current_version(client)
    version = await new_draft(client, same_program("publish"))
    published = await client.post(f"{PROGRAMS}/{version}/publish", headers=ADMIN)
    assert published.status_code == 200, published.text
    assert published.json()["status"] == "published" and published.json()["current"]
    assert await wait_active(client, version) < 1.0
    old = (await client.get(f"{PROGRAMS}/{previous}", headers=ADMIN)).json()
    assert old["status"] == "retired" and not old["current"]

    again = await client.post(f"{PROGRAMS}/{version}/publish", headers=ADMIN)
    assert again.status_code == 409 and again.json()["error"] == "program_not_draft"

    back = await client.post(f"{PROGRAMS}/{previous}/rollback", headers=ADMIN)
    assert back.status_code == 200 and back.json()["current"]
    assert await wait_active(client, previous) < 1.0
    assert (await current_version(client)) == previous

    audit = (
        await client.get("/v1/admin/audit", params={"subject": f"program:{version}"}, headers=ADMIN)
    ).json()["entries"]
    assert [e["action"] for e in audit] == ["program.publish", "program.draft"]
    assert audit[0]["actor"].startswith("demo admin (")


async def test_program_errors(client: httpx.AsyncClient) -> None:
    draft = await new_draft(client, same_program("never published"))
    refused = await client.post(f"{PROGRAMS}/{draft}/rollback", headers=ADMIN)
    assert refused.status_code == 409 and refused.json()["error"] == "program_never_published"
    assert (await client.post(f"{PROGRAMS}/999999/publish", headers=ADMIN)).status_code == 404
    zero = await client.post(f"{PROGRAMS}/0/publish", headers=ADMIN)
    assert zero.status_code == 422 and zero.json()["fields"][0]["field"] == "version"
    huge = await client.get(f"{PROGRAMS}/99999999999", headers=ADMIN)
    assert huge.status_code == 422
    current = await current_version(client)
    edit = await client.put(
        f"{PROGRAMS}/{current}", json={"document": same_program("edit")}, headers=ADMIN
    )
    assert edit.status_code == 409
    await client.delete(f"{PROGRAMS}/{draft}", headers=ADMIN)


async def test_a_scheduled_draft_is_published_on_time(client: httpx.AsyncClient) -> None:
    version = await new_draft(client, same_program("scheduled"))
    later = datetime.now(UTC) + timedelta(hours=1)
    scheduled = await client.post(
        f"{PROGRAMS}/{version}/schedule", json={"publish_at": later.isoformat()}, headers=ADMIN
    )
    assert scheduled.status_code == 200 and scheduled.json()["publish_at"] is not None
    naive = await client.post(
        f"{PROGRAMS}/{version}/schedule",
        json={"publish_at": "2026-12-01T00:00:00"},
        headers=ADMIN,
    )
    assert naive.status_code == 422 and naive.json()["fields"][0]["field"] == "publish_at"

    soon = datetime.now(UTC) + timedelta(seconds=0.5)
    await client.post(
        f"{PROGRAMS}/{version}/schedule", json={"publish_at": soon.isoformat()}, headers=ADMIN
    )
    await wait_active(client, version, seconds=5.0)
    row = (await client.get(f"{PROGRAMS}/{version}", headers=ADMIN)).json()
    assert row["status"] == "published" and row["publish_at"] is None


async def _active_once(port: int) -> dict[str, Any]:
    """A fresh connection each time, so that either worker may answer."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=ADMIN) as one:
        return dict((await one.get(f"{PROGRAMS}/active")).json())


async def test_a_publish_is_seen_by_both_workers_within_a_second(
    demo_database: str, clean_redis: str
) -> None:
    # The periodic re-read is the safety net; a minute is too slow to explain the switch.
    async with two_workers(demo_database, clean_redis, LOYALTY_API_KEY_REFRESH_S="60") as served:
        async with httpx.AsyncClient(base_url=served.url, headers=ADMIN) as c:
            version = await new_draft(c, same_program("two workers"))
            published = await c.post(f"{PROGRAMS}/{version}/publish")
            assert published.status_code == 200, published.text
        answered = datetime.now(UTC)
        await asyncio.sleep(1.0)
        answers = [await _active_once(served.port) for _ in range(40)]
        workers = {a["worker"] for a in answers}
        assert len(workers) == 2, answers
        assert {a["version"] for a in answers} == {version}
        # Each worker says when it swapped: after the publish began, within the second.
        for taken in {datetime.fromisoformat(a["taken_up_at"]) for a in answers}:
            assert taken - answered < timedelta(seconds=1), answers
