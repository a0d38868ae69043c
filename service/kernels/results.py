"""The kernels' output arrays as a ``CalculationResult``, in as few Python operations as can be.

Per line the answer is a ``LineResult`` and its ``AppliedRule``s: frozen slots
dataclasses, whose generated ``__init__`` sets every field through
``object.__setattr__`` (1.1 µs per LineResult, 0.6 µs per AppliedRule). They are the
one part of the result that grows with the receipt, so they are built here column by
column (``frozen_instances``). The rest of the answer (totals, promo codes, messages)
is ``facts.build_result``'s, shared with the reference; the tests hold the lines and
verdicts built here equal to the ones it builds plainly. ``kernel_columns`` builds
none of these objects: its ``ColumnResult`` is what /v1/calculate turns into JSON.
"""

from __future__ import annotations

from typing import NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

from service.domain.calculation import (
    AppliedRule,
    CalculationContext,
    CalculationResult,
    LineResult,
    RuleVerdict,
)
from service.domain.frozen import frozen_instances
from service.domain.receipt import Receipt
from service.kernels._layout import T_REDEEMABLE, T_REDEEMED
from service.rules.codes import REASONS
from service.rules.compiler import CompiledProgram
from service.rules.facts import RawOutcome, ReceiptFacts, ResultParts, build_result, result_parts

IntArray = npt.NDArray[np.int64]
T = TypeVar("T")

_REASON_TEXT: tuple[str | None, ...] = tuple(reason or None for reason in REASONS)


def _raw_outcome(
    line_out: IntArray, verdicts: IntArray, totals: IntArray
) -> tuple[RawOutcome, list[int]]:
    """The outputs as the shared result code reads them, and the final amounts."""
    redeemable_max, redeemed = totals[T_REDEEMABLE : T_REDEEMED + 1].tolist()
    discounts, points_paid, points_earned, finals = line_out.T.tolist()  # O_* order
    rules, reasons, amounts, points = verdicts.T.tolist()  # V_* order
    reason_texts = [_REASON_TEXT[reason] for reason in reasons]
    raw = RawOutcome(
        discounts=discounts,
        points_paid=points_paid,
        points_earned=points_earned,
        applied=[],  # not read: the lines are built from the array
        verdicts=list(zip(rules, reason_texts, amounts, points, strict=True)),
        redeemable_max=redeemable_max,
        redeemed=redeemed,
    )
    return raw, finals


def _line_columns(
    receipt: Receipt, facts: ReceiptFacts, raw: RawOutcome, finals: list[int]
) -> tuple[list[str], tuple[int, ...], list[int], list[int], list[int], list[int]]:
    """Each line's id, amount, discount, points paid, final amount and points earned, by
    column: ``LineResult``'s fields before ``applied``, and ``ColumnResult``'s."""
    return (
        [line.line_id for line in receipt.lines], facts.amounts, raw.discounts,
        raw.points_paid, finals, raw.points_earned,
    )  # fmt: skip


def kernel_result(
    receipt: Receipt,
    ctx: CalculationContext,
    program: CompiledProgram,
    facts: ReceiptFacts,
    line_out: IntArray,
    verdicts: IntArray,
    applied: IntArray,
    totals: IntArray,
) -> CalculationResult:
    """The answer from one receipt's outputs (``verdicts`` and ``applied`` cut to their counts)."""
    raw, finals = _raw_outcome(line_out, verdicts, totals)
    count = len(finals)
    lines = frozen_instances(
        LineResult,
        count,
        *_line_columns(receipt, facts, raw, finals),
        _applied_per_line(program, applied, count),
    )
    verdict_list = _rule_verdicts(program, raw.verdicts)
    return build_result(receipt, ctx, program, facts, raw, tuple(lines), verdict_list)


class ColumnResult(NamedTuple):
    """A ``CalculationResult`` by column, without its ~30 frozen objects per receipt.

    Line ``i`` is ``line_ids[i]``, ``amounts[i]``, ... ``applied[i]``; ``applied``
    holds each line's (rule id, name, amount) and ``rules`` each verdict's fields in
    ``RuleVerdict`` order. On the benchmark's 10-line receipt (demo program) the kernel
    call and the answer's dicts took 47 µs this way against 61 µs through the objects
    (best of 7 interleaved rounds, idle 2-core dev box).
    """

    program_version: int
    line_ids: list[str]
    amounts: tuple[int, ...]
    discounts: list[int]
    points_paid: list[int]
    finals: list[int]
    points_earned: list[int]
    applied: list[list[tuple[str, str, int]]]
    rules: list[tuple[str, str, bool, str | None, int, int]]
    parts: ResultParts


def kernel_columns(
    receipt: Receipt,
    ctx: CalculationContext,
    program: CompiledProgram,
    facts: ReceiptFacts,
    line_out: IntArray,
    verdicts: IntArray,
    applied: IntArray,
    totals: IntArray,
) -> ColumnResult:
    """``kernel_result``'s answer by column."""
    raw, finals = _raw_outcome(line_out, verdicts, totals)
    ids, names = program.rule_ids, program.rule_names
    per_line: list[list[tuple[str, str, int]]] = [[] for _ in finals]
    if applied.shape[0]:
        for line, r, amount in applied.tolist():  # A_LINE, A_RULE, A_AMOUNT
            per_line[line].append((ids[r], names[r], amount))
    return ColumnResult(
        program.version,
        *_line_columns(receipt, facts, raw, finals),
        per_line,
        [
            (ids[r], names[r], True, None, amount, point)
            if reason is None
            else (ids[r], names[r], False, reason, 0, 0)
            for r, reason, amount, point in raw.verdicts
        ],
        result_parts(receipt, ctx, program, facts, raw),
    )


def _rule_verdicts(
    program: CompiledProgram, verdicts: list[tuple[int, str | None, int, int]]
) -> tuple[RuleVerdict, ...]:
    """Refusals from the program's cache, the others built here.

    One per candidate rule, not per line: built column by column they measured no
    faster (demo program, 7 of 10 applied: the whole call 161 µs that way, 153 µs so).
    """
    refusal, ids, names = program.refusal, program.rule_ids, program.rule_names
    return tuple(
        [
            RuleVerdict(ids[r], names[r], True, None, amount, point)
            if reason is None
            else refusal(r, reason)
            for r, reason, amount, point in verdicts
        ]
    )


def _applied_per_line(
    program: CompiledProgram, applied: IntArray, count: int
) -> list[tuple[AppliedRule, ...]]:
    """Each line's applied rules in the order they applied (the kernel writes them so).

    Built together with ``frozen_instances``: at 100 lines (about 120 applied) the whole
    ``evaluate`` took 387 µs against 483 µs with a loop of ``AppliedRule(...)``, and no
    longer at 10 lines.
    """
    per_line: list[tuple[AppliedRule, ...]] = [()] * count
    if not applied.shape[0]:
        return per_line
    lines, rules, amounts = applied.T.tolist()  # A_LINE, A_RULE, A_AMOUNT
    ids, names = program.rule_ids, program.rule_names
    instances = frozen_instances(
        AppliedRule,
        len(rules),
        [ids[r] for r in rules],
        [names[r] for r in rules],
        amounts,
    )
    for line, instance in zip(lines, instances, strict=True):
        per_line[line] += (instance,)
    return per_line
