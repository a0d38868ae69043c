"""The numba path of the rule engine, behind one small typed entry point.

``evaluate`` gives the same answers as ``service.rules.reference.evaluate``; the
tests hold them equal on random programs and receipts. Receipt-level facts (local
time in the store's zone, tier, balance, promo codes) are computed once in Python
by ``service.rules.facts``, the per-line arithmetic runs in the kernels, and the
result is built by the same code as the reference's except its per-line objects and
verdicts, which ``_results`` builds straight from the output arrays.

Around a 10-line receipt the Python work, not the kernel, is most of the cost, so it
is kept to one Python pass over the lines on the way in (``_line_array``) and
column-wise construction on the way out; docs/performance.md has the figures.
``evaluate_columns`` goes further for /v1/calculate, which only shows the answer: it
returns the columns themselves (``ColumnResult``), no per-line objects at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from service.domain.calculation import CalculationContext, CalculationResult
from service.domain.receipt import Receipt
from service.kernels._amounts import _line_amounts
from service.kernels._batch import _evaluate_batch
from service.kernels._engine import OVERFLOW, _evaluate_one
from service.kernels._layout import (
    FACT_COUNT,
    L_AMOUNT,
    LINE_COLUMNS,
    OUTPUT_COLUMNS,
    T_APPLIED,
    T_VERDICTS,
)
from service.kernels._results import ColumnResult, kernel_columns, kernel_result
from service.rules.codes import CHANNEL_BITS, REASON_CODES
from service.rules.compiler import CompiledProgram
from service.rules.facts import (
    MAX_QUANTITY,
    MAX_RECEIPT_AMOUNT,
    MAX_UNIT_PRICE,
    LineAmounts,
    ReceiptFacts,
    check_receipt,
    check_receipt_fields,
    receipt_facts,
)

__all__ = ["ColumnResult", "evaluate", "evaluate_batch", "evaluate_columns", "warm_up"]

IntArray = npt.NDArray[np.int64]


class _Inputs:
    """One receipt's facts and the arrays it contributes to a kernel call."""

    __slots__ = (
        "budget_used",
        "fact_vector",
        "facts",
        "lines",
        "segments",
        "store_mask",
        "unlocked",
    )

    def __init__(self, receipt: Receipt, ctx: CalculationContext, program: CompiledProgram) -> None:
        self.lines, checked = _line_array(receipt, program)
        self.facts = facts = receipt_facts(receipt, ctx, program, checked)
        self.fact_vector = _fact_vector(receipt, facts, program)
        self.segments = _card_segments(facts, program)
        self.unlocked = _unlocked(facts, program)
        self.budget_used = _budget_used(ctx, program)
        self.store_mask = program.store_mask(ctx.store.store_id, ctx.store.region)


def _line_array(receipt: Receipt, program: CompiledProgram) -> tuple[IntArray, LineAmounts]:
    """One row per line in _layout's column order, and the line amounts, checked.

    The only Python pass over the lines before the kernel: the amounts and the range
    checks run in ``_line_amounts``. Against ``check_receipt``'s loop plus a second
    pass for the array, the whole ``evaluate`` took 413 µs instead of 454 µs at 100
    lines, 148 instead of 156 at 10 (demo program, 2-core dev box under load). One flat
    list and one conversion: 4.8 µs for 10 lines against 6.5 µs for a list of row
    tuples (numpy converts nested sequences row by row). A missing category or brand
    (None) is simply not a key.
    """
    check_receipt_fields(receipt)
    skus, categories, brands = program.sku_keys, program.category_keys, program.brand_keys
    values: list[int] = []
    add = values.extend
    for line in receipt.lines:
        add(
            (
                line.quantity,
                line.unit_price,
                0,  # L_AMOUNT, filled by _line_amounts
                line.excluded,
                skus.get(line.sku, -1),
                categories.get(line.category, -1),  # type: ignore[arg-type]
                brands.get(line.brand, -1),  # type: ignore[arg-type]
            )
        )
    try:
        lines = np.array(values, dtype=np.int64).reshape(-1, LINE_COLUMNS)
    except OverflowError:  # a quantity or price past 64 bits: out of range for sure
        lines = np.zeros((0, LINE_COLUMNS), dtype=np.int64)
        subtotal = loyalty = -1
    else:
        subtotal, loyalty = _line_amounts(lines, MAX_QUANTITY, MAX_UNIT_PRICE, MAX_RECEIPT_AMOUNT)
    if subtotal < 0:
        check_receipt(receipt)  # raises the reference's error, word for word
        raise AssertionError("check_receipt took a receipt _line_amounts refused")
    amounts = tuple(lines[:, L_AMOUNT].tolist())
    # int(): compiled, numba returns Python ints; run as Python (NUMBA_DISABLE_JIT) the
    # sums are numpy scalars, which the answer's JSON encoder refuses.
    return lines, LineAmounts(amounts, int(subtotal), int(loyalty))


def _fact_vector(receipt: Receipt, facts: ReceiptFacts, program: CompiledProgram) -> IntArray:
    card = facts.card
    method = receipt.payment_method
    payment_bit = program.payment_bits.get(method, -1) if method is not None else -1
    values = [
        CHANNEL_BITS.get(receipt.channel, 0),
        1 << payment_bit if payment_bit >= 0 else 0,
        int(receipt.pickup),
        facts.local_date.toordinal(),
        facts.weekday,
        facts.minute,
        int(facts.holiday),
        int(card is not None),
        REASON_CODES[facts.card_reason] if facts.card_reason else 0,
        facts.tier_index,
        facts.birthday_distance,
        facts.purchase_number,
        facts.personal_bp,
        facts.active_points,
        receipt.redeem_points,
        int(receipt.redeem_max),
        card.points_earned_today if card is not None else 0,
        facts.loyalty_subtotal,
    ]
    assert len(values) == FACT_COUNT
    return np.array(values, dtype=np.int64)


def _card_segments(facts: ReceiptFacts, program: CompiledProgram) -> npt.NDArray[np.uint8]:
    """1 for each segment of the program's vocabulary the card is in (kernels only read it)."""
    vocabulary = program.segment_vocabulary
    if facts.card is None or not facts.card.segments or not vocabulary:
        return program.no_segments
    flags = np.zeros(len(vocabulary), dtype=np.uint8)
    for segment in facts.card.segments:
        position = vocabulary.get(segment)
        if position is not None:
            flags[position] = 1
    return flags


def _unlocked(facts: ReceiptFacts, program: CompiledProgram) -> IntArray:
    """Indexes of the rules an accepted promo code unlocks (kernels only read it)."""
    if not facts.unlocked_rules:
        return program.no_unlocked
    index = program.rule_index
    return np.array([index[r] for r in facts.unlocked_rules if r in index], dtype=np.int64)


def _budget_used(ctx: CalculationContext, program: CompiledProgram) -> IntArray:
    if not ctx.budgets_used:
        return program.no_budget_use
    used = np.zeros(program.rule_count, dtype=np.int64)
    for rule_id, amount in ctx.budgets_used.items():
        position = program.rule_index.get(rule_id)
        if position is not None:
            used[position] = amount
    return used


def evaluate(
    receipt: Receipt, ctx: CalculationContext, program: CompiledProgram
) -> CalculationResult:
    """Calculate one receipt in the kernels; same answer as the reference evaluator."""
    return kernel_result(receipt, ctx, program, *_run_one(receipt, ctx, program))


def evaluate_columns(
    receipt: Receipt, ctx: CalculationContext, program: CompiledProgram
) -> ColumnResult:
    """``evaluate``'s answer by column, without its per-line and per-rule objects: what
    /v1/calculate shows (the tests hold it equal to ``evaluate``'s)."""
    return kernel_columns(receipt, ctx, program, *_run_one(receipt, ctx, program))


def _run_one(
    receipt: Receipt, ctx: CalculationContext, program: CompiledProgram
) -> tuple[ReceiptFacts, IntArray, IntArray, IntArray, IntArray]:
    """One kernel call: the facts, then line outputs, verdicts and applied cut to their
    counts, and the totals."""
    inputs = _Inputs(receipt, ctx, program)
    count = len(receipt.lines)
    line_out = np.empty((count, OUTPUT_COLUMNS), dtype=np.int64)
    verdicts = np.empty((program.rule_count, 4), dtype=np.int64)  # one per candidate rule
    totals = np.empty(4, dtype=np.int64)
    capacity = 8 * count + 8
    while True:
        applied = np.empty((capacity, 3), dtype=np.int64)
        status = _evaluate_one(
            *_program_arrays(program),
            inputs.store_mask,
            program.tier_accrual_bp,
            program.tier_discount_bp,
            program.point_settings,
            inputs.budget_used,
            inputs.lines,
            inputs.fact_vector,
            inputs.segments,
            inputs.unlocked,
            line_out,
            verdicts,
            applied,
            totals,
        )
        if status != OVERFLOW:
            break
        capacity *= 4
    verdict_count, applied_count = totals[T_VERDICTS : T_APPLIED + 1].tolist()
    return inputs.facts, line_out, verdicts[:verdict_count], applied[:applied_count], totals


def _program_arrays(program: CompiledProgram) -> tuple[IntArray, ...]:
    return (
        program.table,
        program.step_from,
        program.step_bp,
        program.segment_ids,
        program.includes.ptr,
        program.includes.rules,
        program.excludes.ptr,
        program.excludes.rules,
        program.all_lines_rules,
    )


def evaluate_batch(
    receipts: Sequence[Receipt],
    ctxs: Sequence[CalculationContext],
    program: CompiledProgram,
) -> list[CalculationResult]:
    """Calculate many receipts in one kernel call; each answer equals ``evaluate``'s."""
    if len(receipts) != len(ctxs):
        raise ValueError("one context per receipt")
    inputs = [_Inputs(r, c, program) for r, c in zip(receipts, ctxs, strict=True)]
    batch = _Batch(inputs, program)
    batch.run(program)
    return [
        batch.result(b, receipt, ctx, program, i.facts)
        for b, (receipt, ctx, i) in enumerate(zip(receipts, ctxs, inputs, strict=True))
    ]


class _Batch:
    """Concatenated inputs and growable outputs of one batch kernel call."""

    def __init__(self, inputs: list[_Inputs], program: CompiledProgram) -> None:
        size = len(inputs)
        self.line_ptr = _offsets([i.lines.shape[0] for i in inputs])
        self.unlocked_ptr = _offsets([i.unlocked.shape[0] for i in inputs])
        self.lines = _stack([i.lines for i in inputs], LINE_COLUMNS, np.int64)
        self.unlocked = np.concatenate([i.unlocked for i in inputs] + [np.zeros(0, np.int64)])
        self.facts = _stack([i.fact_vector[None, :] for i in inputs], FACT_COUNT, np.int64)
        self.segments = _stack(
            [i.segments[None, :] for i in inputs], len(program.segment_vocabulary), np.uint8
        )
        self.store_rows, self.store_index = _distinct_rows([i.store_mask for i in inputs])
        self.budget_rows, self.budget_index = _distinct_rows([i.budget_used for i in inputs])
        self.line_out = np.empty((int(self.line_ptr[-1]), OUTPUT_COLUMNS), dtype=np.int64)
        self.verdicts = np.empty((size * 16 + program.rule_count, 4), dtype=np.int64)
        self.applied = np.empty((int(self.line_ptr[-1]) * 8 + 8, 3), dtype=np.int64)
        self.totals = np.empty((size, 4), dtype=np.int64)
        self.verdict_ptr = np.zeros(size + 1, dtype=np.int64)
        self.applied_ptr = np.zeros(size + 1, dtype=np.int64)

    def run(self, program: CompiledProgram) -> None:
        start = 0
        size = self.totals.shape[0]
        while True:
            start = _evaluate_batch(
                *_program_arrays(program),
                self.store_rows,
                self.store_index,
                program.tier_accrual_bp,
                program.tier_discount_bp,
                program.point_settings,
                self.budget_rows,
                self.budget_index,
                self.lines,
                self.line_ptr,
                self.facts,
                self.segments,
                self.unlocked,
                self.unlocked_ptr,
                self.line_out,
                self.verdicts,
                self.verdict_ptr,
                self.applied,
                self.applied_ptr,
                self.totals,
                start,
            )
            if start >= size:
                return
            self.verdicts = _grown(self.verdicts, program.rule_count)
            self.applied = _grown(self.applied, 8 * (self.lines.shape[0] + 1))

    def result(
        self,
        b: int,
        receipt: Receipt,
        ctx: CalculationContext,
        program: CompiledProgram,
        facts: ReceiptFacts,
    ) -> CalculationResult:
        return kernel_result(
            receipt,
            ctx,
            program,
            facts,
            self.line_out[self.line_ptr[b] : self.line_ptr[b + 1]],
            self.verdicts[self.verdict_ptr[b] : self.verdict_ptr[b + 1]],
            self.applied[self.applied_ptr[b] : self.applied_ptr[b + 1]],
            self.totals[b],
        )


def _offsets(sizes: list[int]) -> IntArray:
    offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(sizes)
    return offsets


def _stack(parts: list[npt.NDArray[Any]], width: int, dtype: type) -> npt.NDArray[Any]:
    if not parts:
        return np.zeros((0, width), dtype=dtype)
    return np.ascontiguousarray(np.concatenate(parts, axis=0), dtype=dtype)


def _distinct_rows(rows: list[npt.NDArray[Any]]) -> tuple[npt.NDArray[Any], IntArray]:
    """Rows shared by many receipts (a store's mask, no budget use) are passed once."""
    distinct: dict[int, int] = {}
    chosen: list[npt.NDArray[Any]] = []
    index = np.empty(len(rows), dtype=np.int64)
    for b, row in enumerate(rows):
        position = distinct.setdefault(id(row), len(chosen))
        if position == len(chosen):
            chosen.append(row)
        index[b] = position
    width = rows[0].shape[0] if rows else 0
    dtype = rows[0].dtype.type if rows else np.int64
    return _stack([row[None, :] for row in chosen], width, dtype), index


def _grown(buffer: IntArray, extra_rows: int) -> IntArray:
    grown = np.empty((buffer.shape[0] * 2 + extra_rows, buffer.shape[1]), dtype=np.int64)
    grown[: buffer.shape[0]] = buffer
    return grown


def warm_up() -> None:
    """Compile the kernels, or load them from numba's on-disk cache, before traffic arrives."""
    from service.kernels._warm import warm_receipts

    program, receipts, ctxs = warm_receipts()
    for receipt, ctx in zip(receipts, ctxs, strict=True):
        evaluate(receipt, ctx, program)
    evaluate_batch(receipts, ctxs, program)
