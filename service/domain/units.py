"""Units at the edges: quantities travel as decimal text, live as integer thousandths."""

from __future__ import annotations

from decimal import Decimal

MILLI = 1000


def quantity_text(milli: int) -> str:
    """Thousandths as the shortest decimal text: 1000 -> "1", 532 -> "0.532"."""
    if milli % MILLI == 0:  # whole units, most lines: 0.05 µs against 0.32 µs by Decimal (timeit)
        return str(milli // MILLI)
    return format(Decimal(milli).scaleb(-3).normalize(), "f")


def quantity_milli(quantity: Decimal) -> int:
    """A decimal quantity with at most 3 places as integer thousandths, exactly.

    Through the exact fraction ``n/d``: it has at most 3 places when ``d`` divides 1000
    (0.3 µs a line against 0.5 µs scaling the Decimal)."""
    numerator, denominator = quantity.as_integer_ratio()
    if MILLI % denominator:
        raise ValueError("a quantity has at most 3 decimal places")
    return numerator * (MILLI // denominator)
