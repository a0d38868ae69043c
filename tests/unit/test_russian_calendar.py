"""The Russian production calendar (SPEC §12): a rule for public holidays fires on one with
no date in the program, in the reference and the kernels alike."""

from __future__ import annotations

from datetime import datetime

import pytest

from service import kernels
from service.domain.calendars import public_holidays
from service.kernels import reference
from service.rules.demo import demo_program
from tests.unit.rules.builders import MOSCOW, Evaluator, calculate, item, program, verdict

HOLIDAY_SHIRTS = {
    "id": "holiday-shirts", "name": "Shirts -15% on public holidays", "priority": 5,
    "target": {"categories": ["shirts"]}, "conditions": {"on_holidays": True},
    "effect": {"type": "percent", "percent": "15"},
}  # fmt: skip


def test_the_calendar_knows_the_holidays_and_the_moved_days_off() -> None:
    days = public_holidays("RU")
    assert datetime(2027, 1, 7).date() in days  # Christmas
    assert datetime(2026, 6, 12).date() in days  # Russia Day
    assert datetime(2026, 1, 9).date() in days  # a day off moved by decree
    assert datetime(2026, 6, 15).date() not in days


@pytest.mark.parametrize("evaluate", [reference.evaluate, kernels.evaluate])
def test_a_holiday_rule_fires_on_a_public_holiday_with_no_date_in_the_program(
    evaluate: Evaluator,
) -> None:
    compiled = program(
        holidays=[], holiday_calendar="RU", rules=[*demo_program()["rules"], HOLIDAY_SHIRTS]
    )
    shirt = [item("1", "SH-1", 1, 100_000, "shirts")]
    on_russia_day = calculate(evaluate, shirt, when=datetime(2026, 6, 12, 15, 0, tzinfo=MOSCOW),
                              compiled=compiled)  # fmt: skip
    assert verdict(on_russia_day, "holiday-shirts")[:2] == (True, None)
    assert on_russia_day.discounts == [15_000]
    working_day = calculate(evaluate, shirt, when=datetime(2026, 6, 15, 15, 0, tzinfo=MOSCOW),
                            compiled=compiled)  # fmt: skip
    assert verdict(working_day, "holiday-shirts")[:2] == (False, "holiday")
