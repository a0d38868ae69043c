"""Rounding and exact allocation rules of service.domain.money."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain.money import (
    allocate_largest_remainder,
    divide_rounded,
    line_amount,
    percent_of,
    spread_by_remainder,
)
from service.domain.units import quantity_milli, quantity_text
from tests.profiles import examples


def test_line_amount_rounds_half_up() -> None:
    assert line_amount(532, 19_990) == 10_635  # 10634.68
    assert line_amount(500, 1) == 1  # 0.5 rounds up
    assert line_amount(499, 1) == 0
    with pytest.raises(ValueError):
        line_amount(-1, 100)


def test_percent_and_division_rounding() -> None:
    assert percent_of(1_999, 500) == 100  # 99.95
    assert [divide_rounded(7, 2, mode) for mode in ("down", "half_up", "up")] == [3, 4, 4]
    assert divide_rounded(6, 4, "half_up") == 2


def test_largest_remainder_ties_go_to_the_earlier_line() -> None:
    assert allocate_largest_remainder(10, [1, 1, 1]) == [4, 3, 3]
    assert allocate_largest_remainder(2, [1, 1, 1]) == [1, 1, 0]


def test_capped_lines_fill_and_the_rest_is_split_again() -> None:
    assert allocate_largest_remainder(100, [90, 10], caps=[50, 100]) == [50, 50]
    assert allocate_largest_remainder(5, [0, 0, 0], caps=[2, 2, 2]) == [2, 2, 1]
    with pytest.raises(ValueError):
        allocate_largest_remainder(10, [1, 1], caps=[4, 5])


def test_spread_by_remainder() -> None:
    # 1.6 + 1.3 + 0.9 = 3.8: floors 1, 1, 0; total 3 gives the extra unit to the 0.9
    assert spread_by_remainder([16, 13, 9], 10, 3) == [1, 1, 1]
    with pytest.raises(ValueError):
        spread_by_remainder([16, 13, 9], 10, 6)


@settings(max_examples=examples(300), derandomize=True, database=None)
@given(
    weights=st.lists(st.integers(0, 10**6), min_size=1, max_size=12),
    data=st.data(),
)
def test_allocation_is_exact_capped_and_near_proportional(
    weights: list[int], data: st.DataObject
) -> None:
    caps = data.draw(st.lists(st.integers(0, 10**6), min_size=len(weights), max_size=len(weights)))
    total = data.draw(st.integers(0, sum(caps)))
    shares = allocate_largest_remainder(total, weights, caps)
    assert sum(shares) == total
    assert all(0 <= s <= c for s, c in zip(shares, caps, strict=True))
    if total <= sum(caps) and all(c >= total for c in caps) and sum(weights):
        for share, weight in zip(shares, weights, strict=True):
            assert abs(share * sum(weights) - total * weight) < sum(weights)


@given(st.integers(-(10**15), 10**15), st.integers(0, 4))
def test_quantities_round_trip_through_thousandths(milli: int, trailing_zeros: int) -> None:
    text = quantity_text(milli) + ("." if "." not in quantity_text(milli) else "")
    padded = Decimal(text + "0" * trailing_zeros) if trailing_zeros else Decimal(text)
    assert quantity_milli(padded) == milli


@pytest.mark.parametrize("text", ["0.0005", "1.0001", "-2.1234", "NaN"])
def test_a_quantity_past_three_places_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        quantity_milli(Decimal(text))
