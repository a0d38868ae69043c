"""Rewards on a calculation over in-memory ports (usecases.rewards): a refused reward
frees its points for payment, and the answer's lines stay exact, fiscal positions too,
whichever way the program reports points."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from service.domain.receipt import Receipt
from service.domain.reward import Reward, RewardAsk
from service.kernels import Answer
from service.rules.compiler import CompiledProgram
from service.rules.demo import demo_program
from service.usecases.calculate import ReceiptLimits, SalePorts, evaluate
from tests.unit.rules.builders import DEMO, FRIDAY_EVENING, MSK, card, check_fiscal, item, program
from tests.unit.usecases.fakes import (
    FakeCards,
    FakePrograms,
    FakePromotions,
    FakeRecords,
    FakeStores,
)

NOW = FRIDAY_EVENING + timedelta(minutes=1)
LIMITS = ReceiptLimits(max_lines=1000, max_future_skew=timedelta(minutes=5))
CATALOGUE = {
    "SOCKS": Reward("SOCKS", "Free socks", "free_product", 1_000, sku="SOCKS"),
    "PCT10": Reward("PCT10", "10% off", "percent_off", 10, percent_bp=1000),
}


class FakeRewards:
    async def catalogue(self, codes: Sequence[str]) -> dict[str, Reward]:
        return {code: CATALOGUE[code] for code in codes if code in CATALOGUE}


def _evaluate(receipt: Receipt, compiled: CompiledProgram, points: int) -> Any:
    cards = FakeCards(card(points=points))
    ports = SalePorts(
        LIMITS, FakeStores(MSK), FakePrograms(compiled), cards, FakeRecords(),
        FakePromotions(), rewards=FakeRewards(),
    )  # fmt: skip
    state = asyncio.run(cards.get(receipt.card or "", NOW, compiled))
    return asyncio.run(evaluate(receipt, state, compiled, now=NOW, ports=ports))


def _receipt(*asks: RewardAsk, redeem_max: bool = True) -> Receipt:
    lines = (item("1", "SOCKS", 1, 100, "socks"), item("2", "TOP", 1, 100_000, "tops"))
    return Receipt(MSK.store_id, FRIDAY_EVENING, lines, card="2000000000015",
                   redeem_max=redeem_max, rewards=asks)  # fmt: skip


def test_a_reward_with_no_room_frees_its_points_for_payment() -> None:
    # The socks cost their floor (min_line_amount 100): nothing to take off them.
    calc = _evaluate(_receipt(RewardAsk("SOCKS")), DEMO, points=1_000)
    [verdict] = calc.rewards
    assert verdict.reason == "not_applicable" and verdict.points == 0
    assert calc.result.totals.points_redeemed == 500  # 50% of the receipt, not 0
    assert calc.points_spent == 500


def _exact(result: Answer) -> None:
    for amount, discount, paid, final in zip(
        result.amounts, result.discounts, result.points_paid, result.finals, strict=True
    ):
        assert final == amount - discount - paid
    assert result.totals.discount == sum(result.discounts)
    assert result.totals.amount_due == sum(result.finals)


def test_the_lines_stay_exact_in_both_fiscal_modes() -> None:
    document = demo_program()
    tender = program(points={**document["points"], "fiscal_mode": "tender"})
    for compiled in (DEMO, tender):
        receipt = _receipt(RewardAsk("PCT10", 3))
        calc = _evaluate(receipt, compiled, points=1_000)
        [verdict] = calc.rewards
        assert verdict.redeemed and verdict.points == 30
        _exact(calc.result)
        check_fiscal(calc.result, receipt, compiled)
        view = calc.view()
        assert view["totals"]["reward_points"] == 30
        assert sum(line["reward_points"] for line in view["lines"]) == 30
