"""Wallets (SPEC §4 item 34, issue 23): a gift certificate is sold, pays part of two
receipts, is partly refunded and expires, with the ledger balanced at each step;
concurrent spends never overdraw it; calculations hold its money as they hold points;
e-wallets are topped up once per till transaction; blocked and replaced wallets; the
program decides whether wallet money earns points.

A database of its own per test (the demo program), wallets of its own.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from service.storage.postgres.invariants import broken_invariants
from service.storage.postgres.pool import connect
from service.storage.postgres.wallets import expire_wallets
from tests.clock import FRIDAY_NOON, demo_program_now
from tests.conftest import ADMIN, POS
from tests.integration.conftest import OwnProgram, own_program

CARD = "2000000000022"  # a demo card


@pytest.fixture
async def served(server_url: str, redis_url: str) -> AsyncIterator[OwnProgram]:
    document = demo_program_now()
    document["points"] = {**document["points"], "hold_seconds": 60}
    async with own_program(server_url, redis_url, document) as own:
        yield own


def _sale(prices: list[int], wallet: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "store_id": "msk-001", "timestamp": FRIDAY_NOON,
        "lines": [{"line_id": str(i + 1), "sku": f"J-{i}", "category": "jeans", "quantity": "1",
                   "unit_price": price} for i, price in enumerate(prices)],
        **extra,
    }  # fmt: skip
    if wallet is not None:
        body["wallet"] = wallet
    return body


async def _certificate(client: httpx.AsyncClient, nominal: int, sell: bool = True) -> str:
    issued = await client.post(
        "/v1/admin/wallets", json={"kind": "certificate", "nominal": nominal}, headers=ADMIN
    )
    assert issued.status_code == 201, issued.text
    number = str(issued.json()["number"])
    assert issued.json()["status"] == "issued"
    if sell:
        sold = await client.post(
            f"/v1/wallets/{number}/sell",
            json={"store_id": "msk-001", "transaction_id": f"SELL-{number}"},
            headers=POS,
        )
        assert sold.status_code == 200, sold.text
        assert sold.json()["status"] == "active" and sold.json()["balance"] == nominal
    return number


async def _balanced(url: str) -> None:
    """Every invariant of the ledger holds, the wallets' among them."""
    conn = await connect(url)
    try:
        assert await broken_invariants(conn) == {}
    finally:
        await conn.close()


async def _balance(client: httpx.AsyncClient, number: str) -> int:
    answer = await client.get(f"/v1/wallets/{number}", headers=POS)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["balance"])


async def test_a_certificate_sold_pays_two_receipts_is_refunded_and_expires(
    served: OwnProgram,
) -> None:
    client, url, _ = served
    number = await _certificate(client, 300_000)
    await _balanced(url)

    # The first receipt: 80,000 of its 100,000 from the certificate.
    shown = await client.post(
        "/v1/calculate", json=_sale([100_000], {"number": number, "amount": 80_000}), headers=POS
    )
    assert shown.status_code == 200, shown.text
    view = shown.json()
    assert [line["wallet_paid"] for line in view["lines"]] == [80_000]
    assert view["totals"]["wallet_paid"] == 80_000
    assert view["totals"]["left_to_pay"] == view["totals"]["amount_due"] - 80_000
    assert view["wallet"] == {
        "number": number, "paid": 80_000, "balance": 300_000, "balance_after": 220_000
    }  # fmt: skip
    first = _sale([100_000], {"number": number, "amount": 80_000}, transaction_id="W-1",
                  calculation_id=view["calculation_id"])  # fmt: skip
    committed = await client.post("/v1/commit", json=first, headers=POS)
    assert committed.status_code == 200, committed.text
    assert committed.json()["wallet"]["paid"] == 80_000
    again = await client.post("/v1/commit", json=first, headers=POS)  # a replay moves nothing
    assert again.json() == committed.json()
    assert await _balance(client, number) == 220_000
    await _balanced(url)

    # The second: two lines, the rest of the certificate, split over them exactly.
    second = _sale([150_000, 149_999], {"number": number, "amount": "max"}, transaction_id="W-2")
    committed = await client.post("/v1/commit", json=second, headers=POS)
    assert committed.status_code == 200, committed.text
    lines = committed.json()["lines"]
    paid = [line["wallet_paid"] for line in lines]
    assert sum(paid) == 220_000
    assert all(0 < part <= line["final_amount"] for part, line in zip(paid, lines, strict=True))
    assert await _balance(client, number) == 0
    await _balanced(url)

    # A return of the second receipt's first line: its wallet part back to the certificate.
    returned = await client.post(
        "/v1/refund",
        json={"store_id": "msk-001", "transaction_id": "W-2", "refund_id": "W-2-R1",
              "lines": [{"line_id": "1", "quantity": "1"}]},
        headers=POS,
    )  # fmt: skip
    assert returned.status_code == 200, returned.text
    totals = returned.json()["totals"]
    assert totals["wallet_returned"] == paid[0]
    assert totals["cash_refund"] == totals["amount"] - totals["withhold"] - paid[0]
    assert returned.json()["wallet"] == {"number": number, "status": "active"}
    assert await _balance(client, number) == paid[0]
    await _balanced(url)

    # Past its expiry the certificate pays nothing at once, and the job closes it.
    conn = await connect(url)
    try:
        expires_at = await conn.fetchval("SELECT expires_at FROM wallets WHERE number = $1", number)
        assert expires_at > datetime.now(UTC) + timedelta(days=300)  # the program's 365 days
        assert await expire_wallets(conn, expires_at + timedelta(seconds=1)) == 1
        row = await conn.fetchrow("SELECT status, balance FROM wallets WHERE number = $1", number)
        expiry = await conn.fetchval(
            "SELECT amount FROM wallet_entries WHERE number = $1 AND kind = 'expiry'", number
        )
    finally:
        await conn.close()
    assert (row["status"], row["balance"], expiry) == ("expired", 0, -paid[0])
    refused = await client.post(
        "/v1/calculate", json=_sale([10_000], {"number": number, "amount": 100}), headers=POS
    )
    assert refused.status_code == 409 and refused.json()["error"] == "wallet_not_active"
    await _balanced(url)

    history = await client.get(f"/v1/admin/wallets/{number}", headers=ADMIN)
    kinds = [entry["kind"] for entry in history.json()["entries"]]
    assert kinds == ["expiry", "refund", "payment", "payment", "sale"]


async def test_concurrent_spends_never_overdraw_a_wallet(served: OwnProgram) -> None:
    client, url, _ = served
    number = await _certificate(client, 100_000)

    async def spend(i: int) -> httpx.Response:
        body = _sale([50_000], {"number": number, "amount": 30_000}, transaction_id=f"C-{i}")
        return await client.post("/v1/commit", json=body, headers=POS)

    answers = await asyncio.gather(*(spend(i) for i in range(8)))
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [200] * 3 + [409] * 5, [a.text for a in answers]
    refusals = {a.json()["error"] for a in answers if a.status_code == 409}
    assert refusals == {"wallet_insufficient"}
    assert await _balance(client, number) == 10_000
    await _balanced(url)


async def test_a_calculation_holds_wallet_money_for_its_commit(served: OwnProgram) -> None:
    client, url, _ = served
    number = await _certificate(client, 100_000)
    held = await client.post(
        "/v1/calculate",
        json={**_sale([70_000], {"number": number, "amount": 60_000}), "hold": True},
        headers=POS,
    )
    assert held.status_code == 200, held.text
    assert held.json()["hold"]["money"] == 60_000

    # Another till sees only what is not held, and cannot take the held money.
    other = await client.post(
        "/v1/calculate", json=_sale([70_000], {"number": number, "amount": "max"}), headers=POS
    )
    assert other.json()["wallet"]["paid"] == 40_000
    grab = _sale([70_000], {"number": number, "amount": 50_000}, transaction_id="H-2")
    refused = await client.post("/v1/commit", json=grab, headers=POS)
    assert refused.status_code == 409 and refused.json()["error"] == "wallet_insufficient"

    # The holding till's commit takes exactly what it held.
    mine = _sale([70_000], {"number": number, "amount": 60_000}, transaction_id="H-1",
                 calculation_id=held.json()["calculation_id"])  # fmt: skip
    committed = await client.post("/v1/commit", json=mine, headers=POS)
    assert committed.status_code == 200, committed.text
    assert await _balance(client, number) == 40_000

    # A cancelled calculation frees what it held at once.
    again = await client.post(
        "/v1/calculate",
        json={**_sale([70_000], {"number": number, "amount": 40_000}), "hold": True},
        headers=POS,
    )
    calculation = again.json()["calculation_id"]
    freed = await client.delete(f"/v1/calculations/{calculation}", headers=POS)
    assert freed.status_code == 200 and freed.json()["money_released"] == 40_000
    after = await client.post(
        "/v1/calculate", json=_sale([70_000], {"number": number, "amount": "max"}), headers=POS
    )
    assert after.json()["wallet"]["paid"] == 40_000
    await _balanced(url)


async def test_an_e_wallet_is_topped_up_once_per_till_transaction(served: OwnProgram) -> None:
    client, url, _ = served
    issued = await client.post(
        "/v1/admin/wallets", json={"kind": "ewallet", "card": CARD}, headers=ADMIN
    )
    assert issued.status_code == 201, issued.text
    number = issued.json()["number"]
    assert (issued.json()["status"], issued.json()["card"]) == ("active", CARD)
    top_up = {"store_id": "msk-001", "transaction_id": "T-1", "amount": 50_000}
    first = await client.post(f"/v1/wallets/{number}/top-up", json=top_up, headers=POS)
    second = await client.post(f"/v1/wallets/{number}/top-up", json=top_up, headers=POS)
    assert (first.json()["replayed"], second.json()["replayed"]) == (False, True)
    assert await _balance(client, number) == 50_000
    other = await client.post(
        f"/v1/wallets/{number}/top-up", json={**top_up, "amount": 1}, headers=POS
    )
    assert other.status_code == 409 and other.json()["error"] == "idempotency_conflict"
    sold = await client.post(
        f"/v1/wallets/{number}/sell",
        json={"store_id": "msk-001", "transaction_id": "T-2"},
        headers=POS,
    )
    assert sold.status_code == 409 and sold.json()["error"] == "wallet_not_sellable"
    await _balanced(url)


async def test_blocked_and_replaced_wallets(served: OwnProgram) -> None:
    client, url, _ = served
    number = await _certificate(client, 50_000)
    paid = await client.post(
        "/v1/commit",
        json=_sale([30_000], {"number": number, "amount": 20_000}, transaction_id="B-1"),
        headers=POS,
    )
    assert paid.status_code == 200, paid.text

    blocked = await client.post(
        f"/v1/admin/wallets/{number}/block", json={"reason": "stolen"}, headers=ADMIN
    )
    assert blocked.json()["status"] == "blocked"
    refused = await client.post(
        "/v1/commit",
        json=_sale([30_000], {"number": number, "amount": 100}, transaction_id="B-2"),
        headers=POS,
    )
    assert refused.status_code == 409 and refused.json()["error"] == "wallet_not_active"

    replaced = await client.post(
        f"/v1/admin/wallets/{number}/replace", json={"reason": "lost"}, headers=ADMIN
    )
    assert replaced.status_code == 200, replaced.text
    new = replaced.json()["number"]
    assert (replaced.json()["status"], replaced.json()["balance"]) == ("active", 30_000)
    old = (await client.get(f"/v1/wallets/{number}", headers=POS)).json()
    assert (old["status"], old["balance"], old["replaced_by"]) == ("replaced", 0, new)

    # A return of a sale the old wallet paid gives the money to the one that replaced it.
    returned = await client.post(
        "/v1/cancel", json={"store_id": "msk-001", "transaction_id": "B-1"}, headers=POS
    )
    assert returned.status_code == 200, returned.text
    assert returned.json()["wallet"] == {"number": new, "status": "active"}
    assert await _balance(client, new) == 50_000
    await _balanced(url)


async def test_a_batch_prints_and_the_report_shows_the_liability(served: OwnProgram) -> None:
    client, url, _ = served
    batch = await client.post(
        "/v1/admin/wallets/batches", json={"count": 3, "nominal": 100_000}, headers=ADMIN
    )
    assert batch.status_code == 201, batch.text
    printed = await client.get(
        f"/v1/admin/wallets/batches/{batch.json()['batch']}/print", headers=ADMIN
    )
    rows = list(csv.DictReader(io.StringIO(printed.text)))
    assert rows[0]["number"] == batch.json()["first"]
    assert len(rows) == 3 and {row["nominal"] for row in rows} == {"100000"}
    assert all(len(row["number"]) == 13 for row in rows)  # EAN-13, as the cards

    for row in rows[:2]:
        sold = await client.post(
            f"/v1/wallets/{row['number']}/sell",
            json={"store_id": "msk-001", "transaction_id": f"S-{row['number']}"},
            headers=POS,
        )
        assert sold.status_code == 200, sold.text
    report = await client.get("/v1/admin/reports/wallets", headers=ADMIN)
    assert report.status_code == 200, report.text
    assert report.json()["liability"] == 200_000
    assert sum(month["balance"] for month in report.json()["by_expiry_month"]) == 200_000
    movements = {m["kind"]: m["amount"] for m in report.json()["movements"]}
    assert movements == {"sale": 200_000}
    await _balanced(url)


async def test_the_program_decides_whether_wallet_money_earns_points(
    server_url: str, redis_url: str
) -> None:
    document = demo_program_now()
    document["wallets"] = {"earn_points": False}
    async with own_program(server_url, redis_url, document) as (client, _, _):
        number = await _certificate(client, 500_000)
        plain = await client.post("/v1/calculate", json=_sale([400_000], None, card=CARD),
                                  headers=POS)  # fmt: skip
        half = await client.post(
            "/v1/calculate",
            json=_sale([400_000], {"number": number, "amount": 200_000}, card=CARD),
            headers=POS,
        )
        assert plain.status_code == half.status_code == 200, half.text
        earned = plain.json()["totals"]["points_earned"]
        kept = half.json()["totals"]["points_earned"]
        due = plain.json()["totals"]["amount_due"]
        assert earned > 0
        assert kept == earned * (due - 200_000) // due
        assert sum(line["points_earned"] for line in half.json()["lines"]) == kept
        assert sum(rule["points"] for rule in half.json()["rules"]) <= kept
