"""The rewards catalogue (SPEC §4 item 31, issue 17): the back office keeps the entries;
a receipt redeems percent and amount off, free products and coupons in whole multiples
of their price, the points leave the card as spent points do, a refused reward is
explained on calculate and refuses the commit, a replay moves nothing; a coupon is a
single-use code of the card for a later receipt; returns give the points back with
their expiry and void unused coupons; each redemption queues a ``reward_issued`` event.

A database of its own per test: a program of one promo rule (the coupons') beside the
base accrual, so that every number here is the rewards'.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from service.storage.postgres.invariants import broken_invariants
from service.storage.postgres.pool import connect
from tests.clock import FRIDAY_NOON, demo_program_now
from tests.conftest import ADMIN, POS
from tests.integration.conftest import OwnProgram, own_program

# Numbers of their own: the card cache in Redis outlives each test's database.
_numbers = itertools.count(int.from_bytes(os.urandom(3), "big") * 1000)


def _document() -> dict[str, Any]:
    document = demo_program_now()
    document["rules"] = [{
        "id": "coupon10", "name": "Coupon: 10% off", "priority": 10,
        "conditions": {"promo_code": True}, "effect": {"type": "percent", "percent": "10"},
    }]  # fmt: skip
    document["promo_codes"] = []
    document["groups"] = []
    return document


@pytest.fixture
async def served(server_url: str, redis_url: str) -> AsyncIterator[OwnProgram]:
    async with own_program(server_url, redis_url, _document()) as own:
        yield own


async def _card(url: str, points: int, status: str = "active") -> str:
    """A new card holding ``points`` active points (one lot, a year to live)."""
    number = f"78{next(_numbers):011d}"
    now = datetime.now(UTC)
    conn = await connect(url)
    try:
        card_id = await conn.fetchval(
            "INSERT INTO cards (number, status) VALUES ($1, $2) RETURNING card_id", number, status
        )
        lot = await conn.fetchval(
            "INSERT INTO point_lots (card_id, points, remaining, activates_at, expires_at,"
            " source) VALUES ($1, $2, $2, $3, $4, 'adjustment') RETURNING lot_id",
            card_id, points, now - timedelta(days=30), now + timedelta(days=365),
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO ledger_entries (card_id, kind, points, lot_id, reason, author)"
            " VALUES ($1, 'adjustment', $2, $3, 'opening balance', 'tests')",
            card_id, points, lot,
        )  # fmt: skip
    finally:
        await conn.close()
    return number


async def _reward(client: httpx.AsyncClient, **entry: Any) -> dict[str, Any]:
    made = await client.post("/v1/admin/rewards", json=entry, headers=ADMIN)
    assert made.status_code == 201, made.text
    return dict(made.json())


def _sale(card: str, lines: list[tuple[str, int, str]], **extra: Any) -> dict[str, Any]:
    """A receipt of ``lines`` (sku, unit price, quantity)."""
    return {
        "store_id": "msk-001", "timestamp": FRIDAY_NOON, "card": card,
        "lines": [{"line_id": str(i + 1), "sku": sku, "category": "shirts", "quantity": qty,
                   "unit_price": price} for i, (sku, price, qty) in enumerate(lines)],
        **extra,
    }  # fmt: skip


async def _balance(client: httpx.AsyncClient, card: str) -> int:
    answer = await client.get(f"/v1/cards/{card}", headers=POS)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["balance"])


async def _balanced(url: str) -> None:
    conn = await connect(url)
    try:
        assert await broken_invariants(conn) == {}
    finally:
        await conn.close()


def _exact(view: dict[str, Any]) -> None:
    """Every split of the answer sums to its total, line by line and over the lines."""
    lines, totals = view["lines"], view["totals"]
    for line in lines:
        assert line["final_amount"] == line["amount"] - line["discount"] - line["points_paid"]
        assert sum(p["amount"] for p in line["fiscal_positions"]) == line["final_amount"]
    assert sum(line["discount"] for line in lines) == totals["discount"]
    assert sum(line["final_amount"] for line in lines) == totals["amount_due"]
    redeemed = [r for r in view["rewards"] if r["status"] == "redeemed"]
    assert totals["reward_points"] == sum(r["points"] for r in redeemed)
    if any("reward_points" in line for line in lines):
        assert sum(line["reward_points"] for line in lines) == sum(
            r["points"] for r in redeemed if r["kind"] != "coupon"
        )


async def test_the_back_office_keeps_the_catalogue(served: OwnProgram) -> None:
    client, _, _ = served
    made = await _reward(client, code="PCT10", name="10% off", kind="percent_off", price=10,
                         percent="10", max_per_receipt=5)  # fmt: skip
    assert made["status"] == "active" and made["percent"] == "10" and made["redemptions"] == 0
    await _reward(client, code="NEXT10", name="10% off the next order", kind="coupon",
                  price=10, rule_id="coupon10", coupon_days=30)  # fmt: skip
    again = await client.post(
        "/v1/admin/rewards", json={"code": "PCT10", "name": "x", "kind": "amount_off",
                                   "price": 1, "amount": 100}, headers=ADMIN,
    )  # fmt: skip
    assert again.status_code == 409 and again.json()["error"] == "reward_exists"
    for bad in (
        {"code": "A", "name": "a", "kind": "percent_off", "price": 1},  # no percent
        {"code": "B", "name": "b", "kind": "amount_off", "price": 1, "amount": 1, "sku": "X"},
        {"code": "C", "name": "c", "kind": "percent_off", "price": 0, "percent": "5"},
    ):
        refused = await client.post("/v1/admin/rewards", json=bad, headers=ADMIN)
        assert refused.status_code == 422, refused.text
    no_rule = await client.post(
        "/v1/admin/rewards", json={"code": "D", "name": "d", "kind": "coupon", "price": 1,
                                   "rule_id": "nope", "coupon_days": 3}, headers=ADMIN,
    )  # fmt: skip
    assert no_rule.status_code == 422 and no_rule.json()["fields"][0]["field"] == "rule_id"

    changed = await client.patch(
        "/v1/admin/rewards/PCT10", json={"price": 12, "name": "10% off, dearer"}, headers=ADMIN
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["price"] == 12 and changed.json()["percent"] == "10"
    archived = await client.patch("/v1/admin/rewards/PCT10", json={"archived": True}, headers=ADMIN)
    assert archived.json()["status"] == "archived"
    listed = await client.get("/v1/admin/rewards", headers=ADMIN)
    assert [r["code"] for r in listed.json()["rewards"]] == ["NEXT10"]
    listed = await client.get("/v1/admin/rewards", params={"archived": "true"}, headers=ADMIN)
    assert [r["code"] for r in listed.json()["rewards"]] == ["NEXT10", "PCT10"]
    missing = await client.get("/v1/admin/rewards/NOPE", headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["error"] == "reward_not_found"
    audit = await client.get("/v1/admin/audit", params={"subject": "reward:PCT10"}, headers=ADMIN)
    assert [e["action"] for e in audit.json()["entries"]] == [
        "reward.change", "reward.change", "reward.create"
    ]  # fmt: skip


async def test_percent_off_in_multiples_commits_once_and_is_returned(served: OwnProgram) -> None:
    client, url, _ = served
    await _reward(client, code="PCT10", name="10% off", kind="percent_off", price=10,
                  percent="10")  # fmt: skip
    card = await _card(url, 1_000)
    body = _sale(card, [("S-1", 100_000, "1"), ("S-2", 50_001, "1")],
                 rewards=[{"code": "PCT10", "count": 2}])  # fmt: skip
    shown = await client.post("/v1/calculate", json=body, headers=POS)
    assert shown.status_code == 200, shown.text
    view = shown.json()
    [reward] = view["rewards"]
    assert reward == {
        "code": "PCT10", "count": 2, "status": "redeemed", "reason": None, "name": "10% off",
        "kind": "percent_off", "points": 20, "discount": 30_000,
    }  # fmt: skip
    assert [line["discount"] for line in view["lines"]] == [20_000, 10_000]
    assert [line["applied"][-1]["rule_id"] for line in view["lines"]] == ["reward:PCT10"] * 2
    assert [line["reward_points"] for line in view["lines"]] == [13, 7]
    _exact(view)
    # The base 1% earns on what money pays: 120,001 kopecks, not 150,001.
    assert view["totals"]["points_earned"] == 12

    sale = {**body, "transaction_id": "RW-1", "calculation_id": view["calculation_id"]}
    committed = await client.post("/v1/commit", json=sale, headers=POS)
    assert committed.status_code == 200, committed.text
    assert committed.json()["rewards"] == view["rewards"]
    assert committed.json()["card"]["balance"] == 980
    again = await client.post("/v1/commit", json=sale, headers=POS)  # a replay moves nothing
    assert again.status_code == 200 and again.json() == committed.json()
    assert await _balance(client, card) == 980
    await _balanced(url)

    # Line 2 back: its share of the points; then the rest: all of them, with their expiry.
    part = await client.post("/v1/refund", json={
        "store_id": "msk-001", "transaction_id": "RW-1", "refund_id": "RW-1-R1",
        "lines": [{"line_id": "2", "quantity": "1"}]}, headers=POS)  # fmt: skip
    assert part.status_code == 200, part.text
    assert part.json()["totals"]["reward_points_returned"] == 7
    assert await _balance(client, card) == 987
    rest = await client.post(
        "/v1/refund",
        json={"store_id": "msk-001", "transaction_id": "RW-1", "refund_id": "RW-1-R2"},
        headers=POS,
    )
    assert rest.status_code == 200, rest.text
    assert rest.json()["totals"]["reward_points_returned"] == 13
    assert await _balance(client, card) == 1_000
    await _balanced(url)


async def test_amount_off_and_free_products_within_the_lines_room(served: OwnProgram) -> None:
    client, url, _ = served
    await _reward(client, code="OFF500", name="500 off", kind="amount_off", price=500,
                  amount=50_000)  # fmt: skip
    await _reward(client, code="COFFEE", name="A free coffee", kind="free_product", price=150,
                  sku="COFFEE", max_per_receipt=2)  # fmt: skip
    card = await _card(url, 2_000)
    body = _sale(card, [("COFFEE", 15_000, "3"), ("S-1", 30_000, "1")],
                 rewards=[{"code": "COFFEE", "count": 2}, {"code": "OFF500"}])  # fmt: skip
    view = (await client.post("/v1/calculate", json=body, headers=POS)).json()
    coffee, off = view["rewards"]
    assert (coffee["status"], coffee["points"], coffee["discount"]) == ("redeemed", 300, 30_000)
    # 500 roubles off what is left (15,000 + 30,000 kopecks), each line kept at its floor.
    assert (off["status"], off["points"], off["discount"]) == ("redeemed", 500, 44_800)
    assert [line["final_amount"] for line in view["lines"]] == [100, 100]
    _exact(view)

    three = {**body, "rewards": [{"code": "COFFEE", "count": 3}]}
    over = (await client.post("/v1/calculate", json=three, headers=POS)).json()
    assert over["rewards"][0]["reason"] == "over_limit"
    no_coffee = _sale(card, [("S-1", 30_000, "1")], rewards=[{"code": "COFFEE"}])
    shown = (await client.post("/v1/calculate", json=no_coffee, headers=POS)).json()
    assert shown["rewards"][0]["status"] == "rejected"
    assert shown["rewards"][0]["reason"] == "not_applicable"
    assert shown["totals"]["reward_points"] == 0 and shown["totals"]["discount"] == 0
    refused = await client.post(
        "/v1/commit", json={**no_coffee, "transaction_id": "RW-NA"}, headers=POS
    )
    assert refused.status_code == 422 and refused.json()["error"] == "reward_not_applicable"
    committed = await client.post(
        "/v1/commit", json={**body, "transaction_id": "RW-2"}, headers=POS
    )
    assert committed.status_code == 200, committed.text
    assert await _balance(client, card) == 1_200
    await _balanced(url)


async def test_refused_rewards_are_explained_and_refuse_the_commit(served: OwnProgram) -> None:
    client, url, _ = served
    await _reward(client, code="PCT5", name="5% off", kind="percent_off", price=10, percent="5")
    await _reward(client, code="OLD", name="old", kind="percent_off", price=1, percent="1")
    await client.patch("/v1/admin/rewards/OLD", json={"archived": True}, headers=ADMIN)
    card = await _card(url, 25)
    body = _sale(
        card,
        [("S-1", 100_000, "1")],
        rewards=[{"code": "PCT5", "count": 2}, {"code": "PCT5X"}, {"code": "OLD"}],
    )
    view = (await client.post("/v1/calculate", json=body, headers=POS)).json()
    assert [(r["status"], r["reason"]) for r in view["rewards"]] == [
        ("redeemed", None), ("rejected", "unknown"), ("rejected", "archived")
    ]  # fmt: skip
    # The points the rewards take are not there to pay with.
    paying = {**body, "rewards": [{"code": "PCT5", "count": 2}], "redeem_points": "max"}
    view = (await client.post("/v1/calculate", json=paying, headers=POS)).json()
    assert view["totals"]["points_redeemed"] == 5 and view["totals"]["reward_points"] == 20

    short = {**body, "rewards": [{"code": "PCT5", "count": 3}]}
    view = (await client.post("/v1/calculate", json=short, headers=POS)).json()
    assert view["rewards"][0]["reason"] == "insufficient_points"
    assert view["rewards"][0]["balance"] == 25
    cases = [
        (short, 409, "insufficient_points"),
        ({**body, "rewards": [{"code": "PCT5X"}]}, 404, "reward_not_found"),
        ({**body, "rewards": [{"code": "OLD"}]}, 409, "reward_not_active"),
        ({**body, "card": None, "rewards": [{"code": "PCT5"}]}, 422, "reward_without_card"),
        ({**body, "rewards": [{"code": "PCT5"}, {"code": "PCT5"}]}, 422, "duplicate_reward"),
    ]
    for i, (sale, status, error) in enumerate(cases):
        refused = await client.post(
            "/v1/commit", json={**sale, "transaction_id": f"RW-X{i}"}, headers=POS
        )
        assert (refused.status_code, refused.json()["error"]) == (status, error), refused.text
    assert await _balance(client, card) == 25

    blocked = await _card(url, 100, status="blocked")
    sale = {**body, "card": blocked, "rewards": [{"code": "PCT5"}]}
    view = (await client.post("/v1/calculate", json=sale, headers=POS)).json()
    assert view["rewards"][0]["reason"] == "card_not_active"
    refused = await client.post("/v1/commit", json={**sale, "transaction_id": "RW-B"}, headers=POS)
    assert (refused.status_code, refused.json()["error"]) == (409, "card_not_active")
    await _balanced(url)


async def test_a_coupon_is_the_cards_for_a_later_receipt_and_voided_by_a_cancel(
    served: OwnProgram,
) -> None:
    client, url, _ = served
    await _reward(client, code="NEXT10", name="10% off the next order", kind="coupon",
                  price=10, rule_id="coupon10", coupon_days=30)  # fmt: skip
    card, other = await _card(url, 100), await _card(url, 100)
    buy = _sale(card, [("S-1", 10_000, "1")], rewards=[{"code": "NEXT10", "count": 2}])
    view = (await client.post("/v1/calculate", json=buy, headers=POS)).json()
    [reward] = view["rewards"]
    assert reward["coupon"] == {"rule_id": "coupon10", "valid_days": 30}
    assert reward["discount"] == 0 and view["totals"]["discount"] == 0
    committed = await client.post("/v1/commit", json={**buy, "transaction_id": "RW-C"},
                                  headers=POS)  # fmt: skip
    assert committed.status_code == 200, committed.text
    coupon = committed.json()["rewards"][0]["coupon"]
    first, second = coupon["codes"]
    assert await _balance(client, card) == 80

    # The card's later receipt takes 10% off with the first coupon; no other card can.
    later = _sale(card, [("S-2", 20_000, "1")], promo_codes=[first],
                  timestamp=datetime.now(UTC).isoformat())  # fmt: skip
    shown = (await client.post("/v1/calculate", json=later, headers=POS)).json()
    assert shown["promo_codes"] == [{"code": first, "status": "accepted", "reason": None}]
    assert shown["totals"]["discount"] == 2_000
    stranger = (await client.post("/v1/calculate", json={**later, "card": other},
                                  headers=POS)).json()  # fmt: skip
    assert stranger["promo_codes"][0]["reason"] == "unknown"
    used = await client.post("/v1/commit", json={**later, "transaction_id": "RW-U"},
                             headers=POS)  # fmt: skip
    assert used.status_code == 200 and used.json()["totals"]["discount"] == 2_000
    once_more = (await client.post("/v1/calculate", json=later, headers=POS)).json()
    assert once_more["promo_codes"][0]["status"] == "rejected"

    # Cancelling the sale that issued them voids the unused coupon and gives its price back.
    cancelled = await client.post(
        "/v1/cancel", json={"store_id": "msk-001", "transaction_id": "RW-C"}, headers=POS
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["coupons_voided"] == [second]
    assert cancelled.json()["totals"]["reward_points_returned"] == 10
    assert await _balance(client, card) == 90
    code = await client.get(f"/v1/admin/promo-codes/{second}", headers=ADMIN)
    assert code.json()["state"] == "revoked"
    await _balanced(url)


async def test_each_redemption_queues_a_reward_issued_event(served: OwnProgram) -> None:
    client, url, _ = served
    await _reward(client, code="NEXT10", name="10% off the next order", kind="coupon",
                  price=10, rule_id="coupon10", coupon_days=30)  # fmt: skip
    card = await _card(url, 100)
    sale = _sale(card, [("S-1", 10_000, "1")], rewards=[{"code": "NEXT10"}],
                 transaction_id="RW-E")  # fmt: skip
    committed = await client.post("/v1/commit", json=sale, headers=POS)
    assert committed.status_code == 200, committed.text
    conn = await connect(url)
    try:
        payload = await conn.fetchval("SELECT payload FROM outbox WHERE kind = 'reward_issued'")
    finally:
        await conn.close()
    assert payload["card"] == card and payload["reward"] == "NEXT10"
    assert payload["points"] == 10 and payload["transaction_id"] == "RW-E"
    assert payload["coupons"] == committed.json()["rewards"][0]["coupon"]["codes"]
    hook = await client.post(
        "/v1/admin/webhooks",
        json={"url": "https://crm.example/hook", "events": ["reward_issued"]},
        headers=ADMIN,
    )
    assert hook.status_code == 201, hook.text


async def test_a_held_calculation_holds_the_rewards_points(served: OwnProgram) -> None:
    client, url, _ = served
    await _reward(client, code="PCT10", name="10% off", kind="percent_off", price=60,
                  percent="10")  # fmt: skip
    card = await _card(url, 100)
    body = _sale(card, [("S-1", 10_000, "1")], rewards=[{"code": "PCT10"}])
    held = (await client.post("/v1/calculate", json={**body, "hold": True}, headers=POS)).json()
    assert held["hold"]["points"] == 60
    other = (await client.post("/v1/calculate", json=body, headers=POS)).json()
    assert other["rewards"][0]["reason"] == "insufficient_points"
    committed = await client.post("/v1/commit", json={
        **body, "transaction_id": "RW-H", "calculation_id": held["calculation_id"]},
        headers=POS)  # fmt: skip
    assert committed.status_code == 200, committed.text
    assert await _balance(client, card) == 40
    await _balanced(url)


async def test_concurrent_redemptions_never_overdraw_the_card(served: OwnProgram) -> None:
    client, url, _ = served
    await _reward(client, code="PCT10", name="10% off", kind="percent_off", price=60,
                  percent="10")  # fmt: skip
    card = await _card(url, 100)
    sales = [
        {**_sale(card, [("S-1", 10_000, "1")], rewards=[{"code": "PCT10"}]),
         "transaction_id": f"RW-P{i}"}
        for i in range(4)
    ]  # fmt: skip
    answers = await asyncio.gather(
        *(client.post("/v1/commit", json=sale, headers=POS) for sale in sales)
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200, 409, 409, 409], [answer.text for answer in answers]
    assert {a.json()["error"] for a in answers if a.status_code == 409} == {"insufficient_points"}
    assert await _balance(client, card) == 40
    await _balanced(url)


async def test_an_offline_till_redeems_rewards_within_its_allowance(served: OwnProgram) -> None:
    client, url, _ = served
    await _reward(client, code="PCT10", name="10% off", kind="percent_off", price=60,
                  percent="10")  # fmt: skip
    card = await _card(url, 200)
    granted = await client.post(
        "/v1/allowances", json={"store_id": "msk-001", "card": card, "points": 100}, headers=POS
    )
    assert granted.status_code == 200, granted.text
    token = granted.json()["allowance"]
    sale = _sale(card, [("S-1", 10_000, "1")], rewards=[{"code": "PCT10"}])
    first = await client.post(
        "/v1/commit", json={**sale, "transaction_id": "RW-A1", "allowance": token}, headers=POS
    )
    assert first.status_code == 200, first.text
    # 40 points left of the allowance: a second reward of 60 is more than it covers.
    second = await client.post(
        "/v1/commit", json={**sale, "transaction_id": "RW-A2", "allowance": token}, headers=POS
    )
    assert second.status_code == 409, second.text
    assert (second.json()["error"], second.json()["points_left"]) == ("allowance_refused", 40)
    assert await _balance(client, card) == 140
    await _balanced(url)
