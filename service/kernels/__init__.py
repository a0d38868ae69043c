"""The numba path of the rule engine, behind one small typed entry point.

``evaluate`` gives the same answers as ``service.rules.reference.evaluate``; the
tests hold them equal on random programs and receipts. Receipt-level facts (local
time in the store's zone, tier, balance, promo codes) are computed once in Python
by ``service.rules.facts``, the per-line arithmetic runs in the kernels, and the
result is built by the same code as the reference's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from service.domain.calculation import CalculationContext, CalculationResult
from service.domain.receipt import Receipt
from service.kernels._batch import _evaluate_batch
from service.kernels._engine import OVERFLOW, _evaluate_one
from service.kernels._layout import (
    FACT_COUNT,
    LINE_COLUMNS,
    O_DISCOUNT,
    O_EARNED,
    O_PAID,
    T_APPLIED,
    T_REDEEMABLE,
    T_REDEEMED,
    T_VERDICTS,
)
from service.rules.codes import CHANNEL_BITS, REASON_CODES, REASONS
from service.rules.compiler import CompiledProgram
from service.rules.facts import RawOutcome, ReceiptFacts, build_result, receipt_facts

__all__ = ["evaluate", "evaluate_batch", "warm_up"]

IntArray = npt.NDArray[np.int64]
_REASON_TEXT: tuple[str | None, ...] = tuple(reason or None for reason in REASONS)


class _Inputs:
    """The arrays one receipt contributes to a kernel call."""

    __slots__ = ("budget_used", "facts", "lines", "segments", "store_mask", "unlocked")

    def __init__(
        self,
        receipt: Receipt,
        ctx: CalculationContext,
        program: CompiledProgram,
        facts: ReceiptFacts,
    ) -> None:
        self.lines = _line_array(receipt, facts, program)
        self.facts = _fact_vector(receipt, facts, program)
        self.segments = _card_segments(facts, program)
        index = program.rule_index
        self.unlocked = np.array(
            [index[r] for r in facts.unlocked_rules if r in index], dtype=np.int64
        )
        self.budget_used = _budget_used(ctx, program)
        self.store_mask = program.store_mask(ctx.store.store_id, ctx.store.region)


def _line_array(receipt: Receipt, facts: ReceiptFacts, program: CompiledProgram) -> IntArray:
    skus, categories, brands = program.sku_keys, program.category_keys, program.brand_keys
    rows = [
        (
            line.quantity,
            line.unit_price,
            amount,
            line.excluded,
            skus.get(line.sku, -1),
            categories.get(line.category, -1) if line.category is not None else -1,
            brands.get(line.brand, -1) if line.brand is not None else -1,
        )
        for line, amount in zip(receipt.lines, facts.amounts, strict=True)
    ]
    if not rows:
        return np.zeros((0, LINE_COLUMNS), dtype=np.int64)
    return np.array(rows, dtype=np.int64)


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
    vocabulary = program.segment_vocabulary
    flags = np.zeros(len(vocabulary), dtype=np.uint8)
    if facts.card is not None:
        for segment in facts.card.segments:
            position = vocabulary.get(segment)
            if position is not None:
                flags[position] = 1
    return flags


def _budget_used(ctx: CalculationContext, program: CompiledProgram) -> IntArray:
    if not ctx.budgets_used:
        return program.no_budget_use
    used = np.zeros(program.rule_count, dtype=np.int64)
    for rule_id, amount in ctx.budgets_used.items():
        position = program.rule_index.get(rule_id)
        if position is not None:
            used[position] = amount
    return used


def _raw_outcome(
    line_out: IntArray, verdicts: IntArray, applied: IntArray, totals: IntArray
) -> RawOutcome:
    per_line: list[list[tuple[int, int]]] = [[] for _ in range(line_out.shape[0])]
    # columns in _layout order: A_LINE, A_RULE, A_AMOUNT and V_RULE, V_REASON, V_AMOUNT, V_POINTS
    for line, rule, amount in applied[: totals[T_APPLIED]].tolist():
        per_line[line].append((rule, amount))
    return RawOutcome(
        discounts=line_out[:, O_DISCOUNT].tolist(),
        points_paid=line_out[:, O_PAID].tolist(),
        points_earned=line_out[:, O_EARNED].tolist(),
        applied=per_line,
        verdicts=[
            (rule, _REASON_TEXT[reason], amount, points)
            for rule, reason, amount, points in verdicts[: totals[T_VERDICTS]].tolist()
        ],
        redeemable_max=int(totals[T_REDEEMABLE]),
        redeemed=int(totals[T_REDEEMED]),
    )


def evaluate(
    receipt: Receipt, ctx: CalculationContext, program: CompiledProgram
) -> CalculationResult:
    """Calculate one receipt in the kernels; same answer as the reference evaluator."""
    facts = receipt_facts(receipt, ctx, program)
    inputs = _Inputs(receipt, ctx, program, facts)
    count = len(receipt.lines)
    line_out = np.empty((count, 3), dtype=np.int64)
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
            inputs.facts,
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
    raw = _raw_outcome(line_out, verdicts, applied, totals)
    return build_result(receipt, ctx, program, facts, raw)


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
    all_facts = [receipt_facts(r, c, program) for r, c in zip(receipts, ctxs, strict=True)]
    inputs = [_Inputs(r, c, program, f) for r, c, f in zip(receipts, ctxs, all_facts, strict=True)]
    batch = _Batch(inputs, program)
    batch.run(program)
    return [
        build_result(receipt, ctx, program, facts, batch.outcome(b))
        for b, (receipt, ctx, facts) in enumerate(zip(receipts, ctxs, all_facts, strict=True))
    ]


class _Batch:
    """Concatenated inputs and growable outputs of one batch kernel call."""

    def __init__(self, inputs: list[_Inputs], program: CompiledProgram) -> None:
        size = len(inputs)
        self.line_ptr = _offsets([i.lines.shape[0] for i in inputs])
        self.unlocked_ptr = _offsets([i.unlocked.shape[0] for i in inputs])
        self.lines = _stack([i.lines for i in inputs], LINE_COLUMNS, np.int64)
        self.unlocked = np.concatenate([i.unlocked for i in inputs] + [np.zeros(0, np.int64)])
        self.facts = _stack([i.facts[None, :] for i in inputs], FACT_COUNT, np.int64)
        self.segments = _stack(
            [i.segments[None, :] for i in inputs], len(program.segment_vocabulary), np.uint8
        )
        self.store_rows, self.store_index = _distinct_rows([i.store_mask for i in inputs])
        self.budget_rows, self.budget_index = _distinct_rows([i.budget_used for i in inputs])
        self.line_out = np.empty((int(self.line_ptr[-1]), 3), dtype=np.int64)
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

    def outcome(self, b: int) -> RawOutcome:
        lines = slice(self.line_ptr[b], self.line_ptr[b + 1])
        verdicts = self.verdicts[self.verdict_ptr[b] :]
        applied = self.applied[self.applied_ptr[b] :]
        return _raw_outcome(self.line_out[lines], verdicts, applied, self.totals[b])


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
