"""Many receipts in one kernel call: a loop of ``_evaluate_one`` over concatenated inputs."""

# Kernels take their types from the arrays numba sees; annotations would only repeat them.
# mypy: allow-untyped-defs

from __future__ import annotations

from service.kernels._engine import OVERFLOW, _evaluate_one
from service.kernels._jit import jit
from service.kernels._layout import T_APPLIED, T_VERDICTS


@jit
def _evaluate_batch(
    table,
    step_from,
    step_bp,
    segment_ids,
    inc_ptr,
    inc_rules,
    exc_ptr,
    exc_rules,
    all_rules,
    store_rows,
    store_index,
    tier_accrual,
    tier_discount,
    settings,
    budget_rows,
    budget_index,
    lines,
    line_ptr,
    facts,
    segments,
    unlocked,
    unlocked_ptr,
    line_out,
    verdicts,
    verdict_ptr,
    applied,
    applied_ptr,
    totals,
    start,
):
    """Evaluate receipts from ``start`` on; returns how many are done.

    Receipt ``b`` writes its rows of ``line_out`` from ``line_ptr[b]`` (OUTPUT_COLUMNS
    wide), its verdicts from ``verdict_ptr[b]`` and its applied rules from
    ``applied_ptr[b]``. When a buffer runs short the loop stops before that receipt,
    so the caller can grow the buffers and resume there.
    """
    for b in range(start, totals.shape[0]):
        first, last = line_ptr[b], line_ptr[b + 1]
        status = _evaluate_one(
            table,
            step_from,
            step_bp,
            segment_ids,
            inc_ptr,
            inc_rules,
            exc_ptr,
            exc_rules,
            all_rules,
            store_rows[store_index[b]],
            tier_accrual,
            tier_discount,
            settings,
            budget_rows[budget_index[b]],
            lines[first:last],
            facts[b],
            segments[b],
            unlocked[unlocked_ptr[b] : unlocked_ptr[b + 1]],
            line_out[first:last],
            verdicts[verdict_ptr[b] :],
            applied[applied_ptr[b] :],
            totals[b],
        )
        if status == OVERFLOW:
            return b
        verdict_ptr[b + 1] = verdict_ptr[b] + totals[b, T_VERDICTS]
        applied_ptr[b + 1] = applied_ptr[b] + totals[b, T_APPLIED]
    return totals.shape[0]
