"""Many receipts in one kernel call: a loop of ``_evaluate`` over concatenated inputs."""

# Kernels take their types from the arrays numba sees; annotations would only repeat them.
# mypy: allow-untyped-defs

from __future__ import annotations

from typing import NamedTuple

from service.kernels._engine import OVERFLOW, _evaluate
from service.kernels._jit import jit
from service.kernels._layout import (
    T_APPLIED,
    T_VERDICTS,
    FlagArray,
    IntArray,
    Outputs,
    ReceiptArrays,
)
from service.rules.compiler import ProgramArrays


class BatchArrays(NamedTuple):
    """Each receipt's ``ReceiptArrays``, concatenated: receipt ``b``'s lines are
    ``lines[line_ptr[b]:line_ptr[b + 1]]``; rows that many receipts share (a store's
    mask, no budget use, no stamps) are passed once and chosen by ``store_index``,
    ``budget_index`` and ``stamp_index``."""

    store_rows: FlagArray
    store_index: IntArray
    budget_rows: IntArray
    budget_index: IntArray
    lines: IntArray
    line_ptr: IntArray
    facts: IntArray  # a row per receipt
    segments: FlagArray  # a row per receipt
    unlocked: IntArray
    unlocked_ptr: IntArray
    stamp_rows: IntArray  # the cards' stamps by rule, one row per distinct row
    stamp_index: IntArray


class BatchOutputs(NamedTuple):
    """Each receipt's ``Outputs``, concatenated; the kernel fills ``verdict_ptr`` and
    ``applied_ptr`` as it goes, receipt ``b`` starting where ``b - 1`` ended."""

    line_out: IntArray
    verdicts: IntArray
    verdict_ptr: IntArray
    applied: IntArray
    applied_ptr: IntArray
    totals: IntArray  # a row per receipt


@jit
def _evaluate_batch(program, batch, out, start):
    """Evaluate receipts from ``start`` on; returns how many are done.

    ``program``, ``batch`` and ``out`` are plain tuples in ``ProgramArrays``',
    ``BatchArrays``' and ``BatchOutputs``' field order (``_layout`` says why). When a
    buffer runs short the loop stops before that receipt, so the caller can grow the
    buffers and resume there.
    """
    arrays, given, written = ProgramArrays(*program), BatchArrays(*batch), BatchOutputs(*out)
    for b in range(start, written.totals.shape[0]):
        status = _evaluate(arrays, _receipt(given, b), _outputs(given, written, b))
        if status == OVERFLOW:
            return b
        written.verdict_ptr[b + 1] = written.verdict_ptr[b] + written.totals[b, T_VERDICTS]
        written.applied_ptr[b + 1] = written.applied_ptr[b] + written.totals[b, T_APPLIED]
    return written.totals.shape[0]


@jit
def _receipt(given, b):
    return ReceiptArrays(
        given.store_rows[given.store_index[b]],
        given.budget_rows[given.budget_index[b]],
        given.lines[given.line_ptr[b] : given.line_ptr[b + 1]],
        given.facts[b],
        given.segments[b],
        given.unlocked[given.unlocked_ptr[b] : given.unlocked_ptr[b + 1]],
        given.stamp_rows[given.stamp_index[b]],
    )


@jit
def _outputs(given, written, b):
    return Outputs(
        written.line_out[given.line_ptr[b] : given.line_ptr[b + 1]],
        written.verdicts[written.verdict_ptr[b] :],
        written.applied[written.applied_ptr[b] :],
        written.totals[b],
    )
