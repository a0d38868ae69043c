"""Fiscal positions (SPEC §3.4): every line as positions a fiscal register (54-FZ) prints,
``unit_price × quantity = amount`` in whole units and rounded half up for weighted goods,
adding up to what the customer pays; in the reference and the kernels alike."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service import kernels
from service.domain.calculation import CalculationContext
from service.domain.fiscal import fiscal_positions
from service.domain.receipt import MAX_QUANTITY, MAX_UNIT_PRICE, Receipt, ReceiptLine
from service.kernels import reference
from service.rules.compiler import CompiledProgram
from service.rules.demo import demo_program
from tests.profiles import PROFILE
from tests.unit.rules.builders import (
    DEMO,
    FRIDAY_EVENING,
    MSK,
    SILVER_CARD,
    calculate,
    card,
    check_fiscal,
    dress,
    item,
    program,
)


def _holds(quantity: int, amount: int) -> None:
    positions = fiscal_positions(quantity, amount)
    assert sum(part for _, _, part in positions) == amount
    assert sum(units for units, _, _ in positions) == quantity
    for units, price, part in positions:
        assert units > 0 and price >= 0 and part >= 0
        if quantity % 1000 == 0:
            assert units % 1000 == 0 and price * (units // 1000) == part
        else:
            assert (price * units + 500) // 1000 == part


def test_three_units_that_do_not_divide_become_two_positions() -> None:
    # The line: 250,624 kopecks for 3 units is 83,541.33 a unit, which no register takes.
    assert fiscal_positions(3000, 250_624) == ((2000, 83_541, 167_082), (1000, 83_542, 83_542))
    assert fiscal_positions(3000, 250_623) == ((3000, 83_541, 250_623),)
    assert fiscal_positions(1000, 99) == ((1000, 99, 99),)
    assert fiscal_positions(5000, 0) == ((5000, 0, 0),)


def test_weighted_goods_take_one_rounded_position_where_a_price_exists() -> None:
    assert fiscal_positions(532, 10_000) == ((532, 18_797, 10_000),)  # 0.532 kg: 100.00
    assert (18_797 * 532 + 500) // 1000 == 10_000
    # 2.5 kg: a price step is 2.5 kopecks, so 123.46 roubles has no price of its own.
    positions = fiscal_positions(2500, 12_346)
    assert len(positions) == 2 and positions[1][0] == 1  # the last gram apart
    _holds(2500, 12_346)


@given(
    quantity=st.integers(1, MAX_QUANTITY) | st.integers(1, 1000).map(lambda units: units * 1000),
    amount=st.integers(0, 10**9),
)
def test_positions_hold_for_any_quantity_and_amount(quantity: int, amount: int) -> None:
    _holds(quantity, amount)


def test_a_hundred_thousand_random_lines() -> None:
    rng = random.Random(54)
    for _ in range(100_000):
        quantity = rng.choice((rng.randint(1, 50) * 1000, rng.randint(1, 60_000)))
        _holds(quantity, rng.randint(0, quantity * 100_000 // 1000 + 1))


def test_the_answer_carries_positions_for_what_the_customer_pays() -> None:
    # Silver's 5% on 3 dresses at 1,670.83: 250,624.5 - 5% leaves a line that does not divide.
    lines = [item("1", "460001", 3, 83_541, "dresses", "Style"), item("2", "777", 0.532, 18_800)]
    for evaluate in (reference.evaluate, kernels.evaluate):
        result = calculate(evaluate, lines, SILVER_CARD, redeem_points=100)
        receipt = Receipt(MSK.store_id, FRIDAY_EVENING, tuple(lines), card=SILVER_CARD.number)
        check_fiscal(result, receipt, DEMO)
        assert sum(p[2] for p in result.fiscal[0]) == result.finals[0]


def test_tender_mode_keeps_the_price_after_discounts() -> None:
    tender = program(points={**demo_program()["points"], "fiscal_mode": "tender"})
    for evaluate in (reference.evaluate, kernels.evaluate):
        result = calculate(evaluate, [dress()], SILVER_CARD, compiled=tender, redeem_points=500)
        assert result.points_paid[0] == 50_000
        (position,) = result.fiscal[0]
        assert position == (1000, 349_900 - result.discounts[0], 349_900 - result.discounts[0])
        discount = calculate(evaluate, [dress()], SILVER_CARD, redeem_points=500)
        assert discount.fiscal[0] == ((1000, discount.finals[0], discount.finals[0]),)


def _random_receipts(rng: random.Random, count: int) -> list[tuple[Receipt, CalculationContext]]:
    categories = ("dresses", "drinks", "shoes", None)
    out = []
    for _ in range(count):
        lines = tuple(
            ReceiptLine(
                str(i + 1),
                f"{rng.randint(1, 40):06d}",
                rng.choice((rng.randint(1, 12) * 1000, rng.randint(1, 9_999))),
                rng.randint(0, min(MAX_UNIT_PRICE, 2_000_000)),
                rng.choice(categories),
            )
            for i in range(rng.randint(1, 8))
        )
        holder = card(
            tier_spend=rng.choice((0, 1_500_000, 6_000_000)), points=rng.randint(0, 9_000)
        )
        receipt = Receipt(
            MSK.store_id, FRIDAY_EVENING, lines, card=holder.number,
            redeem_points=rng.randint(0, 5_000), redeem_max=rng.random() < 0.2,
        )  # fmt: skip
        out.append((receipt, CalculationContext(MSK, FRIDAY_EVENING, holder)))
    return out


@pytest.mark.parametrize("mode", ["discount", "tender"])
def test_random_receipts_in_the_reference_and_the_kernels(mode: str) -> None:
    """10^5 receipts in CI's thorough profile (a fiftieth in a developer's make test): the
    kernels' batch answers equal the reference's, and every position holds."""
    compiled: CompiledProgram = program(points={**demo_program()["points"], "fiscal_mode": mode})
    count = 50_000 if PROFILE == "thorough" else 1_000
    scenarios = _random_receipts(random.Random(f"fiscal-{mode}"), count)
    for start in range(0, count, 1_000):
        chunk = scenarios[start : start + 1_000]
        receipts = [receipt for receipt, _ in chunk]
        answers = kernels.evaluate_batch(receipts, [ctx for _, ctx in chunk], compiled)
        for (receipt, ctx), answer in zip(chunk, answers, strict=True):
            check_fiscal(answer, receipt, compiled)
            assert reference.evaluate(receipt, ctx, compiled).fiscal == answer.fiscal
