"""Events for the chain's CRM (SPEC §4 item 37, issue 17): a card issued, a customer
registered at the till (contacts only where a consent covers them), a birthday ahead
(once a year per card, the program's days ahead, 29 February on the 28th in other years).

A database of its own, so that the outbox holds only what these tests made.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest

from service.storage.postgres.pool import connect
from service.storage.postgres.webhooks import Webhooks, birthday_days
from tests.clock import demo_program_now
from tests.conftest import ADMIN, POS
from tests.integration.conftest import OwnProgram, own_program


@pytest.fixture
async def served(server_url: str, redis_url: str) -> AsyncIterator[OwnProgram]:
    async with own_program(server_url, redis_url, demo_program_now()) as own:
        yield own


async def _events(url: str, kind: str) -> list[dict[str, Any]]:
    conn = await connect(url)
    try:
        rows = await conn.fetch(
            "SELECT payload FROM outbox WHERE kind = $1 ORDER BY event_id", kind
        )
    finally:
        await conn.close()
    return [row["payload"] for row in rows]


async def test_a_registration_tells_the_crm_what_the_consents_allow(served: OwnProgram) -> None:
    client, url, _ = served
    registration = {
        "store_id": "msk-001", "card": "2900000000123",
        "customer": {"name": "Anna Petrova", "phone": "+79001112233",
                     "email": "anna@example.com", "birthday": "1990-03-15"},
        "consents": [{"channel": "sms", "given": True}, {"channel": "email", "given": False}],
    }  # fmt: skip
    made = await client.post("/v1/registrations", json=registration, headers=POS)
    assert made.status_code == 201, made.text
    [registered] = await _events(url, "customer_registered")
    assert registered["card"] == "2900000000123"
    assert registered["consents"] == {"sms": True, "email": False}
    assert registered["phone"] == "+79001112233"
    assert "email" not in registered and "name" not in registered  # no consent, no e-mail
    [issued] = await _events(url, "card_issued")
    assert issued["card"] == "2900000000123"
    assert issued["customer_id"] == registered["customer_id"]

    # A card issued in the back office is one too; a printer's range of stock is not.
    one = await client.post("/v1/admin/cards", json={"number": "2900000000124"}, headers=ADMIN)
    assert one.status_code == 201, one.text
    stock = await client.post(
        "/v1/admin/cards/ranges",
        json={"first": "2900000001000", "last": "2900000001009"},
        headers=ADMIN,
    )
    assert stock.status_code == 201, stock.text
    cards = [event["card"] for event in await _events(url, "card_issued")]
    assert cards == ["2900000000123", "2900000000124"]


async def test_a_birthday_ahead_is_told_once_a_year(served: OwnProgram) -> None:
    client, url, _ = served
    for number, birthday in (("2900000000200", "1985-12-20"), ("2900000000201", "1985-12-25")):
        customer = await client.post(
            "/v1/admin/customers",
            json={"name": number, "phone": f"+7901{number[-7:]}", "birthday": birthday},
            headers=ADMIN,
        )
        assert customer.status_code == 201, customer.text
        card = await client.post(
            "/v1/admin/cards",
            json={"number": number, "customer_id": customer.json()["customer_id"]},
            headers=ADMIN,
        )
        assert card.status_code == 201, card.text
    conn = await connect(url)
    try:
        webhooks = Webhooks(conn)  # type: ignore[arg-type]  # a connection runs it as a pool
        await webhooks.note_birthdays(date(2026, 12, 13), 7)  # 13 to 20 December
        await webhooks.note_birthdays(date(2026, 12, 14), 7)  # again: nothing new
    finally:
        await conn.close()
    told = await _events(url, "birthday")
    assert [(event["card"], event["birthday"]) for event in told] == [
        ("2900000000200", "2026-12-20")
    ]


def test_a_29_february_birthday_counts_on_the_28th_in_other_years() -> None:
    mds, years, days = birthday_days(date(2027, 2, 27), 1)
    assert list(zip(mds, years, days, strict=True)) == [
        (227, 2027, date(2027, 2, 27)),
        (228, 2027, date(2027, 2, 28)),
        (229, 2027, date(2027, 2, 28)),
    ]
    assert 229 in birthday_days(date(2028, 2, 29), 0)[0]
