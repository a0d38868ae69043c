"""The return use cases over in-memory ports: the reversal, the spent-points policy, replays."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.domain.errors import Conflict, IdempotencyConflict
from service.domain.reversal import SoldLine, settle_shortfall
from service.rules.demo import demo_program
from service.usecases.ports import SoldSale
from service.usecases.refund import cancel, refund
from tests.unit.rules.builders import DEMO, program
from tests.unit.usecases.fakes import FakeCards, FakePrograms, FakeReturns

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
# Two shirts at 500 roubles, 100 points (10,000 kopecks) paid on them, 24 points earned.
SHIRTS = SoldLine("1", 2000, 100_000, 0, 10_000, 90_000, 24)
SALE = SoldSale("2000000000015", False, (SHIRTS,), 100)


def _withholding() -> FakePrograms:
    points = {**demo_program()["points"], "refund_spent_policy": "withhold"}
    return FakePrograms(program(points=points))


async def _refund(returns: FakeReturns, refund_id: str, lines: dict[str, int] | None, **kw: object):  # type: ignore[no-untyped-def]
    ports = {"programs": FakePrograms(DEMO), "cards": FakeCards(), **kw}
    return await refund("msk-001", "S-1", refund_id, lines, now=NOW, returns=returns, **ports)  # type: ignore[arg-type]


def test_the_policy_withholds_whole_points_as_far_as_the_cash_goes() -> None:
    assert settle_shortfall("withhold", 30, 2_550, 100) == settle_shortfall(
        "withhold", 30, 2_599, 100
    )
    withheld = settle_shortfall("withhold", 30, 2_550, 100)
    assert (withheld.withhold, withheld.debt) == (2_500, 5)
    owed = settle_shortfall("negative_balance", 30, 2_550, 100)
    assert (owed.withhold, owed.debt) == (0, 30)


async def test_half_returned_gives_back_half_the_spent_points_and_takes_half_the_earned() -> None:
    returns = FakeReturns(SALE, points=500)
    answer = await _refund(returns, "R-1", {"1": 1000})
    assert answer["totals"] == {
        "amount": 45_000,
        "withhold": 0,
        "cash_refund": 45_000,
        "points_returned": 50,
        "points_taken": 12,
        "debt": 0,
        "referral_taken": 0,
    }
    assert returns.points == 500 + 50 - 12 and returns.tier_spend == -50_000
    assert returns.purchases_uncounted == 0  # a part: the sale still counts


async def test_earned_points_already_spent_are_withheld_or_owed_as_the_program_says() -> None:
    owed = FakeReturns(SALE, points=0)
    answer = await _refund(owed, "R-2", None)
    assert (answer["totals"]["debt"], owed.debt) == (24, 24)
    withheld = FakeReturns(SALE, points=0)
    answer = await _refund(withheld, "R-3", None, programs=_withholding())
    assert (answer["totals"]["withhold"], answer["totals"]["debt"]) == (2_400, 0)
    assert answer["totals"]["cash_refund"] == 90_000 - 2_400 and withheld.codes_released


async def test_a_refund_id_answers_its_first_answer_and_refuses_another_return() -> None:
    returns = FakeReturns(SALE, points=500)
    first = await _refund(returns, "R-4", {"1": 1000})
    assert await _refund(returns, "R-4", {"1": 1000}) == first
    assert returns.points == 500 + 50 - 12  # once
    with pytest.raises(IdempotencyConflict):
        await _refund(returns, "R-4", None)


async def test_a_cancelled_sale_takes_no_more_returns_but_its_cancel_replays() -> None:
    returns = FakeReturns(SALE, points=500)
    ports = {"programs": FakePrograms(DEMO), "cards": FakeCards(), "returns": returns}
    voided = await cancel("msk-001", "S-1", now=NOW, **ports)  # type: ignore[arg-type]
    assert voided["status"] == "cancelled" and returns.sale.cancelled
    assert returns.purchases_uncounted == 1  # reversed whole: no longer a purchase
    assert returns.limits_returned == [({"1": 2000}, True)]  # its budgets and uses: all back
    assert await cancel("msk-001", "S-1", now=NOW, **ports) == voided  # type: ignore[arg-type]
    with pytest.raises(Conflict):
        await _refund(returns, "R-5", None)
