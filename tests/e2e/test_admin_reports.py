"""Back office reports through HTTP: JSON pages with keyset cursors, streamed CSV."""

from __future__ import annotations

import csv
import io
import os
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from service.storage.postgres.expiry import expire_due
from service.storage.postgres.pool import connect, create_pool
from tests.clock import FRIDAY
from tests.conftest import ADMIN, POS
from tests.e2e.admin_helpers import add_lot, fields, new_card
from tests.e2e.test_pos_api import receipt

REPORTS = "/v1/admin/reports"


def _csv(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


async def _store(client: httpx.AsyncClient) -> str:
    store_id = f"rep-{os.urandom(3).hex()}"
    body = {"region": "moscow", "timezone": "Europe/Moscow"}
    assert (
        await client.put(f"/v1/admin/stores/{store_id}", json=body, headers=ADMIN)
    ).status_code == 200
    return store_id


async def _sale(
    client: httpx.AsyncClient, store_id: str, card: str, tx: str, **extra: object
) -> None:
    sale = receipt(store_id=store_id, card=card, transaction_id=tx, redeem_points=100, **extra)
    response = await client.post("/v1/commit", json=sale, headers=ADMIN)
    assert response.status_code == 200, response.text


async def test_balances_page_by_cursor_and_export(client: httpx.AsyncClient) -> None:
    card = await new_card(client, points=300)
    first = (await client.get(f"{REPORTS}/balances", params={"limit": 2}, headers=ADMIN)).json()
    assert len(first["rows"]) == 2 and first["next_cursor"]
    second = await client.get(
        f"{REPORTS}/balances", params={"limit": 2, "cursor": first["next_cursor"]}, headers=ADMIN
    )
    assert {r["number"] for r in second.json()["rows"]}.isdisjoint(
        r["number"] for r in first["rows"]
    )
    rows = _csv(await client.get(f"{REPORTS}/balances", params={"format": "csv"}, headers=ADMIN))
    mine = next(r for r in rows if r["number"] == card)
    assert mine["balance"] == "300" and mine["status"] == "active"
    assert {"2000000000015", "2000000000022"} <= {r["number"] for r in rows}


async def test_card_and_store_history(client: httpx.AsyncClient) -> None:
    store_id, card = await _store(client), await new_card(client, points=1000)
    await _sale(client, store_id, card, "H-1")
    await _sale(client, store_id, card, "H-2")
    until = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    history = await client.get(
        f"{REPORTS}/cards/{card}/history", params={"until": until}, headers=ADMIN
    )
    kinds = [(r["kind"], r["transaction_id"]) for r in history.json()["rows"]]
    assert kinds[0][0] == "adjustment" and ("redemption", "H-1") in kinds
    assert history.json()["rows"][0]["reason"] == "test balance"
    assert history.json()["rows"][0]["author"].startswith("demo admin (")

    page = await client.get(
        f"{REPORTS}/stores/{store_id}/history",
        params={"until": until, "limit": 2},
        headers=ADMIN,
    )
    body = page.json()
    assert len(body["rows"]) == 2 and body["next_cursor"]
    rest = await client.get(
        f"{REPORTS}/stores/{store_id}/history",
        params={"until": until, "limit": 2, "cursor": body["next_cursor"]},
        headers=ADMIN,
    )
    seen = body["rows"] + rest.json()["rows"]
    assert {r["transaction_id"] for r in seen} == {"H-1", "H-2"}
    assert len({r["entry_id"] for r in seen}) == len(seen) == 4  # redemption + accrual, twice
    exported = _csv(
        await client.get(
            f"{REPORTS}/stores/{store_id}/history",
            params={"until": until, "format": "csv"},
            headers=ADMIN,
        )
    )
    assert [r["entry_id"] for r in exported] == [str(r["entry_id"]) for r in seen]


async def test_promotions_and_program_health(client: httpx.AsyncClient) -> None:
    store_id = await _store(client)
    card = await new_card(client, points=500)
    await _sale(client, store_id, card, "PH-1", promo_codes=["AUTUMN10"])
    anonymous = receipt(store_id=store_id, card=None, transaction_id="PH-2")
    assert (await client.post("/v1/commit", json=anonymous, headers=ADMIN)).status_code == 200

    promos = (await client.get(f"{REPORTS}/promotions", params=FRIDAY, headers=ADMIN)).json()
    autumn = next(r for r in promos["rows"] if r["rule_id"] == "autumn10")
    assert autumn["receipts"] >= 1 and autumn["discount"] >= 34990  # 10% of a dress
    exported = _csv(
        await client.get(f"{REPORTS}/promotions", params={**FRIDAY, "format": "csv"}, headers=ADMIN)
    )
    assert [r["rule_id"] for r in exported] == [r["rule_id"] for r in promos["rows"]]
    # Downloaded by a person in Russian: Russian headers, the discount in roubles.
    russian = _csv(
        await client.get(
            f"{REPORTS}/promotions", params={**FRIDAY, "format": "csv"},
            headers={**ADMIN, "Accept-Language": "ru-RU,ru;q=0.9"},
        )
    )  # fmt: skip
    by_rule = {row["Акция"]: row for row in russian}
    roubles, kopecks = divmod(autumn["discount"], 100)
    assert (
        by_rule["autumn10"]["Скидка, руб."]
        == f"{roubles:,}".replace(",", "\xa0") + f",{kopecks:02d}"
    )
    assert by_rule["autumn10"]["Чеков"] == str(autumn["receipts"])

    health = (await client.get(f"{REPORTS}/health", params=FRIDAY, headers=ADMIN)).json()
    assert health["receipts"] > health["receipts_with_card"] >= 1
    assert health["participation_bp"] == health["receipts_with_card"] * 10_000 // health["receipts"]
    without = health["receipts"] - health["receipts_with_card"]
    assert health["average_receipt_without_card"] == health["sales_without_card"] // without
    one = _csv(
        await client.get(f"{REPORTS}/health", params={**FRIDAY, "format": "csv"}, headers=ADMIN)
    )
    assert one[0]["receipts"] == str(health["receipts"])


async def test_liability_and_breakage(client: httpx.AsyncClient, demo_database: str) -> None:
    card = await new_card(client)
    conn = await connect(demo_database)
    try:
        await add_lot(conn, card, 77, "30 days", "-1 second")
        outstanding = await conn.fetchval(
            "SELECT sum(remaining) FROM point_lots WHERE remaining > 0"
            " AND (expires_at IS NULL OR expires_at > now())"
        )
    finally:
        await conn.close()
    pool = await create_pool(demo_database, min_size=1, max_size=2)
    try:
        assert await expire_due(pool, datetime.now(UTC)) is not None
    finally:
        await pool.close()

    liability = (await client.get(f"{REPORTS}/liability", headers=ADMIN)).json()["rows"]
    assert sum(r["points"] for r in liability) >= outstanding - 1000  # sales meanwhile
    assert all(r["value"] == r["points"] * 100 for r in liability)
    assert [r["month"] for r in liability] == sorted(r["month"] for r in liability)
    breakage = (await client.get(f"{REPORTS}/breakage", headers=ADMIN)).json()["rows"]
    this_month = datetime.now(UTC).strftime("%Y-%m")
    assert next(r for r in breakage if r["month"] == this_month)["points_expired"] >= 77


async def test_bad_report_queries_name_the_field(client: httpx.AsyncClient) -> None:
    cases = [
        ("/balances", {"limit": 0}, "limit"),
        ("/balances", {"format": "xml"}, "format"),
        ("/balances", {"cursor": "abc"}, "cursor"),
        ("/stores/msk-001/history", {"cursor": "x|y"}, "cursor"),
        ("/health", {"since": FRIDAY["until"], "until": FRIDAY["since"]}, "since"),
        ("/promotions", {"since": "2026-11-20T00:00:00"}, "since"),
    ]
    for path, params, field in cases:
        response = await client.get(f"{REPORTS}{path}", params=params, headers=ADMIN)
        assert response.status_code == 422, (path, response.text)
        assert fields(response) == {field}, response.text
    missing = await client.get(f"{REPORTS}/cards/2999999999997/history", headers=ADMIN)
    assert missing.status_code == 404
    assert (await client.get(f"{REPORTS}/balances", headers=POS)).status_code == 403


@pytest.mark.parametrize("query", ["", "?format=csv", "?format=csv&cursor="])
async def test_a_refused_report_is_a_clean_error_in_csv_too(
    client: httpx.AsyncClient, query: str
) -> None:
    """The OpenAPI fuzz's find: the CSV answer started before its first page was read, so
    an unknown card's history was a stream cut after its headers, not a 4xx."""
    answer = await client.get(f"/v1/admin/reports/cards/0000000000/history{query}", headers=ADMIN)
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["error"]
