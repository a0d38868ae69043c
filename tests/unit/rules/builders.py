"""Receipts, cards and contexts for the rule tests, on the demo program unless told."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any

from service.domain.calculation import CalculationContext
from service.domain.card import CardState, PointLot
from service.domain.receipt import Receipt, ReceiptLine, StoreInfo
from service.kernels import Answer
from service.rules.compiler import CompiledProgram, compile_program
from service.rules.demo import DEMO_STORES, demo_program
from service.rules.document import parse_program

Evaluator = Callable[[Receipt, CalculationContext, CompiledProgram], Answer]

DEMO = compile_program(parse_program(demo_program()), version=1)
MSK, EKB, WEB = DEMO_STORES
MOSCOW = timezone(timedelta(hours=3))
# Friday 20 November 2026, 18:05 in Moscow: inside happy hours and AUTUMN10's dates.
FRIDAY_EVENING = datetime(2026, 11, 20, 18, 5, tzinfo=MOSCOW)
SATURDAY_NOON = datetime(2026, 11, 21, 12, 0, tzinfo=MOSCOW)


def program(**changes: Any) -> CompiledProgram:
    """The demo program with top-level sections replaced."""
    return compile_program(parse_program({**demo_program(), **changes}), version=2)


def item(
    line_id: str,
    sku: str,
    units: float | int,
    price: int,
    category: str | None = None,
    brand: str | None = None,
    excluded: bool = False,
) -> ReceiptLine:
    return ReceiptLine(line_id, sku, round(units * 1000), price, category, brand, excluded)


def dress(line_id: str = "1", price: int = 349_900) -> ReceiptLine:
    return item(line_id, "460001", 1, price, "dresses", "Style")


def card(
    tier_spend: int = 0,
    points: int = 0,
    now: datetime = FRIDAY_EVENING,
    **fields: Any,
) -> CardState:
    if points:
        fields.setdefault(
            "lots", (PointLot(1, points, now - timedelta(days=30), now + timedelta(days=300)),)
        )
    return CardState("2000000000015", tier_spend=tier_spend, **fields)


BASE_CARD = card(tier_spend=0, points=1_000)
SILVER_CARD = card(tier_spend=1_500_000, points=5_000)
GOLD_CARD = card(tier_spend=6_000_000, points=20_000)


def calculate(
    evaluate: Evaluator,
    lines: tuple[ReceiptLine, ...] | list[ReceiptLine],
    holder: CardState | None = None,
    *,
    store: StoreInfo = MSK,
    when: datetime = FRIDAY_EVENING,
    compiled: CompiledProgram = DEMO,
    context: dict[str, Any] | None = None,
    **receipt_fields: Any,
) -> Answer:
    receipt = Receipt(
        store.store_id,
        when,
        tuple(lines),
        card=holder.number if holder else None,
        **receipt_fields,
    )
    ctx = CalculationContext(store, when, holder, **(context or {}))
    return evaluate(receipt, ctx, compiled)


def verdict(result: Answer, rule_id: str) -> tuple[bool, str | None, int, int]:
    for rule, _, was_applied, reason, amount, points in result.rules:
        if rule == rule_id:
            return was_applied, reason, amount, points
    raise AssertionError(f"{rule_id} not in the verdicts")


def applied(result: Answer, line_id: str) -> dict[str, int]:
    given = result.applied[result.line_ids.index(line_id)]
    return {rule_id: amount for rule_id, _, amount in given}


def codes(result: Answer) -> list[str]:
    return [m.code for m in result.messages]


def check_invariants(result: Answer, compiled: CompiledProgram) -> None:
    """What every result must satisfy, whatever the program and receipt."""
    floor = compiled.settings.min_line_amount
    totals = result.totals
    assert sum(result.amounts) == totals.subtotal
    assert sum(result.discounts) == totals.discount
    assert sum(result.points_earned) == totals.points_earned
    paid = sum(result.points_paid)
    assert paid == totals.points_redeemed * compiled.settings.point_value
    assert totals.amount_due == totals.subtotal - totals.discount - paid
    assert 0 <= totals.points_redeemed <= totals.points_redeemable_max
    lines = zip(
        result.amounts,
        result.discounts,
        result.points_paid,
        result.finals,
        result.points_earned,
        result.applied,
        strict=True,
    )
    for amount, discount, points_paid, final, earned, given in lines:
        for value in (amount, discount, points_paid, final, earned):
            assert type(value) is int and value >= 0
        assert final == amount - discount - points_paid
        assert final >= min(amount, floor)
        assert sum(a for _, _, a in given) == discount
    eligible = totals.subtotal - totals.discount
    assert paid <= eligible * compiled.settings.max_share_percent // 10_000
    for _, _, was_applied, reason, amount, points in result.rules:
        assert was_applied == (reason is None)
        assert type(amount) is int and type(points) is int
    verdicts = {rule_id: (applied, reason) for rule_id, _, applied, reason, _, _ in result.rules}
    for stamps in result.stamps:
        # A stamp card gives free units only when its rule applied, one per ``every``
        # stamps it had with this sale's, and keeps the rest.
        applied, reason = verdicts[stamps.rule_id]
        assert stamps.added >= 0 and stamps.free >= 0
        assert (stamps.free > 0) == applied
        before = stamps.have - stamps.change
        assert stamps.free * stamps.every <= max(before + stamps.added, 0)
        if reason == "not_enough_stamps":
            assert before + stamps.added < stamps.every


def check_fiscal(result: Answer, receipt: Receipt, compiled: CompiledProgram) -> None:
    """Every line's fiscal positions (SPEC §3.4) add up to what the customer pays for it,
    each one a product the register prints: exact in whole units, rounded half up for
    weighted goods."""
    tender = compiled.settings.fiscal_mode == "tender"
    lines = zip(receipt.lines, result.finals, result.points_paid, result.fiscal, strict=True)
    for line, final, paid, positions in lines:
        assert sum(amount for _, _, amount in positions) == final + (paid if tender else 0)
        assert sum(quantity for quantity, _, _ in positions) == line.quantity
        assert 1 <= len(positions) <= 2
        for quantity, price, amount in positions:
            assert quantity > 0 and price >= 0 and amount >= 0
            if line.quantity % 1000 == 0:
                assert quantity % 1000 == 0 and price * (quantity // 1000) == amount
            else:
                assert (price * quantity + 500) // 1000 == amount


def birthday_in(days: int, when: datetime = FRIDAY_EVENING) -> date:
    return (when + timedelta(days=days)).date().replace(year=1990)
