"""The kernels and the reference evaluator give identical answers on random input."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service import kernels
from service.domain.calculation import CalculationContext
from service.domain.receipt import Receipt
from service.kernels import reference
from service.rules.compiler import compile_program
from service.rules.document import parse_program
from tests.profiles import examples
from tests.unit.kernels.strategies import programs, scenarios
from tests.unit.rules.builders import check_fiscal, check_invariants

# Deterministic and database-free, so CI runs the same few thousand cases every time.
DIFFERENTIAL = settings(
    max_examples=examples(1_500),
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@DIFFERENTIAL
@given(document=programs(), scenario=scenarios())
def test_kernel_equals_reference(
    document: dict[str, Any], scenario: tuple[Receipt, CalculationContext]
) -> None:
    program = compile_program(parse_program(document), version=3)
    receipt, ctx = scenario
    expected = reference.evaluate(receipt, ctx, program)
    assert kernels.evaluate(receipt, ctx, program) == expected
    check_invariants(expected, program)
    check_fiscal(expected, receipt, program)


@settings(DIFFERENTIAL, max_examples=examples(500))
@given(document=programs(stamps=8), scenario=scenarios())
def test_kernel_equals_reference_on_stamp_cards(
    document: dict[str, Any], scenario: tuple[Receipt, CalculationContext]
) -> None:
    """Programs where most discounts are stamp cards, on cards holding stamps: the free
    units, the stamps added and the reasons (``not_enough_stamps``) agree too."""
    program = compile_program(parse_program(document), version=3)
    receipt, ctx = scenario
    expected = reference.evaluate(receipt, ctx, program)
    assert kernels.evaluate(receipt, ctx, program) == expected
    check_invariants(expected, program)
    check_fiscal(expected, receipt, program)


@settings(DIFFERENTIAL, max_examples=examples(300))
@given(document=programs(stamps=3), batch=st.lists(scenarios(), max_size=6))
def test_batch_equals_one_by_one(
    document: dict[str, Any], batch: list[tuple[Receipt, CalculationContext]]
) -> None:
    program = compile_program(parse_program(document), version=3)
    receipts = [receipt for receipt, _ in batch]
    ctxs = [ctx for _, ctx in batch]
    expected = [reference.evaluate(r, c, program) for r, c in batch]
    assert kernels.evaluate_batch(receipts, ctxs, program) == expected
