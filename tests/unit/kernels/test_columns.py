"""The answer the POS is shown, from the kernels' columns, equals the reference's byte for
byte: same keys, order and JSON types (an ``Answer`` holding a numpy scalar would compare
equal to the reference's, but not serialise the same)."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings

from service import kernels
from service.domain.calculation import CalculationContext
from service.domain.receipt import Receipt
from service.kernels import reference
from service.rules.compiler import compile_program
from service.rules.document import parse_program
from service.usecases.calculate import Calculation
from tests.profiles import examples
from tests.unit.kernels.strategies import programs, scenarios
from tests.unit.kernels.test_differential import DIFFERENTIAL


@settings(DIFFERENTIAL, max_examples=examples(800))
@given(document=programs(), scenario=scenarios())
def test_answer_shown_equals_the_reference_view(
    document: dict[str, Any], scenario: tuple[Receipt, CalculationContext]
) -> None:
    program = compile_program(parse_program(document), version=3)
    receipt, ctx = scenario
    expected = reference.evaluate(receipt, ctx, program)
    answer = kernels.evaluate(receipt, ctx, program)
    shown = Calculation(receipt, ctx.store, ctx.card, program, answer, ctx.now).view()
    assert orjson.dumps(shown) == orjson.dumps(
        Calculation(receipt, ctx.store, ctx.card, program, expected, ctx.now).view()
    )
    assert (answer.budget_use, answer.tier_spend) == (expected.budget_use, expected.tier_spend)
