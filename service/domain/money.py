"""Integer money arithmetic: amounts in kopecks, quantities in thousandths, rates in basis points.

Every function here is exact integer arithmetic; each docstring states its rounding rule.
The numba kernels repeat these rules line for line, and the tests hold the two equal.
"""

from __future__ import annotations

from collections.abc import Sequence

BP_SCALE = 10_000  # basis points in one whole (100 %)
MILLI = 1_000  # thousandths in one unit of quantity

ROUNDING_MODES = ("down", "half_up", "up")


def line_amount(quantity_milli: int, unit_price: int) -> int:
    """Amount of a line in kopecks: quantity (thousandths) x unit price, rounded half up.

    0.532 kg at 19990 kopecks/kg is 10634.68 kopecks, which rounds to 10635.
    """
    if quantity_milli < 0 or unit_price < 0:
        raise ValueError("quantity and unit price must not be negative")
    return (quantity_milli * unit_price + MILLI // 2) // MILLI


def percent_of(amount: int, bp: int) -> int:
    """``bp`` basis points of ``amount``, rounded half up (5 % of 1999 kopecks is 100)."""
    return (amount * bp + BP_SCALE // 2) // BP_SCALE


def divide_rounded(numerator: int, denominator: int, rounding: str) -> int:
    """``numerator / denominator`` for non-negative integers, rounded as ``rounding`` says.

    ``down`` truncates, ``half_up`` rounds halves away from zero, ``up`` rounds any
    fraction up.
    """
    if rounding == "down":
        return numerator // denominator
    if rounding == "half_up":
        return (numerator + denominator // 2) // denominator
    if rounding == "up":
        return -(-numerator // denominator)
    raise ValueError(f"unknown rounding mode {rounding!r}")


def allocate_largest_remainder(
    total: int, weights: Sequence[int], caps: Sequence[int] | None = None
) -> list[int]:
    """Split ``total`` over lines in proportion to ``weights``, exactly.

    Rule: each open line gets the floor of its proportional share; the kopecks left
    over go one each to the lines with the largest remainders, ties to the earlier
    line. A line whose share would pass its cap is filled to its cap and closed, and
    the rest is split again over the lines still open. When no open line has weight
    left, the rest fills the open lines' caps in line order. The shares sum to
    ``total``, none is negative, none passes its cap.

    Raises ``ValueError`` when the caps cannot hold ``total`` or an input is negative.
    """
    count = len(weights)
    limits = list(caps) if caps is not None else [total] * count
    if total < 0 or min(weights, default=0) < 0 or min(limits, default=0) < 0:
        raise ValueError("allocation inputs must not be negative")
    if total > sum(limits):
        raise ValueError("caps cannot hold the total")
    shares = [0] * count
    open_lines = [i for i in range(count) if limits[i] > 0]
    left = total
    while left > 0:
        weight_sum = sum(weights[i] for i in open_lines)
        if weight_sum == 0:
            return _fill_in_line_order(shares, open_lines, limits, left)
        tentative = _proportional_shares(left, [weights[i] for i in open_lines], weight_sum)
        overflowing = [
            i for i, share in zip(open_lines, tentative, strict=True) if share > limits[i]
        ]
        if not overflowing:
            for i, share in zip(open_lines, tentative, strict=True):
                shares[i] = share
            return shares
        for i in overflowing:
            shares[i] = limits[i]
            left -= limits[i]
        open_lines = [i for i in open_lines if i not in overflowing]
    return shares


def _proportional_shares(total: int, weights: list[int], weight_sum: int) -> list[int]:
    """Floors of ``total * w / weight_sum`` plus one each to the largest remainders."""
    shares = [total * w // weight_sum for w in weights]
    remainders = [total * w % weight_sum for w in weights]
    leftover = total - sum(shares)
    by_remainder = sorted(range(len(weights)), key=lambda k: (-remainders[k], k))
    for k in by_remainder[:leftover]:
        shares[k] += 1
    return shares


def _fill_in_line_order(
    shares: list[int], open_lines: list[int], limits: list[int], left: int
) -> list[int]:
    for i in open_lines:
        take = min(limits[i] - shares[i], left)
        shares[i] += take
        left -= take
    return shares


def spread_by_remainder(numerators: Sequence[int], denominator: int, total: int) -> list[int]:
    """Spread a receipt-level rounded quotient over lines exactly.

    Line ``i`` holds the exact value ``numerators[i] / denominator``; ``total`` is
    their sum rounded per receipt (``floor(sum) <= total <= ceil(sum)`` across lines).
    Rule: each line gets the floor of its own value; the units left over go one each
    to the lines with the largest remainders, ties to the earlier line. No product of
    two large numbers is formed, so the kernels can do the same in 64-bit integers.
    """
    shares = [n // denominator for n in numerators]
    leftover = total - sum(shares)
    if leftover < 0 or leftover > sum(1 for n in numerators if n % denominator):
        raise ValueError("total is not a rounding of the sum of the line values")
    order = sorted(range(len(numerators)), key=lambda k: (-(numerators[k] % denominator), k))
    for k in order[:leftover]:
        shares[k] += 1
    return shares
