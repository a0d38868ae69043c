"""The sale lifecycle on the ledger of record: calculate, commit, refund, cancel.

Real Postgres and Redis through the real app. Every test works on cards of its own.
Receipts are of shirts (no time-dependent rule of the demo touches them): a base card
earns 1% of what it pays in money, rounded down per receipt.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from service.rules.demo import demo_program
from service.usecases.refund import refund
from tests.clock import FRIDAY_NOON
from tests.conftest import POS
from tests.integration.conftest import NewCard
from tests.unit.rules.builders import program
from tests.unit.usecases.fakes import FakePrograms

_codes = itertools.count(1)


def shirts(
    card: str | None,
    *,
    redeem: int | str = 0,
    days_ago: float = 0.05,
    lines: int = 1,
    price: int = 100_000,
    **extra: Any,
) -> dict[str, Any]:
    when = datetime.now(UTC) - timedelta(days=days_ago)
    body: dict[str, Any] = {
        "store_id": "msk-001",
        "timestamp": when.isoformat(),
        "card": card,
        "payment_method": "card",
        "redeem_points": redeem,
        "lines": [
            {"line_id": str(i + 1), "sku": f"SHIRT-{i}", "category": "shirts", "quantity": "2",
             "unit_price": price // 2}
            for i in range(lines)
        ],
    }  # fmt: skip
    body.update(extra)
    return body


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
    return await client.post(path, json=body, headers=POS)


async def card_info(client: httpx.AsyncClient, number: str) -> dict[str, Any]:
    response = await client.get(f"/v1/cards/{number}", headers=POS)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_commit_records_what_was_shown_and_replays(
    client: httpx.AsyncClient, new_card: NewCard, ledger_db: asyncpg.Connection
) -> None:
    number = await new_card(1_000)
    receipt = shirts(number, redeem=300)
    shown = (await post(client, "/v1/calculate", receipt)).json()
    assert shown["totals"]["points_redeemed"] == 300
    sale = {**receipt, "transaction_id": "S-1", "calculation_id": shown["calculation_id"]}
    first = await post(client, "/v1/commit", sale)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["totals"] == shown["totals"] and body["lines"] == shown["lines"]
    # 1,000.00 roubles, 300 paid by points: 700 in money earn 1% = 7 points, pending.
    assert body["totals"]["points_earned"] == 7
    assert body["card"]["balance"] == 700 and body["card"]["pending"] == 7
    again = await post(client, "/v1/commit", sale)
    assert again.status_code == 200 and again.json() == body
    info = await card_info(client, number)
    assert (info["balance"], info["pending"]) == (700, 7)
    kinds = await ledger_db.fetch(
        "SELECT e.kind, e.points FROM ledger_entries e JOIN cards c USING (card_id)"
        " WHERE c.number = $1 ORDER BY e.entry_id",
        number,
    )
    assert [(r["kind"], r["points"]) for r in kinds] == [
        ("adjustment", 1000),
        ("redemption", -300),
        ("accrual", 7),
    ]


async def test_same_transaction_id_with_another_receipt_is_409(
    client: httpx.AsyncClient, new_card: NewCard
) -> None:
    number = await new_card(500)
    sale = {**shirts(number), "transaction_id": "S-2"}
    assert (await post(client, "/v1/commit", sale)).status_code == 200
    other = {**sale, "lines": [{**sale["lines"][0], "unit_price": 1}]}
    response = await post(client, "/v1/commit", other)
    assert response.status_code == 409
    assert response.json()["error"] == "idempotency_conflict"


async def test_an_overspend_is_409_with_the_balance_and_writes_nothing(
    client: httpx.AsyncClient, new_card: NewCard, ledger_db: asyncpg.Connection
) -> None:
    number = await new_card(100)
    shown = (await post(client, "/v1/calculate", shirts(number, redeem=100))).json()
    elsewhere = {**shirts(number, redeem=100), "transaction_id": "S-3a"}
    assert (await post(client, "/v1/commit", elsewhere)).status_code == 200
    late = {**shirts(number, redeem=100), "transaction_id": "S-3b",
            "calculation_id": shown["calculation_id"]}  # fmt: skip
    response = await post(client, "/v1/commit", late)
    assert response.status_code == 409
    assert response.json()["error"] == "insufficient_points"
    assert response.json()["balance"] == 0
    written = await ledger_db.fetchval(
        "SELECT count(*) FROM receipts WHERE store_id = 'msk-001' AND transaction_id = 'S-3b'"
    )
    assert written == 0


async def test_the_same_commit_100_times_at_once_has_one_effect(
    client: httpx.AsyncClient, new_card: NewCard, ledger_db: asyncpg.Connection
) -> None:
    number = await new_card(1_000)
    sale = {**shirts(number, redeem=200), "transaction_id": f"S-4-{number}"}
    responses = await asyncio.gather(*(post(client, "/v1/commit", sale) for _ in range(100)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.text for r in responses}) == 1
    entries = await ledger_db.fetch(
        "SELECT e.kind, e.points FROM ledger_entries e JOIN cards c USING (card_id)"
        " WHERE c.number = $1 AND e.kind <> 'adjustment'",
        number,
    )
    assert sorted((r["kind"], r["points"]) for r in entries) == [
        ("accrual", 8),
        ("redemption", -200),
    ]
    assert (await card_info(client, number))["balance"] == 800


async def test_50_concurrent_spends_never_overdraw_a_balance(
    client: httpx.AsyncClient, new_card: NewCard
) -> None:
    number = await new_card(1_000)
    sales = [{**shirts(number, redeem=100), "transaction_id": f"S-5-{i}"} for i in range(50)]
    responses = await asyncio.gather(*(post(client, "/v1/commit", s) for s in sales))
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 10 and statuses.count(409) == 40, statuses
    assert all(
        r.json()["error"] == "insufficient_points" for r in responses if r.status_code == 409
    )
    assert (await card_info(client, number))["balance"] == 0


async def test_a_partial_then_a_full_return_reverse_the_sale_exactly(
    client: httpx.AsyncClient, new_card: NewCard
) -> None:
    number = await new_card(1_000)
    sale = {**shirts(number, redeem=333, lines=2), "transaction_id": "S-6"}
    sold = (await post(client, "/v1/commit", sale)).json()
    earned, redeemed = sold["totals"]["points_earned"], sold["totals"]["points_redeemed"]
    part = {"store_id": "msk-001", "transaction_id": "S-6", "refund_id": "R-6a",
            "lines": [{"line_id": "2", "quantity": "1"}]}  # fmt: skip
    first = await post(client, "/v1/refund", part)
    assert first.status_code == 200, first.text
    assert first.json()["lines"][0]["quantity"] == "1"
    rest = await post(client, "/v1/refund", {**part, "refund_id": "R-6b", "lines": None})
    assert rest.status_code == 200, rest.text
    both = [first.json()["totals"], rest.json()["totals"]]
    assert sum(t["points_taken"] for t in both) == earned
    assert sum(t["points_returned"] for t in both) == redeemed
    paid = sum(line["final_amount"] for line in sold["lines"])
    assert sum(t["amount"] for t in both) == paid
    info = await card_info(client, number)
    assert (info["balance"], info["pending"]) == (1_000, 0)


async def test_returning_more_than_was_sold_is_422_and_changes_nothing(
    client: httpx.AsyncClient, new_card: NewCard
) -> None:
    number = await new_card(0)
    await post(client, "/v1/commit", {**shirts(number), "transaction_id": "S-7"})
    body = {"store_id": "msk-001", "transaction_id": "S-7", "refund_id": "R-7",
            "lines": [{"line_id": "1", "quantity": "3"}]}  # fmt: skip
    response = await post(client, "/v1/refund", body)
    assert response.status_code == 422 and response.json()["error"] == "quantity_exceeded"
    ok = await post(client, "/v1/refund", {**body, "lines": [{"line_id": "1", "quantity": "2"}]})
    assert ok.status_code == 200, ok.text  # the refused return took nothing of the 2 sold
    unknown = await post(
        client, "/v1/refund", {**body, "refund_id": "R-7x", "transaction_id": "nope"}
    )
    assert unknown.status_code == 404


async def test_refund_ids_are_idempotent(client: httpx.AsyncClient, new_card: NewCard) -> None:
    number = await new_card(0)
    await post(client, "/v1/commit", {**shirts(number, lines=2), "transaction_id": "S-8"})
    body = {"store_id": "msk-001", "transaction_id": "S-8", "refund_id": "R-8",
            "lines": [{"line_id": "1", "quantity": "1"}]}  # fmt: skip
    first = await post(client, "/v1/refund", body)
    again = await post(client, "/v1/refund", body)
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    other = await post(client, "/v1/refund", {**body, "lines": [{"line_id": "2", "quantity": "1"}]})
    assert other.status_code == 409 and other.json()["error"] == "idempotency_conflict"


async def test_refund_after_the_earned_points_were_spent_leaves_a_debt(
    client: httpx.AsyncClient, new_card: NewCard
) -> None:
    number = await new_card(0)
    # A sale 20 days ago: its 10 points are past the 14-day pending period, so active.
    sale = {**shirts(number, price=1_000_000, days_ago=20), "transaction_id": "S-9"}
    assert (await post(client, "/v1/commit", sale)).json()["totals"]["points_earned"] == 100
    assert (await card_info(client, number))["balance"] == 100
    spend = {**shirts(number, redeem=100), "transaction_id": "S-9b"}
    assert (await post(client, "/v1/commit", spend)).status_code == 200
    back = await post(client, "/v1/cancel", {"store_id": "msk-001", "transaction_id": "S-9"})
    assert back.status_code == 200, back.text
    totals = back.json()["totals"]
    assert back.json()["policy"] == "negative_balance"
    assert (totals["points_taken"], totals["debt"], totals["withhold"]) == (100, 100, 0)
    assert back.json()["card"]["balance"] == -100
    info = await card_info(client, number)
    assert info["balance"] == -100
    owed = await post(client, "/v1/calculate", shirts(number, redeem=10))
    assert owed.json()["totals"]["points_redeemable_max"] == 0
    # The next accrual repays the debt first (the card is silver now: 3% of 950.00).
    repay = {**shirts(number, days_ago=20), "transaction_id": "S-9c"}
    earned = (await post(client, "/v1/commit", repay)).json()["totals"]["points_earned"]
    assert earned == 28
    assert (await card_info(client, number))["balance"] == -100 + earned


async def test_withhold_policy_keeps_back_cash_for_spent_points(
    client: httpx.AsyncClient, new_card: NewCard, app: Any
) -> None:
    number = await new_card(0)
    sale = {**shirts(number, price=1_000_000, days_ago=20), "transaction_id": "S-10"}
    await post(client, "/v1/commit", sale)
    await post(client, "/v1/commit", {**shirts(number, redeem=100), "transaction_id": "S-10b"})
    services = app.state.services
    points = {**demo_program()["points"], "refund_spent_policy": "withhold"}
    withholding = FakePrograms(program(points=points))  # the demo's, but withholding
    response = await refund(
        "msk-001",
        "S-10",
        "R-10",
        None,
        now=datetime.now(UTC),
        programs=withholding,
        cards=services.cards,
        returns=services.returns,
    )
    totals = response["totals"]
    assert (totals["points_taken"], totals["withhold"], totals["debt"]) == (100, 10_000, 0)
    assert totals["cash_refund"] == totals["amount"] - 10_000
    assert response["card"]["balance"] == 0


async def test_cancel_voids_the_sale_once_and_releases_its_promo_code(
    client: httpx.AsyncClient, new_card: NewCard
) -> None:
    number = await new_card(0)
    dress = {"line_id": "1", "sku": "D1", "category": "dresses", "quantity": "1",
             "unit_price": 500_000}  # fmt: skip
    sale = {"store_id": "msk-001", "timestamp": FRIDAY_NOON, "card": number,
            "promo_codes": ["AUTUMN10"], "lines": [dress], "transaction_id": "S-11"}  # fmt: skip
    committed = (await post(client, "/v1/commit", sale)).json()
    assert committed["promo_codes"] == [{"code": "AUTUMN10", "status": "accepted", "reason": None}]
    receipt = {k: v for k, v in sale.items() if k != "transaction_id"}
    used = (await post(client, "/v1/calculate", receipt)).json()
    assert used["promo_codes"][0]["status"] == "rejected"
    cancel = {"store_id": "msk-001", "transaction_id": "S-11"}
    first, again = (
        await post(client, "/v1/cancel", cancel),
        await post(client, "/v1/cancel", cancel),
    )
    assert first.status_code == 200 and first.json() == again.json()
    assert first.json()["status"] == "cancelled"
    refund = {**cancel, "refund_id": "R-11"}
    assert (await post(client, "/v1/refund", refund)).json()["error"] == "sale_cancelled"
    reuse = (await post(client, "/v1/calculate", receipt)).json()
    assert reuse["promo_codes"][0]["status"] == "accepted"


async def test_history_pages_and_lookup_by_phone(
    client: httpx.AsyncClient, new_card: NewCard
) -> None:
    number = await new_card(1_000)
    for i in range(3):
        await post(client, "/v1/commit", {**shirts(number, redeem=10), "transaction_id": f"H-{i}"})
    page = (await client.get(f"/v1/cards/{number}/history?limit=4", headers=POS)).json()
    assert len(page["entries"]) == 4 and page["next_cursor"] is not None
    rest = await client.get(
        f"/v1/cards/{number}/history?limit=4&before={page['next_cursor']}", headers=POS
    )
    kinds = [e["kind"] for e in page["entries"] + rest.json()["entries"]]
    assert (
        kinds.count("redemption") == 3 and kinds.count("accrual") == 3 and kinds[-1] == "adjustment"
    )
    found = (await client.get("/v1/cards?phone=%2B79000000001", headers=POS)).json()
    assert found == {"cards": [{"number": "2000000000015"}]}
    assert (await client.get("/v1/cards/2999999999999", headers=POS)).status_code == 404


async def test_referral_points_go_to_both_sides_on_the_first_purchase_only(
    client: httpx.AsyncClient, new_card: NewCard
) -> None:
    friend = await new_card(0)
    newcomer = await new_card(0, referred_by=friend)
    first = await post(
        client, "/v1/commit", {**shirts(newcomer), "transaction_id": f"RF-{newcomer}"}
    )
    assert first.status_code == 200, first.text
    assert first.json()["card"]["pending"] == 300 + 10  # the referral bonus and 1% of 1,000
    assert (await card_info(client, friend))["pending"] == 300
    second = await post(
        client, "/v1/commit", {**shirts(newcomer), "transaction_id": f"RS-{newcomer}"}
    )
    assert second.json()["card"]["pending"] == 300 + 20
    assert (await card_info(client, friend))["pending"] == 300


async def _card_row(ledger_db: asyncpg.Connection, number: str) -> dict[str, Any]:
    """What the ledger holds of a card besides its view (the tier is in the view: a card's
    first sale records the tier its spend reaches, base, where none was recorded)."""
    row = await ledger_db.fetchrow(
        "SELECT c.purchase_count, c.debt,"
        " (SELECT coalesce(sum(remaining), 0) FROM point_lots l WHERE l.card_id = c.card_id)"
        " AS points FROM cards c WHERE c.number = $1",
        number,
    )
    return dict(row)


async def test_a_cancelled_referral_sale_leaves_both_cards_as_before_it(
    client: httpx.AsyncClient, new_card: NewCard, ledger_db: asyncpg.Connection
) -> None:
    friend = await new_card(1_000)
    newcomer = await new_card(0, referred_by=friend)
    before = {
        n: (await card_info(client, n), await _card_row(ledger_db, n)) for n in (friend, newcomer)
    }
    sale = {**shirts(newcomer), "transaction_id": f"RC-{newcomer}"}
    assert (await post(client, "/v1/commit", sale)).status_code == 200
    assert (await card_info(client, friend))["pending"] == 300  # the bonus went out
    cancelled = await post(
        client, "/v1/cancel", {"store_id": "msk-001", "transaction_id": sale["transaction_id"]}
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["totals"]["referral_taken"] == 600  # 300 on each side
    after = {
        n: (await card_info(client, n), await _card_row(ledger_db, n)) for n in (friend, newcomer)
    }
    assert after == before
    # Its next purchase is the first again: both bonuses go out once more.
    again = await post(
        client, "/v1/commit", {**shirts(newcomer), "transaction_id": f"RA-{newcomer}"}
    )
    assert again.json()["card"]["pending"] == 300 + 10
    assert (await card_info(client, friend))["pending"] == 300


async def test_a_referrer_who_spent_the_bonus_owes_it_when_the_sale_is_returned(
    client: httpx.AsyncClient, new_card: NewCard, ledger_db: asyncpg.Connection
) -> None:
    friend = await new_card(0)
    newcomer = await new_card(0, referred_by=friend)
    sale = {**shirts(newcomer), "transaction_id": f"RD-{newcomer}"}
    assert (await post(client, "/v1/commit", sale)).status_code == 200
    # The bonus lot activates after the return window; here it is spent at once.
    await ledger_db.execute(
        "UPDATE point_lots SET remaining = 0 FROM cards c WHERE c.number = $1"
        " AND point_lots.card_id = c.card_id",
        friend,
    )
    await ledger_db.execute(
        "INSERT INTO ledger_entries (card_id, kind, points, reason, author) SELECT card_id,"
        " 'adjustment', -300, 'spent in a test', 'tests' FROM cards WHERE number = $1",
        friend,
    )
    whole = {"store_id": "msk-001", "transaction_id": sale["transaction_id"]}
    back = await post(client, "/v1/refund", {**whole, "refund_id": f"RD-{newcomer}"})
    assert back.status_code == 200, back.text
    assert (await _card_row(ledger_db, friend))["debt"] == 300
    assert (await card_info(client, friend))["balance"] == -300


async def test_a_batch_code_is_used_up_at_its_limit(
    client: httpx.AsyncClient, new_card: NewCard, ledger_db: asyncpg.Connection
) -> None:
    code = f"ONCE{next(_codes)}"
    await ledger_db.execute(
        "INSERT INTO promo_codes (code, rule_ids, max_uses, batch_id) VALUES ($1, $2, 1, 'b1')",
        code,
        ["autumn10"],
    )
    dress = {"line_id": "1", "sku": "D1", "category": "dresses", "quantity": "1",
             "unit_price": 500_000}  # fmt: skip
    first, second = await new_card(0), await new_card(0)
    sale = {"store_id": "msk-001", "timestamp": FRIDAY_NOON,
            "promo_codes": [code.lower()], "lines": [dress]}  # fmt: skip
    shown = (await post(client, "/v1/calculate", {**sale, "card": second})).json()
    assert shown["promo_codes"] == [{"code": code, "status": "accepted", "reason": None}]
    assert shown["totals"]["discount"] == 50_000
    done = await post(client, "/v1/commit", {**sale, "card": first, "transaction_id": code})
    assert done.status_code == 200, done.text
    late = {**sale, "card": second, "transaction_id": f"{code}-2",
            "calculation_id": shown["calculation_id"]}  # fmt: skip
    refused = await post(client, "/v1/commit", late)
    assert refused.status_code == 409 and refused.json()["error"] == "promo_used_up"
    again = (await post(client, "/v1/calculate", {**sale, "card": second})).json()
    assert again["promo_codes"][0] == {"code": code, "status": "rejected", "reason": "used_up"}
    unknown = (await post(client, "/v1/calculate", {**sale, "promo_codes": ["NOSUCH"]})).json()
    assert unknown["promo_codes"][0]["reason"] == "unknown"
