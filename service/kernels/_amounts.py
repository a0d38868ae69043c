"""Line amounts and the input checks on them, over the line array (``money.line_amount``)."""

# Kernels take their types from the arrays numba sees; annotations would only repeat them.
# mypy: allow-untyped-defs

from __future__ import annotations

from service.kernels._jit import jit
from service.kernels._layout import L_AMOUNT, L_EXCLUDED, L_PRICE, L_QUANTITY

_MILLI = 1_000


@jit
def _line_amounts(lines, max_quantity, max_unit_price, max_total):
    """Fill ``lines[:, L_AMOUNT]``; return (subtotal, loyalty subtotal), or (-1, -1) when a
    quantity, a price or the total is out of range (``facts.check_receipt`` then says which).
    """
    subtotal = 0
    loyalty = 0
    for i in range(lines.shape[0]):
        quantity = lines[i, L_QUANTITY]
        price = lines[i, L_PRICE]
        if not (0 < quantity <= max_quantity and 0 <= price <= max_unit_price):
            return -1, -1
        amount = (quantity * price + _MILLI // 2) // _MILLI
        lines[i, L_AMOUNT] = amount
        subtotal += amount
        if not lines[i, L_EXCLUDED]:
            loyalty += amount
    if subtotal > max_total:
        return -1, -1
    return subtotal, loyalty
