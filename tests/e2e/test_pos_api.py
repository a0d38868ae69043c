"""The POS surface through HTTP: auth, bad input, a calculation on the demo program."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.storage.postgres.keys import create_key
from service.storage.postgres.pool import connect
from tests.clock import FRIDAY_NOON
from tests.conftest import ADMIN, POS


def receipt(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "store_id": "msk-001",
        "timestamp": FRIDAY_NOON,
        "card": "2000000000022",
        "payment_method": "card",
        "lines": [
            {"line_id": "1", "sku": "460001", "category": "dresses", "quantity": "1",
             "unit_price": 349900},
        ],
    }  # fmt: skip
    body.update(overrides)
    return body


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {
        "postgres": True,
        "redis": True,
        "program": True,
        "kernels": True,
    }


async def test_calculate_on_the_demo_program(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/calculate", json=receipt(), headers=POS)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["calculation_id"].startswith("c_") and body["program_version"] >= 1
    assert body["totals"] == {
        "subtotal": 349900,
        "discount": 17495,
        "points_redeemable_max": 1662,
        "points_redeemed": 0,
        "amount_due": 332405,
        "points_earned": 99,
    }
    assert body["card"]["tier"] == "silver" and body["card"]["balance"] == 5000
    assert body["card"]["next_tier"] == {"tier": "gold", "spend_needed": 3_500_000}
    assert response.headers["x-request-id"]


async def test_the_cashier_reads_russian_when_the_till_asks_for_it(
    client: httpx.AsyncClient,
) -> None:
    asked = receipt(card=None, redeem_points=0)  # 3,499 roubles, no card: offer one
    over = receipt(redeem_points=5_000)  # more than the receipt lets the card spend
    english = [(await client.post("/v1/calculate", json=body, headers=POS)).json()
               for body in (asked, over)]  # fmt: skip
    russian = [
        (await client.post(
            "/v1/calculate", json=body, headers={**POS, "Accept-Language": "ru-RU,ru;q=0.9"}
        )).json()
        for body in (asked, over)
    ]  # fmt: skip
    for en, ru in zip(english, russian, strict=True):
        assert [m["code"] for m in en["messages"]] == [m["code"] for m in ru["messages"]]
        assert en["totals"] == ru["totals"]
    assert english[0]["messages"][0] == {
        "code": "offer_card",
        "text": "Offer the customer a loyalty card.",
    }
    assert russian[0]["messages"][0] == {
        "code": "offer_card",
        "text": "Предложите покупателю карту лояльности.",
    }
    limited = {m["code"]: m["text"] for m in russian[1]["messages"]}["points_limited"]
    assert limited.startswith("Списать можно не более 1662 из запрошенных 5000 баллов")
    # Errors too: the same code, a sentence in Russian.
    bad = await client.post(
        "/v1/calculate",
        json=receipt(card="2999999999997"),
        headers={**POS, "Accept-Language": "ru"},
    )
    assert bad.status_code == 404
    assert bad.json() == {"error": "card_not_found", "detail": "Такой карты лояльности нет."}


async def test_no_key_or_wrong_key_is_401(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-key"}, {"Authorization": "Basic x"}):
        response = await client.post("/v1/calculate", json=receipt(), headers=headers)
        assert response.status_code == 401
        assert response.json()["error"] == "unauthenticated"


async def test_pos_key_for_another_store_is_403(
    client: httpx.AsyncClient, app: FastAPI, demo_database: str
) -> None:
    conn = await connect(demo_database)
    try:
        key = await create_key(conn, name="ekb till", role="pos", store_ids=["ekb-001"])
    finally:
        await conn.close()
    headers = {"Authorization": f"Bearer {key}"}
    for _ in range(50):  # the worker re-reads keys in the background (0.2 s in tests)
        response = await client.post("/v1/calculate", json=receipt(), headers=headers)
        if response.status_code != 401:
            break
        await asyncio.sleep(0.1)
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    ekb = await client.post("/v1/calculate", json=receipt(store_id="ekb-001"), headers=headers)
    assert ekb.status_code == 200, ekb.text


LINE = {"line_id": "1", "sku": "A", "quantity": "1", "unit_price": 100}


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"lines": [{**LINE, "unit_price": -1}]}, 422, "validation_error"),
        ({"lines": [{**LINE, "quantity": "0.0001"}]}, 422, "validation_error"),
        ({"lines": [{**LINE, "quantity": "-2"}]}, 422, "validation_error"),
        ({"lines": [{**LINE, "quantity": "1e9"}]}, 422, "validation_error"),
        ({"lines": []}, 422, "validation_error"),
        ({"lines": [LINE, LINE]}, 422, "duplicate_line_id"),
        ({"lines": [{**LINE, "line_id": str(i)} for i in range(501)]}, 422, "too_many_lines"),
        ({"card": "12-34"}, 422, "validation_error"),
        ({"timestamp": "2026-11-20T12:00:00"}, 422, "validation_error"),
        ({"timestamp": "2999-01-01T00:00:00+00:00"}, 422, "timestamp_in_future"),
        ({"redeem_points": -5}, 422, "validation_error"),
        ({"channel": "telepathy"}, 422, "validation_error"),
        ({"surprise": 1}, 422, "validation_error"),
        ({"card": "2999999999999"}, 404, "card_not_found"),
    ],
)
async def test_bad_input_is_a_clear_4xx(
    client: httpx.AsyncClient, overrides: dict[str, Any], status: int, code: str
) -> None:
    response = await client.post("/v1/calculate", json=receipt(**overrides), headers=POS)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code and body["detail"]


async def test_unknown_store_is_404_for_an_admin_and_403_for_a_till(
    client: httpx.AsyncClient,
) -> None:
    body = receipt(store_id="nowhere")
    as_admin = await client.post("/v1/calculate", json=body, headers=ADMIN)
    assert as_admin.status_code == 404 and as_admin.json()["error"] == "store_not_found"
    as_till = await client.post("/v1/calculate", json=body, headers=POS)
    assert as_till.status_code == 403


async def test_malformed_json_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/calculate", content=b"{not json", headers={**POS, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"


async def test_validation_errors_name_the_field(client: httpx.AsyncClient) -> None:
    body = receipt(lines=[{**LINE, "unit_price": -1}])
    response = await client.post("/v1/calculate", json=body, headers=POS)
    assert response.json()["fields"][0]["field"] == "lines[0].unit_price"


async def test_metrics_have_latency_per_route(client: httpx.AsyncClient) -> None:
    await client.post("/v1/calculate", json=receipt(), headers=POS)
    text = (await client.get("/metrics")).text
    bucket = "loyalty_http_request_duration_seconds_bucket"
    assert f'{bucket}{{le="0.02",method="POST",route="/v1/calculate"}}' in text
    assert 'loyalty_card_cache_lookups_total{result="hit"}' in text


async def test_openapi_document_describes_the_pos_api(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    for path in ("/v1/calculate", "/v1/commit", "/v1/refund", "/v1/cancel", "/v1/cards/{card}"):
        assert path in document["paths"], path
    calculate = document["paths"]["/v1/calculate"]["post"]
    assert {"401", "403", "422"} <= set(calculate["responses"])
