"""Returns reverse exactly what the sale did, whatever the steps."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain.errors import InvalidInput, QuantityExceeded
from service.domain.reversal import SoldLine, reverse, share
from tests.profiles import examples

DRESS = SoldLine("1", 1000, 349900, 17495, 50000, 282405, 84)
MOJITO = SoldLine("2", 2000, 90000, 0, 0, 90000, 27)


def test_full_return_reverses_everything() -> None:
    reversal = reverse([DRESS, MOJITO], 500, {}, None)
    assert reversal.complete
    assert reversal.money == 282405 + 90000
    assert reversal.points_paid_back == 500 and reversal.points_earned_back == 84 + 27
    assert reversal.tier_spend == 349900 - 17495 + 90000


def test_returning_one_of_two_mojitos_reverses_half() -> None:
    reversal = reverse([DRESS, MOJITO], 500, {}, {"2": 1000})
    (line,) = reversal.lines
    assert (line.money, line.points_earned_back, line.points_paid_back) == (45000, 13, 0)
    assert not reversal.complete
    second = reverse([DRESS, MOJITO], 500, {"2": 1000}, {"2": 1000})
    assert second.lines[0].points_earned_back == 14  # 13 + 14 = the 27 earned


def test_returning_more_than_sold_is_refused() -> None:
    with pytest.raises(QuantityExceeded):
        reverse([DRESS, MOJITO], 0, {"2": 1500}, {"2": 1000})
    with pytest.raises(InvalidInput):
        reverse([DRESS], 0, {}, {"9": 1000})
    with pytest.raises(InvalidInput):
        reverse([DRESS], 0, {"1": 1000}, None)


@settings(max_examples=examples(300), deadline=None)
@given(
    amount=st.integers(0, 10**9),
    total=st.integers(1, 10**6),
    cuts=st.lists(st.integers(1, 10**6), max_size=8),
)
def test_shares_telescope_to_the_whole(amount: int, total: int, cuts: list[int]) -> None:
    returned, reversed_sum = 0, 0
    for cut in cuts:
        step = min(cut, total - returned)
        if step == 0:
            break
        part = share(amount, returned, step, total)
        assert part >= 0
        reversed_sum += part
        returned += step
    reversed_sum += share(amount, returned, total - returned, total)
    assert reversed_sum == amount
