"""The kernels' column-wise answer (what /v1/calculate shows) equals the reference's."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings

from service import kernels
from service.domain.calculation import CalculationContext
from service.domain.receipt import Receipt
from service.rules import reference
from service.rules.compiler import compile_program
from service.rules.document import parse_program
from service.usecases.calculate import Calculation, answer_view
from tests.profiles import examples
from tests.unit.kernels.strategies import programs, scenarios
from tests.unit.kernels.test_differential import DIFFERENTIAL


@settings(DIFFERENTIAL, max_examples=examples(800))
@given(document=programs(), scenario=scenarios())
def test_columns_answer_equals_the_reference_view(
    document: dict[str, Any], scenario: tuple[Receipt, CalculationContext]
) -> None:
    program = compile_program(parse_program(document), version=3)
    receipt, ctx = scenario
    expected = reference.evaluate(receipt, ctx, program)
    shown = Calculation(receipt, ctx.store, ctx.card, program, expected, ctx.now).view()
    columns = kernels.evaluate_columns(receipt, ctx, program)
    answer = answer_view(columns, ctx.card, program, ctx.now)
    assert orjson.dumps(answer) == orjson.dumps(shown)  # same keys, order and types
    assert columns.parts.budget_use == dict(expected.budget_use)
    assert columns.parts.tier_spend == expected.tier_spend
