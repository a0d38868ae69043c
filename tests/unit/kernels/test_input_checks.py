"""Input outside the engine's exact range: the kernels refuse it as the reference does.

The kernels check the lines in their own pass (``_line_amounts``) and, when it finds
something wrong, let ``facts.check_receipt`` name it; these cases hold the two paths to
the same error, word for word.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from service import kernels
from service.domain.calculation import CalculationContext
from service.domain.errors import InvalidInput
from service.domain.receipt import (
    MAX_LINES,
    MAX_QUANTITY,
    MAX_RECEIPT_AMOUNT,
    MAX_UNIT_PRICE,
    Receipt,
    ReceiptLine,
)
from service.kernels import reference
from tests.unit.rules.builders import DEMO, FRIDAY_EVENING, MSK, dress

GOOD = dress("1", 10_000)


def _receipt(*lines: ReceiptLine, **fields: Any) -> Receipt:
    return Receipt(MSK.store_id, FRIDAY_EVENING, tuple(lines), **fields)


CASES = {
    "zero quantity": _receipt(GOOD, replace(GOOD, line_id="2", quantity=0)),
    "quantity too large": _receipt(replace(GOOD, quantity=MAX_QUANTITY + 1)),
    "negative price": _receipt(GOOD, replace(GOOD, line_id="2", unit_price=-1)),
    "price too large": _receipt(replace(GOOD, unit_price=MAX_UNIT_PRICE + 1)),
    "price past 64 bits": _receipt(GOOD, replace(GOOD, line_id="2", unit_price=10**20)),
    "first bad line named": _receipt(
        replace(GOOD, line_id="7", quantity=0), replace(GOOD, line_id="8", unit_price=-1)
    ),
    "total too large": _receipt(
        *(
            replace(GOOD, line_id=str(i), quantity=MAX_QUANTITY, unit_price=MAX_UNIT_PRICE)
            for i in range(MAX_RECEIPT_AMOUNT // (MAX_QUANTITY * MAX_UNIT_PRICE // 1000) + 1)
        )
    ),
    "too many lines": _receipt(*(replace(GOOD, line_id=str(i)) for i in range(MAX_LINES + 1))),
    "naive timestamp": replace(_receipt(GOOD), timestamp=FRIDAY_EVENING.replace(tzinfo=None)),
    "redeem out of range": _receipt(GOOD, redeem_points=-1),
}


@pytest.mark.parametrize("receipt", CASES.values(), ids=CASES.keys())
def test_same_refusal_as_reference(receipt: Receipt) -> None:
    ctx = CalculationContext(MSK, FRIDAY_EVENING, None)
    with pytest.raises(InvalidInput) as expected:
        reference.evaluate(receipt, ctx, DEMO)
    for evaluate in (kernels.evaluate, lambda r, c, p: kernels.evaluate_batch([r], [c], p)):
        with pytest.raises(InvalidInput) as refused:
            evaluate(receipt, ctx, DEMO)
        assert (str(refused.value), refused.value.code) == (
            str(expected.value),
            expected.value.code,
        )


def test_at_the_limits_it_calculates() -> None:
    price = MAX_RECEIPT_AMOUNT * 1000 // MAX_QUANTITY  # the largest total there may be
    receipt = _receipt(replace(GOOD, quantity=MAX_QUANTITY, unit_price=price))
    ctx = CalculationContext(MSK, FRIDAY_EVENING, None)
    assert kernels.evaluate(receipt, ctx, DEMO) == reference.evaluate(receipt, ctx, DEMO)
