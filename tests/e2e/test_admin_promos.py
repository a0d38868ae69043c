"""Back office through HTTP: promo code batches, their status at the till, revocation."""

from __future__ import annotations

import csv
import io

import httpx

from tests.conftest import ADMIN, POS
from tests.e2e.admin_helpers import fields, new_card
from tests.e2e.test_pos_api import receipt

PROMOS = "/v1/admin/promo-codes"


def _dress_sale(card: str, code: str, **extra: object) -> dict[str, object]:
    return receipt(card=card, promo_codes=[code], **extra)


async def test_a_batch_of_single_use_codes(client: httpx.AsyncClient) -> None:
    body = {"count": 25, "prefix": "T-", "length": 6, "rule_ids": ["autumn10"],
            "per_card_limit": 1}  # fmt: skip
    created = await client.post(f"{PROMOS}/batches", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    batch = created.json()
    codes = batch["codes"]
    assert len(set(codes)) == 25 and all(c.startswith("T-") and len(c) == 8 for c in codes)
    assert batch["max_uses"] == 1 and batch["uses"] == 0

    card = await new_card(client)
    shown = await client.post("/v1/calculate", json=_dress_sale(card, codes[0]), headers=POS)
    assert shown.json()["promo_codes"] == [{"code": codes[0], "status": "accepted", "reason": None}]
    sale = _dress_sale(card, codes[0], transaction_id=f"P-{codes[0]}")
    assert (await client.post("/v1/commit", json=sale, headers=POS)).status_code == 200
    used = (await client.get(f"{PROMOS}/{codes[0].lower()}", headers=ADMIN)).json()
    assert used["state"] == "used_up" and used["uses"] == 1 and used["batch_id"]
    assert (await client.get(f"{PROMOS}/batches/{batch['batch_id']}", headers=ADMIN)).json()[
        "uses"
    ] == 1

    revoked = await client.post(f"{PROMOS}/{codes[1]}/revoke", headers=ADMIN)
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    refused = await client.post("/v1/calculate", json=_dress_sale(card, codes[1]), headers=POS)
    assert refused.json()["promo_codes"][0]["status"] == "rejected"

    export = await client.get(f"{PROMOS}/batches/{batch['batch_id']}/codes.csv", headers=ADMIN)
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert sorted(r["code"] for r in rows) == sorted(codes)

    whole = await client.post(f"{PROMOS}/batches/{batch['batch_id']}/revoke", headers=ADMIN)
    assert whole.status_code == 200
    last = (await client.get(f"{PROMOS}/{codes[-1]}", headers=ADMIN)).json()
    assert last["state"] == "revoked"


async def test_multi_use_codes_with_dates(client: httpx.AsyncClient) -> None:
    body = {"count": 3, "prefix": "MU", "rule_ids": ["autumn10"], "single_use": False,
            "max_uses": 100, "valid_from": "2030-01-01T00:00:00Z"}  # fmt: skip
    created = await client.post(f"{PROMOS}/batches", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    code = created.json()["codes"][0]
    status = (await client.get(f"{PROMOS}/{code}", headers=ADMIN)).json()
    assert status["state"] == "not_yet_valid" and status["max_uses"] == 100


async def test_bad_batches_name_the_field(client: httpx.AsyncClient) -> None:
    cases = [
        ({"count": 1, "rule_ids": ["no-such-rule"]}, "rule_ids[0]"),
        ({"count": 1, "rule_ids": ["birthday"]}, "rule_ids[0]"),
        ({"count": 0, "rule_ids": ["autumn10"]}, "count"),
        ({"count": 1, "rule_ids": ["autumn10"], "max_uses": 5}, "max_uses"),
        ({"count": 1, "rule_ids": ["autumn10"], "prefix": "a b"}, "prefix"),
        ({"count": 1, "rule_ids": []}, "rule_ids"),
        ({"count": 1, "rule_ids": ["autumn10"], "valid_from": "2026-12-01T00:00:00Z",
          "valid_to": "2026-11-01T00:00:00Z"}, "valid_to"),
    ]  # fmt: skip
    for body, field in cases:
        response = await client.post(f"{PROMOS}/batches", json=body, headers=ADMIN)
        assert response.status_code == 422, (body, response.text)
        assert fields(response) == {field}, response.text
    declared = await client.post(f"{PROMOS}/AUTUMN10/revoke", headers=ADMIN)
    assert declared.status_code == 409 and declared.json()["error"] == "promo_code_declared"
    assert (await client.get(f"{PROMOS}/NOPE-NOPE", headers=ADMIN)).status_code == 404
    assert (await client.get(f"{PROMOS}/batches/b_0000", headers=ADMIN)).status_code == 404
    assert (await client.get(f"{PROMOS}/batches/zzz", headers=ADMIN)).status_code == 422


async def test_batches_listed_newest_first_page_by_page(client: httpx.AsyncClient) -> None:
    made = []
    for prefix in ("LA", "LB", "LC"):
        body = {"count": 2, "prefix": prefix, "rule_ids": ["autumn10"]}
        created = await client.post(f"{PROMOS}/batches", json=body, headers=ADMIN)
        assert created.status_code == 201, created.text
        made.append(created.json()["batch_id"])
    first = await client.get(f"{PROMOS}/batches", params={"limit": 2}, headers=ADMIN)
    assert first.status_code == 200, first.text
    page = first.json()
    assert [b["batch_id"] for b in page["batches"]] == made[::-1][:2]  # the newest first
    assert page["batches"][0]["count"] == 2 and page["batches"][0]["uses"] == 0
    cursor = page["next_cursor"]
    assert cursor == page["batches"][-1]["number"]
    second = await client.get(
        f"{PROMOS}/batches", params={"limit": 2, "before": cursor}, headers=ADMIN
    )
    assert second.json()["batches"][0]["batch_id"] == made[0]
    assert (await client.get(f"{PROMOS}/batches", headers=POS)).status_code == 403
