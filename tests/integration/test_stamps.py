"""Stamp cards (SPEC §4 item 36, issue 17) through HTTP: "every 6th coffee free" over
several receipts, the progress in the answers and the card view, and a cancel that
undoes what its sale did to the card's stamps (SPEC §4 item 38).

A program of its own on a database of its own: the demo plus the stamp card, with no
minimum line amount so that the free coffee costs nothing.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from service.storage.postgres.pool import connect
from tests.clock import FRIDAY_NOON, demo_program_now
from tests.conftest import ADMIN, POS
from tests.integration.conftest import OwnProgram, own_program

COFFEE = {
    "id": "coffee-6", "name": "Every 6th coffee free", "priority": 50,
    "target": {"categories": ["coffee"]}, "effect": {"type": "stamps", "every": 6},
}  # fmt: skip
PRICE = 25_000

_numbers = itertools.count(int.from_bytes(os.urandom(3), "big") * 1000)


@pytest.fixture
async def stamped(server_url: str, redis_url: str) -> AsyncIterator[OwnProgram]:
    document = demo_program_now()
    document["points"] = {**document["points"], "min_line_amount": 0}
    document["rules"] = [*document["rules"], COFFEE]
    async with own_program(server_url, redis_url, document) as served:
        yield served


async def _card(url: str) -> str:
    number = f"79{next(_numbers):011d}"
    conn = await connect(url)
    try:
        await conn.execute("INSERT INTO cards (number) VALUES ($1)", number)
    finally:
        await conn.close()
    return number


def _sale(card: str, tx: str, coffees: int, price: int = PRICE) -> dict[str, Any]:
    return {
        "store_id": "msk-001", "timestamp": FRIDAY_NOON, "card": card, "transaction_id": tx,
        "lines": [
            {"line_id": "1", "sku": "LATTE", "category": "coffee", "quantity": str(coffees),
             "unit_price": price},
            {"line_id": "2", "sku": "CROISSANT", "category": "bakery", "quantity": "1",
             "unit_price": 15_000},
        ],
    }  # fmt: skip


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    if path == "/v1/calculate":  # the receipt alone: a commit's fields are refused there
        body = {k: v for k, v in body.items() if k != "transaction_id"}
    response = await client.post(path, json=body, headers=POS)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def _progress(client: httpx.AsyncClient, card: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/cards/{card}", headers=POS)
    assert response.status_code == 200, response.text
    return response.json()["stamps"]  # type: ignore[no-any-return]


def _verdict(body: dict[str, Any]) -> dict[str, Any]:
    return next(v for v in body["rules"] if v["rule_id"] == "coffee-6")


def _card_of(have: int) -> list[dict[str, Any]]:
    return [{"rule_id": "coffee-6", "name": "Every 6th coffee free", "have": have, "of": 6}]


def _stamps(have: int, added: int, free: int) -> list[dict[str, Any]]:
    return [{**_card_of(have)[0], "added": added, "free": free}]


async def test_the_sixth_coffee_is_free_and_a_cancel_takes_its_stamps_back(
    stamped: OwnProgram,
) -> None:
    client, url, _ = stamped
    card = await _card(url)
    assert await _progress(client, card) == _card_of(0)

    # Two coffees, then three: stamps, no free coffee yet, and the rule says why.
    first = _sale(card, "S-1", 2)
    shown = await _post(client, "/v1/calculate", first)
    assert shown["stamps"] == _stamps(have=2, added=2, free=0)
    assert shown["card"]["stamps"] == _card_of(0)  # the card before the sale
    assert _verdict(shown)["reason"] == "not_enough_stamps"
    first["calculation_id"] = shown["calculation_id"]
    committed = await _post(client, "/v1/commit", first)
    assert committed["stamps"] == _stamps(have=2, added=2, free=0)
    assert committed["totals"]["discount"] == 0
    assert await _progress(client, card) == _card_of(2)
    second = await _post(client, "/v1/commit", _sale(card, "S-2", 3))
    assert second["stamps"] == _stamps(have=5, added=3, free=0)
    assert await _progress(client, card) == _card_of(5)

    # The sixth coffee is free, whole, and the card starts again.
    third = await _post(client, "/v1/commit", _sale(card, "S-3", 1))
    assert third["stamps"] == _stamps(have=0, added=1, free=1)
    coffee = third["lines"][0]
    assert (coffee["discount"], coffee["final_amount"]) == (PRICE, 0)
    assert [a["rule_id"] for a in coffee["applied"]] == ["coffee-6"]
    assert third["lines"][1]["discount"] == 0  # the croissant is no coffee
    assert await _progress(client, card) == _card_of(0)

    # Sent again, the sale is answered as it was and moves no stamp.
    replayed = await _post(client, "/v1/commit", _sale(card, "S-3", 1))
    assert replayed["stamps"] == third["stamps"]
    assert await _progress(client, card) == _card_of(0)

    # Cancelling the free coffee's sale gives back the six stamps it used and takes the
    # one it added; cancelling the first takes its two.
    await _post(client, "/v1/cancel", {"store_id": "msk-001", "transaction_id": "S-3"})
    assert await _progress(client, card) == _card_of(5)
    await _post(client, "/v1/cancel", {"store_id": "msk-001", "transaction_id": "S-1"})
    assert await _progress(client, card) == _card_of(3)

    # Three more coffees in one receipt: the cheapest of them is the free one.
    mixed = _sale(card, "S-4", 2, price=30_000)
    mixed["lines"].append(
        {"line_id": "3", "sku": "ESPRESSO", "category": "coffee", "quantity": "1",
         "unit_price": 12_000}
    )  # fmt: skip
    fourth = await _post(client, "/v1/commit", mixed)
    assert fourth["stamps"] == _stamps(have=0, added=3, free=1)
    assert [line["discount"] for line in fourth["lines"]] == [0, 0, 12_000]
    conn = await connect(url)
    try:
        moves = await conn.fetch(
            "SELECT transaction_id, added, used, released_at IS NOT NULL AS released"
            " FROM stamp_moves ORDER BY moved_at, transaction_id"
        )
    finally:
        await conn.close()
    assert [tuple(m) for m in moves] == [
        ("S-1", 2, 0, True),
        ("S-2", 3, 0, False),
        ("S-3", 1, 6, True),
        ("S-4", 3, 6, False),
    ]


async def test_a_replaced_card_keeps_its_stamps(stamped: OwnProgram) -> None:
    """A lost card's stamps move to the card that replaces it, and a cancel of a sale
    made on the old card takes its stamps back from the new one."""
    client, url, _ = stamped
    lost = await _card(url)
    await _post(client, "/v1/commit", _sale(lost, "L-1", 3))
    await _post(client, "/v1/commit", _sale(lost, "L-2", 1))
    new = f"79{next(_numbers):011d}"
    replaced = await client.post(
        f"/v1/admin/cards/{lost}/replace", json={"new_number": new}, headers=ADMIN
    )
    assert replaced.status_code == 200, replaced.text
    assert await _progress(client, new) == _card_of(4)
    await _post(client, "/v1/cancel", {"store_id": "msk-001", "transaction_id": "L-1"})
    assert await _progress(client, new) == _card_of(1)
    assert await _progress(client, lost) == _card_of(0)


async def test_a_free_unit_whose_stamps_another_sale_used_is_refused(
    stamped: OwnProgram,
) -> None:
    """Two tills, one card with 5 stamps: both are shown the free sixth coffee; the first
    commit takes it, the second is refused 409 ``stamps_changed`` and writes nothing, and
    calculated again it pays for its coffee."""
    client, url, _ = stamped
    card = await _card(url)
    await _post(client, "/v1/commit", _sale(card, "C-1", 5))
    stale = await _post(client, "/v1/calculate", _sale(card, "C-2", 1))
    assert stale["stamps"] == _stamps(have=0, added=1, free=1)
    await _post(client, "/v1/commit", _sale(card, "C-3", 1))  # the other till
    refused = await client.post(
        "/v1/commit",
        json={**_sale(card, "C-2", 1), "calculation_id": stale["calculation_id"]},
        headers=POS,
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "stamps_changed"
    assert refused.json()["rule_id"] == "coffee-6"
    assert await _progress(client, card) == _card_of(0)
    again = await _post(client, "/v1/commit", _sale(card, "C-2", 1))
    assert again["stamps"] == _stamps(have=1, added=1, free=0)
    assert again["totals"]["discount"] == 0
