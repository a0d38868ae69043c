"""The engine, behind one small typed entry point: ``evaluate(receipt, ctx, program)``.

Its ``Answer`` is the reference evaluator's (``reference.evaluate``), computed in numba;
the tests, and every worker's warm-up (``warm_up``), hold the two equal. Receipt-level
facts (local time in the store's zone, tier, balance, promo codes) are computed once in
Python by ``facts``, the per-line arithmetic runs in the kernels (``_engine``), and
``results.build_answer`` turns their output into the answer, as it does the
reference's. /v1/calculate, /v1/commit and a draft's dry run all show that answer.

Around a 10-line receipt the Python work, not the kernel, is most of the cost, so it
is kept to one Python pass over the lines on the way in (``_line_array``) and a
column-wise answer on the way out; docs/performance.md has the figures.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from service.domain.calculation import CalculationContext
from service.domain.receipt import MAX_QUANTITY, MAX_RECEIPT_AMOUNT, MAX_UNIT_PRICE, Receipt
from service.kernels._amounts import _line_amounts
from service.kernels._batch import BatchArrays, BatchOutputs, _evaluate_batch
from service.kernels._engine import OVERFLOW, _evaluate_one
from service.kernels._layout import (
    FACT_COUNT,
    L_AMOUNT,
    LINE_COLUMNS,
    OUTPUT_COLUMNS,
    T_APPLIED,
    T_VERDICTS,
    USES_EXHAUSTED,
    VERDICT_COLUMNS,
    ReceiptArrays,
)
from service.kernels._warm import KernelMismatch, check_against_reference, warm_receipts
from service.kernels.facts import (
    LineAmounts,
    ReceiptFacts,
    check_receipt,
    check_receipt_fields,
    receipt_facts,
)
from service.kernels.results import Answer, RawOutcome, build_answer, raw_outcome
from service.rules.codes import CHANNEL_BITS, REASON_CODES
from service.rules.compiler import CompiledProgram

__all__ = ["Answer", "KernelMismatch", "evaluate", "evaluate_batch", "warm_up"]

IntArray = npt.NDArray[np.int64]


def _inputs(
    receipt: Receipt, ctx: CalculationContext, program: CompiledProgram
) -> tuple[ReceiptFacts, ReceiptArrays]:
    """One receipt's facts, and the arrays it gives a kernel call."""
    lines, checked = _line_array(receipt, program)
    facts = receipt_facts(receipt, ctx, program, checked)
    arrays = ReceiptArrays(
        store_mask=program.store_mask(ctx.store.store_id, ctx.store.region),
        budget_used=_budget_used(ctx, facts, program),
        lines=lines,
        facts=_fact_vector(receipt, facts, program),
        segments=_card_segments(facts, program),
        unlocked=_unlocked(facts, program),
        stamps=_card_stamps(facts, program),
    )
    return facts, arrays


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


def _card_stamps(facts: ReceiptFacts, program: CompiledProgram) -> IntArray:
    """The stamps the card has collected, by rule (kernels only read it)."""
    card = facts.card
    if card is None or not card.stamps or not program.stamp_rules:
        return program.no_stamps
    stamps = np.zeros(program.rule_count, dtype=np.int64)
    for rule_id, have in card.stamps.items():
        position = program.rule_index.get(rule_id)
        if position is not None:
            stamps[position] = have
    return stamps


def _unlocked(facts: ReceiptFacts, program: CompiledProgram) -> IntArray:
    """Indexes of the rules an accepted promo code unlocks (kernels only read it)."""
    if not facts.unlocked_rules:
        return program.no_unlocked
    index = program.rule_index
    return np.array([index[r] for r in facts.unlocked_rules if r in index], dtype=np.int64)


def _budget_used(
    ctx: CalculationContext, facts: ReceiptFacts, program: CompiledProgram
) -> IntArray:
    """Per rule, the part of its budget used; ``USES_EXHAUSTED`` for a rule whose use
    caps leave it nothing (``facts.used_up``)."""
    if not ctx.budgets_used and not facts.used_up:
        return program.no_budget_use
    used = np.zeros(program.rule_count, dtype=np.int64)
    for rule_id, amount in ctx.budgets_used.items():
        position = program.rule_index.get(rule_id)
        if position is not None:
            used[position] = max(amount, 0)
    for rule_id in facts.used_up:
        used[program.rule_index[rule_id]] = USES_EXHAUSTED
    return used


def evaluate(receipt: Receipt, ctx: CalculationContext, program: CompiledProgram) -> Answer:
    """Calculate one receipt in the kernels; the same answer as ``reference.evaluate``."""
    if not _warm:
        warm_up()
    facts, arrays = _inputs(receipt, ctx, program)
    return build_answer(receipt, ctx, program, facts, _run_one(program, arrays))


def _run_one(program: CompiledProgram, arrays: ReceiptArrays) -> RawOutcome:
    """One kernel call, its applied-rules buffer grown until it fits."""
    count = arrays.lines.shape[0]
    line_out = np.empty((count, OUTPUT_COLUMNS), dtype=np.int64)
    # one per candidate rule
    verdicts = np.empty((program.rule_count, VERDICT_COLUMNS), dtype=np.int64)
    totals = np.empty(4, dtype=np.int64)
    capacity = 8 * count + 8
    while True:
        applied = np.empty((capacity, 3), dtype=np.int64)
        # Plain tuples in the groups' field order: _layout says why.
        outputs = (line_out, verdicts, applied, totals)
        if _evaluate_one(tuple(program.arrays), tuple(arrays), outputs) != OVERFLOW:
            break
        capacity *= 4
    verdict_count, applied_count = totals[T_VERDICTS : T_APPLIED + 1].tolist()
    return raw_outcome(line_out, verdicts[:verdict_count], applied[:applied_count], totals)


def evaluate_batch(
    receipts: Sequence[Receipt],
    ctxs: Sequence[CalculationContext],
    program: CompiledProgram,
) -> list[Answer]:
    """Calculate many receipts in one kernel call; each answer equals ``evaluate``'s."""
    if len(receipts) != len(ctxs):
        raise ValueError("one context per receipt")
    if not _warm:
        warm_up()
    inputs = [_inputs(r, c, program) for r, c in zip(receipts, ctxs, strict=True)]
    batch = _Batch([arrays for _, arrays in inputs], program)
    batch.run(program)
    return [
        build_answer(receipt, ctx, program, facts, batch.outcome(b))
        for b, (receipt, ctx, (facts, _)) in enumerate(zip(receipts, ctxs, inputs, strict=True))
    ]


class _Batch:
    """Concatenated inputs and growable outputs of one batch kernel call."""

    def __init__(self, inputs: list[ReceiptArrays], program: CompiledProgram) -> None:
        size = len(inputs)
        line_ptr = _offsets([i.lines.shape[0] for i in inputs])
        store_rows, store_index = _distinct_rows([i.store_mask for i in inputs], np.uint8)
        budget_rows, budget_index = _distinct_rows([i.budget_used for i in inputs], np.int64)
        stamp_rows, stamp_index = _distinct_rows([i.stamps for i in inputs], np.int64)
        self.given = BatchArrays(
            store_rows=store_rows,
            store_index=store_index,
            budget_rows=budget_rows,
            budget_index=budget_index,
            lines=_stack([i.lines for i in inputs], LINE_COLUMNS, np.int64),
            line_ptr=line_ptr,
            facts=_stack([i.facts[None, :] for i in inputs], FACT_COUNT, np.int64),
            segments=_stack(
                [i.segments[None, :] for i in inputs], len(program.segment_vocabulary), np.uint8
            ),
            unlocked=np.concatenate([i.unlocked for i in inputs] + [np.zeros(0, np.int64)]),
            unlocked_ptr=_offsets([i.unlocked.shape[0] for i in inputs]),
            stamp_rows=stamp_rows,
            stamp_index=stamp_index,
        )
        self.written = BatchOutputs(
            line_out=np.empty((int(line_ptr[-1]), OUTPUT_COLUMNS), dtype=np.int64),
            verdicts=np.empty((size * 16 + program.rule_count, VERDICT_COLUMNS), dtype=np.int64),
            verdict_ptr=np.zeros(size + 1, dtype=np.int64),
            applied=np.empty((int(line_ptr[-1]) * 8 + 8, 3), dtype=np.int64),
            applied_ptr=np.zeros(size + 1, dtype=np.int64),
            totals=np.empty((size, 4), dtype=np.int64),
        )

    def run(self, program: CompiledProgram) -> None:
        start = 0
        written = self.written
        while True:
            start = _evaluate_batch(tuple(program.arrays), tuple(self.given), tuple(written), start)
            if start >= written.totals.shape[0]:
                break
            written = written._replace(
                verdicts=_grown(written.verdicts, program.rule_count),
                applied=_grown(written.applied, 8 * (self.given.lines.shape[0] + 1)),
            )
        self.written = written

    def outcome(self, b: int) -> RawOutcome:
        """Receipt ``b``'s outputs, as ``_run_one`` gives them."""
        line_ptr, out = self.given.line_ptr, self.written
        return raw_outcome(
            out.line_out[line_ptr[b] : line_ptr[b + 1]],
            out.verdicts[out.verdict_ptr[b] : out.verdict_ptr[b + 1]],
            out.applied[out.applied_ptr[b] : out.applied_ptr[b + 1]],
            out.totals[b],
        )


def _offsets(sizes: list[int]) -> IntArray:
    offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(sizes)
    return offsets


def _stack(parts: list[npt.NDArray[Any]], width: int, dtype: type) -> npt.NDArray[Any]:
    if not parts:
        return np.zeros((0, width), dtype=dtype)
    return np.ascontiguousarray(np.concatenate(parts, axis=0), dtype=dtype)


def _distinct_rows(rows: list[npt.NDArray[Any]], dtype: type) -> tuple[npt.NDArray[Any], IntArray]:
    """Rows shared by many receipts (a store's mask, no budget use) are passed once. The
    dtype is given, not read from a row: an empty batch must not compile the kernel anew."""
    distinct: dict[int, int] = {}
    chosen: list[npt.NDArray[Any]] = []
    index = np.empty(len(rows), dtype=np.int64)
    for b, row in enumerate(rows):
        position = distinct.setdefault(id(row), len(chosen))
        if position == len(chosen):
            chosen.append(row)
        index[b] = position
    width = rows[0].shape[0] if rows else 0
    return _stack([row[None, :] for row in chosen], width, dtype), index


def _grown(buffer: IntArray, extra_rows: int) -> IntArray:
    grown = np.empty((buffer.shape[0] * 2 + extra_rows, buffer.shape[1]), dtype=np.int64)
    grown[: buffer.shape[0]] = buffer
    return grown


# Whether this process has warmed up: a process that calls ``evaluate`` without having
# done so (a test, a script) warms up first, so it too waits its compile turn and is held
# to the reference.
_warm = False


def warm_up() -> None:
    """Compile the kernels, or load them from numba's on-disk cache, before traffic
    arrives; then hold both kernel paths to the reference on the warm-up receipts, so
    that a stale or wrong cache fails the start (``KernelMismatch``) instead of answering.

    Processes warming up at once take turns (a lock file beside the cache): the first
    compiles (~23 s) and the others load its machine code (~0.4 s) instead of each
    compiling the same on the same cores."""
    global _warm
    with _compile_turn():
        _warm = True  # the check's own calls below are the warm-up
        try:
            _warm_up()
        except BaseException:
            _warm = False
            raise


@contextlib.contextmanager
def _compile_turn() -> Iterator[None]:
    folder = Path(os.environ.get("NUMBA_CACHE_DIR") or Path(__file__).parent / "__pycache__")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = (folder / "warm-up.lock").open("a")
    except OSError:  # a read-only install: numba caches elsewhere or not at all
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def _warm_up() -> None:
    program, receipts, ctxs = warm_receipts()
    single = [evaluate(r, c, program) for r, c in zip(receipts, ctxs, strict=True)]
    batch = evaluate_batch(receipts, ctxs, program)
    check_against_reference(program, receipts, ctxs, {"evaluate": single, "evaluate_batch": batch})
