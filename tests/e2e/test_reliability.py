"""SPEC §3 and §7 held from outside: every replay gets its stored answer, and no input
makes a 500 (each repro of the reliability issue, answered 4xx or 503)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.storage.redis.calculations import calculation_key
from tests.conftest import ADMIN, POS, redis_client
from tests.e2e.admin_helpers import new_card
from tests.e2e.test_pos_api import receipt

DRESS = {"line_id": "1", "sku": "460001", "category": "dresses", "quantity": "1",
         "unit_price": 349900}  # fmt: skip


def _tx() -> str:
    return f"RL-{os.urandom(4).hex()}"


async def _commit(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/v1/commit", json=body, headers=POS)


async def test_a_resent_commit_gets_its_answer_though_its_points_are_spent(
    client: httpx.AsyncClient,
) -> None:
    card = await new_card(client, points=1000)
    sale = receipt(card=card, lines=[DRESS], redeem_points=1000, transaction_id=_tx())
    first = await _commit(client, sale)
    assert first.status_code == 200, first.text
    assert first.json()["totals"]["points_redeemed"] == 1000
    again = await _commit(client, sale)
    assert again.status_code == 200, again.text
    assert again.content == first.content
    other = await _commit(client, {**sale, "redeem_points": 10})
    assert other.status_code == 409 and other.json()["error"] == "idempotency_conflict"


async def test_a_resent_commit_needs_no_calculation_record(
    client: httpx.AsyncClient, redis_url: str
) -> None:
    card = await new_card(client, points=1000)
    shown = receipt(card=card, lines=[DRESS], redeem_points=1000)
    calculation = await client.post("/v1/calculate", json=shown, headers=POS)
    calculation_id = calculation.json()["calculation_id"]
    sale = {**shown, "transaction_id": _tx(), "calculation_id": calculation_id}
    first = await _commit(client, sale)
    assert first.status_code == 200, first.text
    await asyncio.sleep(0.2)  # records are written to Redis in the background
    redis = redis_client(redis_url)
    try:
        assert await redis.delete(calculation_key(calculation_id)) == 1
    finally:
        await redis.aclose()
    again = await _commit(client, sale)
    assert (again.status_code, again.content) == (200, first.content)


async def test_copies_of_a_new_commit_sent_at_once_have_one_effect_and_one_answer(
    client: httpx.AsyncClient,
) -> None:
    card = await new_card(client, points=1000)
    sale = receipt(card=card, lines=[DRESS], redeem_points=1000, transaction_id=_tx())
    answers = await asyncio.gather(*(_commit(client, sale) for _ in range(4)))
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    assert len({a.content for a in answers}) == 1
    balance = (await client.get(f"/v1/cards/{card}", headers=POS)).json()["balance"]
    assert balance == 0


async def test_resent_refund_and_cancel_get_their_answers_byte_for_byte(
    client: httpx.AsyncClient,
) -> None:
    card = await new_card(client, points=500)
    tx = _tx()
    mojitos = {"line_id": "2", "sku": "MOJITO", "category": "drinks", "quantity": "2",
               "unit_price": 45000}  # fmt: skip
    sale = receipt(card=card, lines=[DRESS, mojitos], redeem_points=500, transaction_id=tx)
    assert (await _commit(client, sale)).status_code == 200
    refund = {"store_id": "msk-001", "transaction_id": tx, "refund_id": f"{tx}-R",
              "lines": [{"line_id": "2", "quantity": "1"}]}  # fmt: skip
    first = await client.post("/v1/refund", json=refund, headers=POS)
    assert first.status_code == 200, first.text
    cancel = {"store_id": "msk-001", "transaction_id": tx}
    cancelled = await client.post("/v1/cancel", json=cancel, headers=POS)
    assert cancelled.status_code == 200, cancelled.text
    again = await client.post("/v1/refund", json=refund, headers=POS)
    assert (again.status_code, again.content) == (200, first.content)
    recancelled = await client.post("/v1/cancel", json=cancel, headers=POS)
    assert (recancelled.status_code, recancelled.content) == (200, cancelled.content)


async def test_an_adjustment_retried_with_its_idempotency_key_credits_once(
    client: httpx.AsyncClient,
) -> None:
    card = await new_card(client)
    url = f"/v1/admin/cards/{card}/adjustments"
    credit = {"points": 700, "reason": "apology"}
    headers = {**ADMIN, "Idempotency-Key": f"adj-{os.urandom(6).hex()}"}
    answers = await asyncio.gather(
        *(client.post(url, json=credit, headers=headers) for _ in range(3))
    )
    assert [a.status_code for a in answers] == [201] * 3, [a.text for a in answers]
    later = await client.post(url, json=credit, headers=headers)
    assert (later.status_code, later.content) == (201, answers[0].content)
    assert len({a.content for a in answers}) == 1
    assert (await client.get(f"/v1/cards/{card}", headers=POS)).json()["balance"] == 700
    listed = (await client.get(url, headers=ADMIN)).json()["adjustments"]
    assert len(listed) == 1
    other = await client.post(url, json={**credit, "points": 5}, headers=headers)
    assert other.status_code == 409 and other.json()["error"] == "idempotency_conflict"
    unkeyed = await client.post(url, json=credit, headers=ADMIN)
    assert unkeyed.status_code == 201 and unkeyed.json()["balance"] == 1400


REPROS: list[tuple[str, str, dict[str, str], Any, str]] = [
    ("GET", "/v1/cards/2000000000022/history", POS, {"before": "9223372036854775808"}, "before"),
    ("POST", "/v1/calculate", POS, receipt(timestamp="0001-01-01T00:00:00+01:00"), "timestamp"),
    ("POST", "/v1/commit", POS,
     receipt(timestamp="0001-01-01T00:00:00+01:00", transaction_id="T-0"), "timestamp"),
    ("GET", "/v1/admin/reports/health", ADMIN, {"until": "9999-12-31T23:59:59-23:59"}, "until"),
    ("GET", "/v1/admin/reports/health", ADMIN, {"since": "0001-01-01T00:00:00+01:00"}, "since"),
    ("POST", "/v1/admin/programs/validate", ADMIN,
     {"document": {"points": {"welcome_points": 18446744073709551616}}}, "document"),
    ("POST", "/v1/admin/customers", ADMIN,
     {"name": "x", "attributes": {"n": 18446744073709551616}}, "attributes"),
    ("POST", "/v1/admin/customers", ADMIN, {"name": "x", "email": "a\u0000b@example.com"},
     "email"),
    ("GET", "/v1/admin/customers", ADMIN, {"email": "a\u0000b@example.com"}, "email"),
    ("POST", "/v1/admin/cards/2000000000022/adjustments", ADMIN,
     {"points": 10, "reason": "x", "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
    ("POST", "/v1/calculate", POS, receipt(lines=[{**DRESS, "unit_price": "100"}]),
     "lines[0].unit_price"),
    ("POST", "/v1/calculate", POS, receipt(lines=[{**DRESS, "unit_price": True}]),
     "lines[0].unit_price"),
    ("POST", "/v1/calculate", POS, receipt(redeem_points=True), "redeem_points"),
    ("POST", "/v1/calculate", POS, receipt(lines=[{**DRESS, "category": "a\u0000"}]),
     "lines[0].category"),
    ("POST", "/v1/admin/webhooks", ADMIN,
     {"url": "http://127.0.0.1:9/x", "events": ["accrual"], "secret": "s" * 15 + "\u0000"},
     "secret"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "headers", "payload", "field"), REPROS)
async def test_each_repro_is_a_4xx_naming_its_field(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    headers: dict[str, str],
    payload: Any,
    field: str,
) -> None:
    if method == "GET":
        response = await client.get(path, params=payload, headers=headers)
    else:
        response = await client.post(path, json=payload, headers=headers)
    assert response.status_code == 422, response.text
    named = {f["field"].split(".")[0] for f in response.json()["fields"]}
    assert field.split(".")[0] in named, response.text


async def test_content_type_and_encoding_are_checked_after_the_key(
    client: httpx.AsyncClient,
) -> None:
    text = {"Content-Type": "text/plain"}
    body = b'{"store_id": "msk-001"}'
    for path, key in (("/v1/calculate", POS), ("/v1/refund", POS), ("/v1/admin/stores/x-1", ADMIN)):
        method = client.put if path.startswith("/v1/admin") else client.post
        unknown = await method(path, content=body, headers={**text, "Authorization": "Bearer x"})
        assert unknown.status_code == 401, (path, unknown.text)
        typed = await method(path, content=body, headers={**text, **key})
        assert typed.status_code == 415 and typed.json()["error"] == "unsupported_media_type"
        latin = await method(
            path, content=b'{"x": "\xff"}', headers={"Content-Type": "application/json", **key}
        )
        assert latin.status_code == 422 and latin.json()["fields"][0]["field"] == "body"
    pos_on_admin = await client.put("/v1/admin/stores/x-1", content=body, headers={**text, **POS})
    assert pos_on_admin.status_code == 403


async def test_a_webhook_may_not_target_a_private_address(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app.state.services.settings, "webhook_allow_private", False)
    targets = ["http://127.0.0.1:8080/x", "http://169.254.169.254/latest", "http://10.1.2.3/",
               "http://[::1]/x", "http://localhost/x", "http://[::ffff:192.168.0.1]/"]  # fmt: skip
    for url in targets:
        body = {"url": url, "events": ["accrual"]}
        refused = await client.post("/v1/admin/webhooks", json=body, headers=ADMIN)
        assert refused.status_code == 422, (url, refused.text)
        assert refused.json()["fields"][0]["field"] == "url"


async def test_a_request_id_is_echoed_only_when_it_is_a_safe_token(
    client: httpx.AsyncClient,
) -> None:
    kept = await client.get("/healthz", headers={"X-Request-ID": "pos-07.req:42"})
    assert kept.headers["x-request-id"] == "pos-07.req:42"
    for unsafe in ("a" * 65, "abc def", "x<script>", "\u00e9t\u00e9"):
        replaced = await client.get("/healthz", headers={"X-Request-ID": unsafe.encode()})
        assert replaced.headers["x-request-id"] not in (unsafe, ""), unsafe


async def test_a_commit_asking_more_points_than_allowed_writes_nothing(
    client: httpx.AsyncClient,
) -> None:
    """A till that trusted its own figure must not collect too little cash: 422 with the
    most the receipt allows, whether the commit recalculates or uses the calculation."""
    card = await new_card(client, points=1_000_000)
    asked = receipt(card=card, lines=[DRESS], redeem_points=999_999)
    shown = await client.post("/v1/calculate", json=asked, headers=POS)
    assert shown.status_code == 200, shown.text
    most = shown.json()["totals"]["points_redeemable_max"]
    assert 0 < most < 999_999 and shown.json()["totals"]["points_redeemed"] == most
    for pinned in ({}, {"calculation_id": shown.json()["calculation_id"]}):
        sale = {**asked, "redeem_points": most + 1, "transaction_id": _tx(), **pinned}
        refused = await _commit(client, sale)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"] == "redeem_over_limit"
        assert refused.json()["points_redeemable_max"] == most
        fitting = await _commit(client, {**sale, "redeem_points": most})  # not recorded before
        assert fitting.status_code == 200, fitting.text
        assert fitting.json()["totals"]["points_redeemed"] == most
    card_now = await client.get(f"/v1/cards/{card}", headers=POS)
    assert card_now.json()["balance"] == 1_000_000 - 2 * most  # only the two that fit
    taken = await _commit(client, {**asked, "redeem_points": "max", "transaction_id": _tx()})
    assert taken.status_code == 200 and taken.json()["totals"]["points_redeemed"] > 0
