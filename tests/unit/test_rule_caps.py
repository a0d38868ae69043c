"""Use caps and budgets in the domain: the period a receipt counts in, which rules a
view leaves no use, and the budget a sale's returns give back."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from service.domain.limits import RuleCap, period_key, use_key, used_up, uses_taken
from service.domain.reversal import SoldLine, budget_back


def test_periods_are_the_local_day_the_iso_week_and_the_month() -> None:
    sunday = date(2026, 12, 6)
    assert period_key(None, sunday) == ""
    assert period_key("day", sunday) == "d2026-12-06"
    assert period_key("week", sunday) == "w2026-11-30"  # its Monday
    assert period_key("week", date(2026, 12, 7)) == "w2026-12-07"
    assert period_key("month", sunday) == "m2026-12"
    assert use_key("r", "") == "r" and use_key("r", "d2026-12-06") == "r d2026-12-06"


def test_a_rule_is_used_up_by_everyone_or_by_this_card() -> None:
    caps = (
        RuleCap("ten", 10, None, None),
        RuleCap("daily", None, 1, "day"),
        RuleCap("both", 5, 2, "month"),
    )
    uses = uses_taken(caps, date(2026, 12, 7))
    assert used_up(uses, {}, {}) == frozenset()
    assert used_up(uses, {"ten": 10}, {}) == {"ten"}
    assert used_up(uses, {"ten": 9}, {"daily d2026-12-07": 1}) == {"daily"}
    assert used_up(uses, {}, {"daily d2026-12-06": 1}) == frozenset()  # yesterday's
    assert used_up(uses, {"both m2026-12": 5}, None) == {"both"}
    assert used_up(uses, {}, {"both m2026-12": 2}) == {"both"}
    assert used_up(uses, {}, None) == frozenset()  # no card: the rule asks for one anyway


LINES = (
    SoldLine("1", 3000, 90_000, 9_000, 0, 81_000, 0),
    SoldLine("2", 1500, 30_000, 0, 0, 30_000, 0),
    SoldLine("3", 1000, 0, 0, 0, 0, 0),
)


@given(
    used=st.integers(0, 10**9),
    steps=st.lists(st.tuples(st.sampled_from(["1", "2", "3"]), st.integers(1, 1500)), max_size=8),
)
def test_returns_give_back_a_budget_in_proportion_and_all_of_it_in_the_end(
    used: int, steps: list[tuple[str, int]]
) -> None:
    sold = {line.line_id: line.quantity for line in LINES}
    returned: dict[str, int] = {}
    back = 0
    for line_id, quantity in steps:
        returned[line_id] = min(sold[line_id], returned.get(line_id, 0) + quantity)
        now = budget_back(used, LINES, returned)
        assert back <= now <= used  # never less than before, never more than was used
        back = now
    assert budget_back(used, LINES, sold) == used
    assert budget_back(used, LINES, {"1": 1500}) == used * 45_000 // 120_000
