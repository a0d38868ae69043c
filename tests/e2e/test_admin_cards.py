"""Back office through HTTP: stores and regions, customers, cards, adjustments, CSV import."""

from __future__ import annotations

import asyncio
import io
import os
from datetime import datetime
from pathlib import Path

import httpx
import openpyxl

from service.storage.postgres.pool import connect
from tests.conftest import ADMIN, POS
from tests.e2e.admin_helpers import card_number, card_range, fields, new_card, new_customer, phone
from tests.e2e.test_pos_api import receipt

ADMIN_API = "/v1/admin"


async def test_regions_and_stores(client: httpx.AsyncClient) -> None:
    region = f"volga-{os.urandom(3).hex()}"
    put = await client.put(f"{ADMIN_API}/regions/{region}", json={"name": "Volga"}, headers=ADMIN)
    assert put.status_code == 200, put.text
    store_id = f"kzn-{os.urandom(3).hex()}"
    body = {"name": "Style Kazan", "region": region, "timezone": "Europe/Moscow"}
    store = await client.put(f"{ADMIN_API}/stores/{store_id}", json=body, headers=ADMIN)
    assert store.status_code == 200, store.text
    assert store.json()["region"] == region and store.json()["active"] is True
    regions = (await client.get(f"{ADMIN_API}/regions", headers=ADMIN)).json()["regions"]
    assert {"region_id": region, "name": "Volga", "stores": [store_id]} in regions
    assert {r["region_id"] for r in regions} >= {"moscow", "urals", "online"}
    # This worker sells in the new store at once (an admin key acts for every store).
    sale = await client.post("/v1/calculate", json=receipt(store_id=store_id), headers=ADMIN)
    assert sale.status_code == 200, sale.text

    bad_tz = await client.put(
        f"{ADMIN_API}/stores/{store_id}", json={**body, "timezone": "Mars/Olympus"}, headers=ADMIN
    )
    assert bad_tz.status_code == 422 and fields(bad_tz) == {"timezone"}
    no_region = await client.put(
        f"{ADMIN_API}/stores/{store_id}", json={**body, "region": "atlantis"}, headers=ADMIN
    )
    assert no_region.status_code == 422 and fields(no_region) == {"region"}
    bad_id = await client.put(f"{ADMIN_API}/stores/bad id!", json=body, headers=ADMIN)
    assert bad_id.status_code == 422 and fields(bad_id) == {"store_id"}
    assert (await client.get(f"{ADMIN_API}/stores/nowhere", headers=ADMIN)).status_code == 404
    listed = (await client.get(f"{ADMIN_API}/stores", headers=ADMIN)).json()["stores"]
    assert store_id in {s["store_id"] for s in listed}


async def test_customers_create_find_update(client: httpx.AsyncClient) -> None:
    number = phone()
    customer = await new_customer(
        client, phone=number, email="Mix.Case@Example.com", birthday="1990-03-15", segments=["vip"]
    )
    assert customer["email"] == "mix.case@example.com" and customer["cards"] == []
    cid = customer["customer_id"]
    found = await client.get(f"{ADMIN_API}/customers", params={"phone": number}, headers=ADMIN)
    assert [c["customer_id"] for c in found.json()["customers"]] == [cid]
    by_email = await client.get(
        f"{ADMIN_API}/customers", params={"email": "mix.case@example.com"}, headers=ADMIN
    )
    assert cid in [c["customer_id"] for c in by_email.json()["customers"]]

    taken = await client.post(f"{ADMIN_API}/customers", json={"phone": number}, headers=ADMIN)
    assert taken.status_code == 409 and fields(taken) == {"phone"}
    bad = await client.post(
        f"{ADMIN_API}/customers", json={"phone": "8-900", "email": "nope"}, headers=ADMIN
    )
    assert bad.status_code == 422 and fields(bad) == {"phone", "email"}
    unknown = await client.post(f"{ADMIN_API}/customers", json={"nickname": "x"}, headers=ADMIN)
    assert unknown.status_code == 422 and fields(unknown) == {"nickname"}

    patched = await client.patch(
        f"{ADMIN_API}/customers/{cid}",
        json={"name": "Anna P.", "segments": ["vip", "kids"]},
        headers=ADMIN,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "Anna P." and patched.json()["phone"] == number
    assert patched.json()["segments"] == ["vip", "kids"]
    null_list = await client.patch(
        f"{ADMIN_API}/customers/{cid}", json={"segments": None}, headers=ADMIN
    )
    assert null_list.status_code == 422 and fields(null_list) == {"segments"}
    missing = await client.get(f"{ADMIN_API}/customers/999999999", headers=ADMIN)
    assert missing.status_code == 404
    no_query = await client.get(f"{ADMIN_API}/customers", headers=ADMIN)
    assert no_query.status_code == 422


async def test_erasure_keeps_the_card_and_its_ledger(client: httpx.AsyncClient) -> None:
    number = phone()
    customer = await new_customer(client, phone=number, birthday="1985-01-02")
    card = await new_card(client, points=700, customer_id=customer["customer_id"])
    erased = await client.post(
        f"{ADMIN_API}/customers/{customer['customer_id']}/erase", headers=ADMIN
    )
    assert erased.status_code == 200, erased.text
    body = erased.json()
    assert body["erased_at"] is not None and body["cards"] == [card]
    assert body["name"] is None and body["phone"] is None and body["birthday"] is None
    state = (await client.get(f"/v1/cards/{card}", headers=POS)).json()
    assert state["balance"] == 900  # 200 welcome + 700 credited, still there
    by_phone = await client.get("/v1/cards", params={"phone": number}, headers=POS)
    assert by_phone.json()["cards"] == []
    again = await client.patch(
        f"{ADMIN_API}/customers/{customer['customer_id']}", json={"name": "x"}, headers=ADMIN
    )
    assert again.status_code == 409 and again.json()["error"] == "customer_erased"
    audit = await client.get(
        f"{ADMIN_API}/audit",
        params={"subject": f"customer:{customer['customer_id']}"},
        headers=ADMIN,
    )
    assert number not in audit.text


async def test_issue_with_welcome_points_block_and_unblock(client: httpx.AsyncClient) -> None:
    customer = await new_customer(client)
    number = card_number()
    issued = await client.post(
        f"{ADMIN_API}/cards",
        json={
            "number": number,
            "customer_id": customer["customer_id"],
            "referred_by": "2000000000015",
        },
        headers=ADMIN,
    )
    assert issued.status_code == 201, issued.text
    assert issued.json()["balance"] == 200 and issued.json()["referred_by"] == "2000000000015"
    assert (await client.get(f"/v1/cards/{number}", headers=POS)).json()["status"] == "active"

    twice = await client.post(f"{ADMIN_API}/cards", json={"number": number}, headers=ADMIN)
    assert twice.status_code == 409 and twice.json()["error"] == "card_exists"
    no_referrer = await client.post(
        f"{ADMIN_API}/cards",
        json={"number": card_number(), "referred_by": "2999999999999"},
        headers=ADMIN,
    )
    assert no_referrer.status_code == 404
    bad = await client.post(
        f"{ADMIN_API}/cards", json={"number": "12ab", "kind": "plastic"}, headers=ADMIN
    )
    assert bad.status_code == 422 and fields(bad) == {"number", "kind"}

    reason = {"reason": "reported stolen"}
    blocked = await client.post(f"{ADMIN_API}/cards/{number}/block", json=reason, headers=ADMIN)
    assert blocked.status_code == 200 and blocked.json()["status"] == "blocked"
    # The till sees the new status at once: the cached state was refreshed.
    assert (await client.get(f"/v1/cards/{number}", headers=POS)).json()["status"] == "blocked"
    spend = await client.post("/v1/calculate", json=receipt(card=number), headers=POS)
    assert spend.json()["totals"]["points_earned"] == 0  # blocked cards neither earn nor spend
    assert spend.json()["totals"]["points_redeemable_max"] == 0
    no_reason = await client.post(f"{ADMIN_API}/cards/{number}/unblock", json={}, headers=ADMIN)
    assert no_reason.status_code == 422 and fields(no_reason) == {"reason"}
    active = await client.post(f"{ADMIN_API}/cards/{number}/unblock", json=reason, headers=ADMIN)
    assert active.json()["status"] == "active"
    assert (await client.get(f"/v1/cards/{number}", headers=POS)).json()["status"] == "active"
    unknown = await client.post(
        f"{ADMIN_API}/cards/2999999999998/block", json=reason, headers=ADMIN
    )
    assert unknown.status_code == 404


async def test_a_range_then_registration_grants_welcome_points_once(
    client: httpx.AsyncClient,
) -> None:
    first, last = card_range(50)
    body = {"first": first, "last": last}
    issued = await client.post(f"{ADMIN_API}/cards/ranges", json=body, headers=ADMIN)
    assert issued.status_code == 201 and issued.json() == {"requested": 50, "issued": 50}
    again = await client.post(f"{ADMIN_API}/cards/ranges", json=body, headers=ADMIN)
    assert again.json() == {"requested": 50, "issued": 0}
    stock = (await client.get(f"{ADMIN_API}/cards/{last}", headers=ADMIN)).json()
    assert stock["status"] == "inactive" and stock["customer_id"] is None

    too_many = {"first": first, "last": str(int(first) + 100_000)}
    refused = await client.post(f"{ADMIN_API}/cards/ranges", json=too_many, headers=ADMIN)
    assert refused.status_code == 422 and fields(refused) == {"last"}
    backwards = await client.post(
        f"{ADMIN_API}/cards/ranges", json={"first": last, "last": first}, headers=ADMIN
    )
    assert backwards.status_code == 422

    customer = await new_customer(client)
    link = {"customer_id": customer["customer_id"]}
    linked = await client.post(f"{ADMIN_API}/cards/{first}/link", json=link, headers=ADMIN)
    assert linked.status_code == 200, linked.text
    assert linked.json()["customer_id"] == customer["customer_id"]
    assert linked.json()["balance"] == 200
    relinked = await client.post(f"{ADMIN_API}/cards/{first}/link", json=link, headers=ADMIN)
    assert relinked.json()["balance"] == 200  # welcome points once per card
    other = await new_customer(client)
    stolen = await client.post(
        f"{ADMIN_API}/cards/{first}/link",
        json={"customer_id": other["customer_id"]},
        headers=ADMIN,
    )
    assert stolen.status_code == 409 and stolen.json()["error"] == "card_linked"
    nobody = await client.post(
        f"{ADMIN_API}/cards/{last}/link", json={"customer_id": 999999999}, headers=ADMIN
    )
    assert nobody.status_code == 404


async def test_adjustments_credit_and_debit(client: httpx.AsyncClient) -> None:
    number = await new_card(client, points=1000)
    debit = await client.post(
        f"{ADMIN_API}/cards/{number}/adjustments",
        json={"points": -300, "reason": "fraud"},
        headers=ADMIN,
    )
    assert debit.status_code == 201 and debit.json()["balance"] == 700
    assert (await client.get(f"/v1/cards/{number}", headers=POS)).json()["balance"] == 700
    too_much = await client.post(
        f"{ADMIN_API}/cards/{number}/adjustments",
        json={"points": -701, "reason": "x"},
        headers=ADMIN,
    )
    assert too_much.status_code == 409 and too_much.json()["balance"] == 700
    for bad, field in (
        ({"points": 0, "reason": "x"}, "points"),
        ({"points": 5}, "reason"),
        ({"points": "many", "reason": "x"}, "points"),
    ):
        refused = await client.post(
            f"{ADMIN_API}/cards/{number}/adjustments", json=bad, headers=ADMIN
        )
        assert refused.status_code == 422 and fields(refused) == {field}, refused.text
    listed = (await client.get(f"{ADMIN_API}/cards/{number}/adjustments", headers=ADMIN)).json()
    assert [(a["points"], a["reason"]) for a in listed["adjustments"]] == [
        (-300, "fraud"),
        (1000, "test balance"),
    ]
    assert listed["adjustments"][0]["author"].startswith("demo admin (")
    history = (await client.get(f"/v1/cards/{number}/history", headers=POS)).json()["entries"]
    assert {e["transaction_id"] for e in history} == {
        f"adj:{a['adjustment_id']}" for a in listed["adjustments"]
    }


async def test_replacing_a_lost_card_keeps_balance_expiry_and_tier(
    client: httpx.AsyncClient, demo_database: str
) -> None:
    customer = await new_customer(client)
    old = await new_card(client, points=1000, customer_id=customer["customer_id"])
    conn = await connect(demo_database)
    try:
        await conn.execute(
            "INSERT INTO tier_spend (card_id, amount, occurred_at)"
            " SELECT card_id, 1500000, now() - interval '5 days' FROM cards WHERE number = $1",
            old,
        )
        await conn.execute(
            "UPDATE cards SET tier = 'silver', ledger_version = ledger_version + 1"
            " WHERE number = $1",
            old,
        )
    finally:
        await conn.close()
    await client.post(  # the direct writes above bypassed the cache: refresh it
        f"{ADMIN_API}/cards/{old}/unblock", json={"reason": "refresh"}, headers=ADMIN
    )
    before = (await client.get(f"/v1/cards/{old}", headers=POS)).json()
    assert before["tier"] == "silver" and before["next_tier"]["tier"] == "gold"
    new = card_number()
    replaced = await client.post(
        f"{ADMIN_API}/cards/{old}/replace", json={"new_number": new}, headers=ADMIN
    )
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert body["number"] == new and body["balance"] == 1200 and body["tier"] == "silver"
    assert body["customer_id"] == customer["customer_id"]
    after = (await client.get(f"/v1/cards/{new}", headers=POS)).json()
    assert after["expiring"] == before["expiring"] and after["tier"] == "silver"
    assert after["next_tier"] == before["next_tier"]
    lost = (await client.get(f"{ADMIN_API}/cards/{old}", headers=ADMIN)).json()
    assert lost["status"] == "blocked" and lost["balance"] == 0 and lost["replaced_by"] == new
    assert (await client.get(f"/v1/cards/{old}", headers=POS)).json()["status"] == "blocked"

    unblock = await client.post(
        f"{ADMIN_API}/cards/{old}/unblock", json={"reason": "found"}, headers=ADMIN
    )
    assert unblock.status_code == 409
    twice = await client.post(
        f"{ADMIN_API}/cards/{old}/replace", json={"new_number": card_number()}, headers=ADMIN
    )
    assert twice.status_code == 409 and twice.json()["error"] == "card_replaced"
    in_use = await client.post(
        f"{ADMIN_API}/cards/{await new_card(client, 5)}/replace",
        json={"new_number": new},
        headers=ADMIN,
    )
    assert in_use.status_code == 409 and fields(in_use) == {"new_number"}


ONE_C = Path(__file__).parents[1] / "data" / "1c_customers.csv"  # Windows-1251, ";", CRLF
ONE_C_COLUMNS = "Наименование=name;Телефон=phone;Дата рождения=birthday;Карта=card"


async def test_a_1c_export_imports_with_its_own_columns_after_a_dry_run(
    client: httpx.AsyncClient,
) -> None:
    upload = {"content": ONE_C.read_bytes(), "headers": {**ADMIN, "Content-Type": "text/csv"}}
    params = {"columns": ONE_C_COLUMNS}
    path = f"{ADMIN_API}/import/customers"
    preview = await client.post(path, params={**params, "dry_run": "true"}, **upload)
    assert preview.status_code == 200, preview.text
    report = preview.json()
    assert report["dry_run"] is True and report["imported"] == 3
    assert [r["line"] for r in report["rejected"]] == [4]  # Сидоров: a phone of 12-34
    assert report["rejected"][0]["reason"].startswith("phone:")
    nothing = await client.get(f"{ADMIN_API}/customers", params={"phone": "+79551002031"},
                               headers=ADMIN)  # fmt: skip
    assert nothing.json()["customers"] == []  # the dry run wrote nothing

    done = (await client.post(path, params=params, **upload)).json()
    assert (done["imported"], done["unchanged"], done["dry_run"]) == (3, 0, False)
    found = await client.get(f"{ADMIN_API}/customers", params={"phone": "8 955 100-20-31"},
                             headers=ADMIN)  # fmt: skip
    anna = found.json()["customers"][0]
    assert anna["name"] == "Петрова Анна Сергеевна" and anna["birthday"] == "1985-05-05"
    assert anna["attributes"] == {"Размер одежды": "M", "Клуб": "Бегуны"}
    assert anna["cards"] == ["2901000000015"]
    again = (await client.post(path, params=params, **upload)).json()  # the same file again
    assert (again["imported"], again["unchanged"]) == (0, 3)
    assert [r["line"] for r in again["rejected"]] == [4]


async def test_a_long_import_runs_in_the_background_with_its_progress(
    client: httpx.AsyncClient,
) -> None:
    numbers = [phone() for _ in range(5_000)]
    rows = "".join(f"Клиент {i};{n};05.05.1985;XL\n" for i, n in enumerate(numbers))
    body = ("Имя;Телефон;Дата рождения;Размер\n" + rows).encode("cp1251")
    started = await client.post(
        f"{ADMIN_API}/import/customers",
        params={"background": "true", "columns": "Имя=name;Телефон=phone;Дата рождения=birthday"},
        content=body,
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["status"] == "running" and job["total"] == 5_000
    seen = []
    for _ in range(600):
        state = (await client.get(f"{ADMIN_API}/import/jobs/{job['job_id']}", headers=ADMIN)).json()
        seen.append(state["done"])
        if state["status"] != "running":
            break
        await asyncio.sleep(0.05)
    assert state["status"] == "done", state
    assert (state["imported"], state["unchanged"], state["rejected"]) == (5_000, 0, [])
    assert seen == sorted(seen) and state["done"] == 5_000 and not state["stalled"]
    found = await client.get(f"{ADMIN_API}/customers", params={"phone": numbers[-1]}, headers=ADMIN)
    assert found.json()["customers"][0]["attributes"] == {"Размер": "XL"}
    missing = await client.get(f"{ADMIN_API}/import/jobs/999999999", headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["error"] == "import_job_not_found"


async def test_an_xlsx_workbook_imports_as_its_csv_would(client: httpx.AsyncClient) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    p1, p2 = phone(), phone()
    sheet.append(["name", "phone", "birthday", "size"])
    sheet.append(["Xlsx One", p1, datetime(1988, 2, 29), "S"])
    sheet.append(["Xlsx Two", int(p2.removeprefix("+")), "07.11.1991", None])
    buffer = io.BytesIO()
    book.save(buffer)
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    response = await client.post(
        f"{ADMIN_API}/import/customers",
        content=buffer.getvalue(),
        headers={**ADMIN, "Content-Type": xlsx},
    )
    assert response.status_code == 200, response.text
    assert response.json()["imported"] == 2 and response.json()["rejected"] == []
    two = (await client.get(f"{ADMIN_API}/customers", params={"phone": p2}, headers=ADMIN)).json()
    assert two["customers"][0]["birthday"] == "1991-11-07"


async def test_csv_import_reports_rejected_rows_by_line(client: httpx.AsyncClient) -> None:
    taken = (await new_customer(client))["phone"]
    card, p1, p2 = card_number(), phone(), phone()
    csv_text = (
        "name,phone,email,birthday,segments,card\n"
        f"Good One,{p1},,1990-03-15,vip;kids,{card}\n"
        f"Bad Phone,8-900-000,,,,\n"
        f"Taken,{taken},,,,\n"
        f'"Quoted, Name",{p2},q@example.com,not-a-date,,\n'
        f"No Card,{phone()},,,,\n"
    )
    response = await client.post(
        f"{ADMIN_API}/import/customers",
        content=csv_text.encode(),
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["imported"] == 2
    assert [r["line"] for r in report["rejected"]] == [3, 4, 5]
    reasons = [r["reason"] for r in report["rejected"]]
    assert reasons[0].startswith("phone:") and reasons[1] == "phone: already taken"
    assert reasons[2].startswith("birthday:")
    found = await client.get(f"{ADMIN_API}/customers", params={"phone": p1}, headers=ADMIN)
    imported = found.json()["customers"][0]
    assert imported["cards"] == [card] and imported["segments"] == ["vip", "kids"]
    assert (await client.get(f"/v1/cards/{card}", headers=POS)).json()["balance"] == 200

    cards_csv = f"number,kind,phone\n{card_number()},virtual,{p1}\n{card},physical,\n12,x,\n"
    cards = await client.post(
        f"{ADMIN_API}/import/cards",
        content=cards_csv,
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert cards.json()["imported"] == 1
    assert [r["line"] for r in cards.json()["rejected"]] == [3, 4]

    no_header = await client.post(
        f"{ADMIN_API}/import/cards", content="kind\nphysical\n", headers=ADMIN
    )
    assert no_header.status_code == 422 and fields(no_header) == {"body"}
    binary = await client.post(f"{ADMIN_API}/import/cards", content=b"\xff\xfe\x00", headers=ADMIN)
    assert binary.status_code == 422 and fields(binary) == {"body"}


async def test_input_postgres_cannot_store_is_422_not_500(client: httpx.AsyncClient) -> None:
    cases = [
        ("POST", f"{ADMIN_API}/customers", {"name": "a\u0000b"}, None, "name"),
        ("POST", f"{ADMIN_API}/customers", {"attributes": {"k": "\u0000"}}, None, "attributes"),
        ("POST", f"{ADMIN_API}/programs", {"document": {"name": "\u0000"}}, None, "document"),
        ("GET", f"{ADMIN_API}/programs", None, {"before": 99999999999}, "before"),
        ("GET", f"{ADMIN_API}/audit", None, {"subject": "x\u0000"}, "subject"),
        ("GET", f"{ADMIN_API}/reports/promotions", None, {"cursor": "\u0000"}, "cursor"),
    ]
    for method, path, body, params, field in cases:
        response = await client.request(method, path, json=body, params=params, headers=ADMIN)
        assert response.status_code == 422, (path, response.text)
        assert fields(response) == {field}, response.text


async def test_a_personal_discount_is_set_by_hand_and_by_import(client: httpx.AsyncClient) -> None:
    number = await new_card(client)
    set_it = await client.post(
        f"{ADMIN_API}/cards/{number}/personal-discount",
        json={"percent": "7.5", "reason": "a loyal customer"},
        headers=ADMIN,
    )
    assert set_it.status_code == 200, set_it.text
    assert set_it.json()["personal_discount_bp"] == 750
    bad = await client.post(
        f"{ADMIN_API}/cards/{number}/personal-discount",
        json={"percent": "120", "reason": "too much"},
        headers=ADMIN,
    )
    assert bad.status_code == 422 and fields(bad) == {"percent"}

    cards_csv = f"number,kind,status,personal_discount\n{number},physical,active,10\n"
    imported = await client.post(
        f"{ADMIN_API}/import/cards",
        content=cards_csv,
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert imported.status_code == 200, imported.text
    assert imported.json()["imported"] == 1 and imported.json()["rejected"] == []
    card = await client.get(f"{ADMIN_API}/cards/{number}", headers=ADMIN)
    assert card.json()["personal_discount_bp"] == 1000
    again = await client.post(
        f"{ADMIN_API}/import/cards",
        content=cards_csv,
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert again.json()["unchanged"] == 1  # the same file again changes nothing

    # Its history: who changed it, from what, to what, and why.
    audit = await client.get(f"{ADMIN_API}/audit", params={"limit": 100}, headers=ADMIN)
    changes = [
        entry["details"] for entry in audit.json()["entries"]
        if entry["action"] == "card.personal_discount"
    ]  # fmt: skip
    assert {"from_bp": 0, "to_bp": 750, "reason": "a loyal customer"} in changes
    assert {"from_bp": 750, "to_bp": 1000, "reason": "import"} in changes
