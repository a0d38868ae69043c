"""A sale that redeems a reward and moves a stamp card at once (issue 17's two newest
mechanics, built apart): both written by loyalty_commit under the card's lock, both
undone by its cancel, the ledger's invariants whole."""

from __future__ import annotations

from tests.conftest import ADMIN, POS
from tests.integration.conftest import OwnProgram
from tests.integration.test_rewards import _balance, _balanced, _card
from tests.integration.test_stamps import PRICE, _sale, stamped

__all__ = ["stamped"]  # the stamp card's program, a fixture of its own module


async def test_a_reward_and_a_stamp_card_on_one_sale_and_its_cancel(
    stamped: OwnProgram,
) -> None:
    client, url, _ = stamped
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

    both = {**_sale(card, "RS-2", 1), "rewards": [{"code": "OFF50", "count": 1}]}
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
