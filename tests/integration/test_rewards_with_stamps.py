"""A sale that redeems a reward and moves a stamp card at once (issue 17's two newest
mechanics, built apart): both written by loyalty_commit under the card's lock, both
undone by its cancel, the ledger's invariants whole."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.clock import FRIDAY_NOON, demo_program_now
from tests.conftest import ADMIN, POS
from tests.integration.conftest import OwnProgram, own_program
from tests.integration.test_rewards import _balance, _balanced, _card
from tests.integration.test_stamps import COFFEE, PRICE


@pytest.fixture
async def served(server_url: str, redis_url: str) -> AsyncIterator[OwnProgram]:
    document = demo_program_now()
    document["points"] = {**document["points"], "min_line_amount": 0}
    document["rules"] = [*document["rules"], COFFEE]
    async with own_program(server_url, redis_url, document) as own:
        yield own


def _sale(card: str, tx: str, coffees: int, **extra: Any) -> dict[str, Any]:
    return {
        "store_id": "msk-001", "timestamp": FRIDAY_NOON, "card": card, "transaction_id": tx,
        "lines": [
            {"line_id": "1", "sku": "LATTE", "category": "coffee", "quantity": str(coffees),
             "unit_price": PRICE},
            {"line_id": "2", "sku": "BAG", "category": "bags", "quantity": "1",
             "unit_price": 300_000},
        ],
        **extra,
    }  # fmt: skip


async def test_a_reward_and_a_stamp_card_on_one_sale_and_its_cancel(served: OwnProgram) -> None:
    client, url, _ = served
    made = await client.post(
        "/v1/admin/rewards",
        json={"code": "OFF50", "name": "50 roubles off", "kind": "amount_off", "price": 20,
              "amount": 5_000},
        headers=ADMIN,
    )  # fmt: skip
    assert made.status_code == 201, made.text
    card = await _card(url, 1_000)
    first = await client.post("/v1/commit", json=_sale(card, "RS-1", 5), headers=POS)
    assert first.status_code == 200, first.text
    assert first.json()["stamps"][0]["have"] == 5
    before = await _balance(client, card)

    both = _sale(card, "RS-2", 1, rewards=[{"code": "OFF50", "count": 1}])
    committed = await client.post("/v1/commit", json=both, headers=POS)
    assert committed.status_code == 200, committed.text
    answer = committed.json()
    [reward] = answer["rewards"]
    assert (reward["status"], reward["points"], reward["discount"]) == ("redeemed", 20, 5_000)
    [stamps] = answer["stamps"]
    assert (stamps["added"], stamps["free"], stamps["have"]) == (1, 1, 0)
    coffee = answer["lines"][0]
    assert coffee["discount"] >= PRICE - 1  # the sixth coffee free (less a kopeck floor)
    assert answer["totals"]["discount"] == sum(line["discount"] for line in answer["lines"])
    after = await _balance(client, card)
    assert after == before - 20 + 0  # the reward's points; this sale's accrual is pending
    await _balanced(url)

    cancel = await client.post(
        "/v1/cancel", json={"store_id": "msk-001", "transaction_id": "RS-2"}, headers=POS
    )
    assert cancel.status_code == 200, cancel.text
    assert await _balance(client, card) == before
    view = await client.get(f"/v1/cards/{card}", headers=POS)
    assert [(s["rule_id"], s["have"]) for s in view.json()["stamps"]] == [("coffee-6", 5)]
    await _balanced(url)
