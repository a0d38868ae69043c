"""Hard limits (SPEC §4 items 21 and 30, issue 16): a rule's use cap and a campaign's
budget hold exactly however many tills sell at once, and returns give them back.

A program of its own on a database of its own: the demo, plus a rule for ten sales of
shirts, a rule once a day per card for socks, and a budget for ties; its tiers move down
at the return that takes a card's spend below the threshold. The app commits with
several ledger transactions in flight, so the tills' sales race in Postgres, not only in
one batch. Calculations read the caps from a view a few seconds old, so the first wave of
tills is shown every rule; the commit is what holds the line.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.storage.postgres.pool import connect
from tests.clock import FRIDAY_NOON, demo_program_now
from tests.conftest import POS
from tests.integration.conftest import OwnProgram, own_program, webhook_listener

TEN_SALES = {
    "id": "ten-shirts", "name": "Shirts -10%: the first ten sales", "priority": 5,
    "target": {"categories": ["shirts"]}, "effect": {"type": "percent", "percent": "10"},
    "max_uses": 10,
}  # fmt: skip
ONCE_A_DAY = {
    "id": "socks-daily", "name": "Socks -50%: once a day per card", "priority": 5,
    "target": {"categories": ["socks"]}, "effect": {"type": "percent", "percent": "50"},
    "max_uses_per_card": 1, "uses_period": "day",
}  # fmt: skip
BUDGET = {
    "id": "ties-budget", "name": "Ties -20% within 1,000 roubles", "priority": 5,
    "target": {"categories": ["ties"]}, "effect": {"type": "percent", "percent": "20"},
    "budget": 100_000,
}  # fmt: skip

_numbers = itertools.count(int.from_bytes(os.urandom(3), "big") * 1000)


Limited = OwnProgram


@pytest.fixture
async def limited(server_url: str, redis_url: str) -> AsyncIterator[Limited]:
    document = demo_program_now()
    document["rules"] = [*document["rules"], TEN_SALES, ONCE_A_DAY, BUDGET]
    document["tiers"] = {**document["tiers"], "downgrade": "on_return"}
    async with own_program(server_url, redis_url, document, commit_in_flight=4) as served:
        yield served


async def _view_caught_up(app: FastAPI) -> None:
    """What the background refresh does every few seconds, now."""
    await app.state.services.promotions.refresh()


async def _cards(url: str, count: int) -> list[str]:
    numbers = [f"78{next(_numbers):011d}" for _ in range(count)]
    conn = await connect(url)
    try:
        await conn.executemany("INSERT INTO cards (number) VALUES ($1)", [(n,) for n in numbers])
    finally:
        await conn.close()
    return numbers


def _sale(
    card: str, category: str, tx: str, price: int = 100_000, units: int = 1
) -> dict[str, Any]:
    return {
        "store_id": "msk-001", "timestamp": FRIDAY_NOON, "card": card, "transaction_id": tx,
        "lines": [{"line_id": "1", "sku": f"{category}-1", "category": category,
                   "quantity": str(units), "unit_price": price}],
    }  # fmt: skip


def _applied(body: dict[str, Any], rule_id: str) -> int:
    return sum(
        a["amount"] for line in body["lines"] for a in line["applied"] if a["rule_id"] == rule_id
    )


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
    if path == "/v1/calculate":  # the receipt alone: a commit's fields are refused there
        body = {k: v for k, v in body.items() if k not in ("transaction_id", "calculation_id")}
    return await client.post(path, json=body, headers=POS)


async def _fetchval(url: str, query: str, *args: Any) -> Any:
    conn = await connect(url)  # the service's codecs: jsonb as Python values
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


async def _shown_then_committed(
    client: httpx.AsyncClient, sales: list[dict[str, Any]], rule_id: str, shown_amount: int
) -> list[httpx.Response]:
    """Every till calculates its sale (all shown the rule: the view says there is room),
    then all of them commit what they were shown, at once."""
    shown = await asyncio.gather(*(_post(client, "/v1/calculate", sale) for sale in sales))
    assert all(_applied(r.json(), rule_id) == shown_amount for r in shown)
    committed = [
        {**sale, "calculation_id": r.json()["calculation_id"]}
        for sale, r in zip(sales, shown, strict=True)
    ]
    return await asyncio.gather(*(_post(client, "/v1/commit", sale) for sale in committed))


async def test_fifty_tills_selling_a_rule_capped_at_ten_give_exactly_ten(
    limited: Limited,
) -> None:
    client, url, app = limited
    cards = await _cards(url, 50)
    sales = [_sale(card, "shirts", f"T-{i}") for i, card in enumerate(cards)]
    done = await _shown_then_committed(client, sales, "ten-shirts", 10_000)
    statuses = [r.status_code for r in done]
    assert statuses.count(200) == 10 and statuses.count(409) == 40, statuses
    for response in done:
        if response.status_code == 409:
            assert response.json()["error"] == "rule_limit_reached"
            assert response.json()["rule_id"] == "ten-shirts"
    assert (
        await _fetchval(url, "SELECT uses FROM rule_use_counts WHERE rule_id = 'ten-shirts'") == 10
    )
    refused = [sale for sale, r in zip(sales, done, strict=True) if r.status_code == 409]

    # The refusal refreshed the view: the till's new calculation no longer applies the rule.
    again = (await _post(client, "/v1/calculate", _sale(refused[0]["card"], "shirts", "x"))).json()
    verdict = next(v for v in again["rules"] if v["rule_id"] == "ten-shirts")
    assert verdict["applied"] is False and verdict["reason"] == "uses_exhausted"
    retried = await asyncio.gather(
        *(_post(client, "/v1/commit", {**sale, "calculation_id": None}) for sale in refused)
    )
    assert {r.status_code for r in retried} == {200}
    assert all(_applied(r.json(), "ten-shirts") == 0 for r in retried)
    assert (
        await _fetchval(url, "SELECT uses FROM rule_use_counts WHERE rule_id = 'ten-shirts'") == 10
    )

    # A cancel gives its use back: the next sale gets the rule again.
    first = next(sale for sale, r in zip(sales, done, strict=True) if r.status_code == 200)
    cancelled = await _post(
        client, "/v1/cancel", {"store_id": "msk-001", "transaction_id": first["transaction_id"]}
    )
    assert cancelled.status_code == 200, cancelled.text
    assert (
        await _fetchval(url, "SELECT uses FROM rule_use_counts WHERE rule_id = 'ten-shirts'") == 9
    )
    await _view_caught_up(app)
    late = await _post(client, "/v1/commit", _sale(cards[0], "shirts", "T-late"))
    assert late.status_code == 200 and _applied(late.json(), "ten-shirts") == 10_000


async def test_a_budget_is_never_overshot_and_a_refund_gives_back_its_share(
    limited: Limited,
) -> None:
    client, url, app = limited
    cards = await _cards(url, 50)
    # Two ties at 500 roubles each: 200 roubles off a sale, so the budget takes five sales.
    sales = [_sale(card, "ties", f"B-{i}", price=50_000, units=2) for i, card in enumerate(cards)]
    done = await _shown_then_committed(client, sales, "ties-budget", 20_000)
    statuses = [r.status_code for r in done]
    assert statuses.count(200) == 5 and statuses.count(409) == 45, statuses
    given = sum(_applied(r.json(), "ties-budget") for r in done if r.status_code == 200)
    used = await _fetchval(url, "SELECT used FROM campaign_budgets WHERE rule_id = 'ties-budget'")
    assert given == used == 100_000
    # Sent again whole (no calculation): each is calculated as the ledger now stands.
    resent = [{**sale, "transaction_id": f"B2-{i}"} for i, sale in enumerate(sales[:10])]
    again = await asyncio.gather(*(_post(client, "/v1/commit", sale) for sale in resent))
    assert {r.status_code for r in again} <= {200, 409}
    assert sum(_applied(r.json(), "ties-budget") for r in again if r.status_code == 200) == 0
    used = await _fetchval(url, "SELECT used FROM campaign_budgets WHERE rule_id = 'ties-budget'")
    assert used == 100_000

    # Half of one sale comes back: half of what it took of the budget returns with it.
    sold = next(sale for sale, r in zip(sales, done, strict=True) if r.status_code == 200)
    back = await _post(
        client, "/v1/refund",
        {"store_id": "msk-001", "transaction_id": sold["transaction_id"], "refund_id": "R-1",
         "lines": [{"line_id": "1", "quantity": "1"}]},
    )  # fmt: skip
    assert back.status_code == 200, back.text
    used = await _fetchval(url, "SELECT used FROM campaign_budgets WHERE rule_id = 'ties-budget'")
    assert used == 90_000
    await _view_caught_up(app)
    # What is left pays a discount no bigger than itself, and then no more.
    calc = (await _post(client, "/v1/calculate", _sale(cards[0], "ties", "B-x", 50_000, 2))).json()
    assert _applied(calc, "ties-budget") == 10_000
    again = {
        **_sale(cards[0], "ties", "B-more", 50_000, 2),
        "calculation_id": calc["calculation_id"],
    }
    more = await _post(client, "/v1/commit", again)
    assert more.status_code == 200 and _applied(more.json(), "ties-budget") == 10_000
    used = await _fetchval(url, "SELECT used FROM campaign_budgets WHERE rule_id = 'ties-budget'")
    assert used == 100_000


async def test_a_per_card_cap_holds_for_one_card_at_many_tills(limited: Limited) -> None:
    client, url, _ = limited
    (card,) = await _cards(url, 1)
    sales = [_sale(card, "socks", f"C-{i}") for i in range(8)]
    done = await _shown_then_committed(client, sales, "socks-daily", 50_000)
    statuses = sorted(r.status_code for r in done)
    assert statuses == [200] + [409] * 7, statuses
    shown = (await _post(client, "/v1/calculate", _sale(card, "socks", "C-x"))).json()
    verdict = next(v for v in shown["rules"] if v["rule_id"] == "socks-daily")
    assert verdict["reason"] == "uses_exhausted"
    (other,) = await _cards(url, 1)  # another card's day is its own
    fresh = await _post(client, "/v1/commit", _sale(other, "socks", "C-other"))
    assert fresh.status_code == 200 and _applied(fresh.json(), "socks-daily") == 50_000


async def test_a_return_below_the_threshold_moves_the_tier_down_at_once(
    limited: Limited,
) -> None:
    client, url, _ = limited
    (card,) = await _cards(url, 1)
    conn = await connect(url)
    try:  # 9,500 roubles of spend this year: 500 short of silver (10,000)
        await conn.execute(
            "INSERT INTO tier_spend (card_id, amount, occurred_at)"
            " SELECT card_id, 950000, now() - interval '10 days' FROM cards WHERE number = $1",
            card,
        )
        async with webhook_listener(conn, ["tier_change"]):  # else no event is written
            sold = await _post(client, "/v1/commit", _sale(card, "jeans", "U-1", price=100_000))
            assert sold.status_code == 200 and sold.json()["card"]["tier"] == "silver"
            back = await _post(
                client,
                "/v1/refund",
                {"store_id": "msk-001", "transaction_id": "U-1", "refund_id": "U-1"},
            )
    finally:
        await conn.close()
    assert back.status_code == 200, back.text
    assert back.json()["card"]["tier"] == "base"
    moved = await _fetchval(
        url, "SELECT payload FROM outbox WHERE kind = 'tier_change' ORDER BY event_id DESC LIMIT 1"
    )
    assert moved == {"card": card, "from": "silver", "to": "base"}
