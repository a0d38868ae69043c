"""The warm-up holds the kernels to the reference: kernels that answer otherwise (a stale
numba cache, say) fail the start instead of serving wrong answers."""

from __future__ import annotations

from typing import Any

import pytest

from service import kernels
from service.kernels import KernelMismatch
from service.kernels._layout import O_DISCOUNT


def test_warm_up_passes_on_the_kernels_as_built() -> None:
    kernels.warm_up()


def test_kernels_that_disagree_with_the_reference_fail_the_warm_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    evaluate_one = kernels._evaluate_one

    def stale(program: Any, receipt: Any, out: Any) -> Any:
        status = evaluate_one(program, receipt, out)
        out[0][:, O_DISCOUNT] += 1  # line_out: one kopeck more off every line
        return status

    monkeypatch.setattr(kernels, "_evaluate_one", stale)
    with pytest.raises(
        KernelMismatch, match=r"kernels\.evaluate disagrees .* receipt 0: discounts"
    ):
        kernels.warm_up()
