"""Fiscal positions (SPEC §3.4): a line as the fiscal register (54-FZ) prints it.

A register takes a quantity and a unit price in kopecks and prints their product as the
amount, so a line whose amount to pay is not that product must be cut in two:

- goods sold in whole units: ``unit_price × quantity = amount`` exactly; 3 units for
  250,624 kopecks are 2 at 83,541 and 1 at 83,542;
- weighted goods (a fractional quantity): ``round_half_up(unit_price × quantity) =
  amount``, one position when such a price exists; where none does (above 1 kg the
  prices' products step by more than a kopeck), all but the last gram at the highest price
  that stays under the amount and the last gram at what is left, times 1000.

A position is ``(quantity in thousandths, unit price, amount)``; the amounts sum to the
line's, and no position is empty.
"""

from __future__ import annotations

from service.domain.units import MILLI

Position = tuple[int, int, int]  # quantity (thousandths), unit price, amount (kopecks)


def fiscal_positions(quantity: int, amount: int) -> tuple[Position, ...]:
    """``quantity`` thousandths (> 0) for ``amount`` kopecks (>= 0) as register positions."""
    if quantity % MILLI == 0:
        units = quantity // MILLI
        price, odd = divmod(amount, units)
        if not odd:
            return ((quantity, price, amount),)
        even = units - odd
        return ((even * MILLI, price, even * price), (odd * MILLI, price + 1, odd * (price + 1)))
    # The least price whose product rounds (half up) to at least amount - ½ kopeck.
    price = max(0, -((1 - 2 * amount) * 500 // quantity))
    if _rounded(price, quantity) == amount:
        return ((quantity, price, amount),)
    most = quantity - 1
    price = amount * MILLI // most  # its product is at most amount, rounded
    first = _rounded(price, most)
    if first == amount:  # the last gram would be empty: one kopeck less on the rest
        price -= 1
        first = _rounded(price, most)
    rest = amount - first
    return ((most, price, first), (1, rest * MILLI, rest))


def _rounded(price: int, quantity: int) -> int:
    """``round_half_up(price × quantity / 1000)`` for non-negative integers."""
    return (price * quantity + MILLI // 2) // MILLI
