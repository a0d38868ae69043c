"""Every worked example runs on both evaluators: the reference and the kernels."""

from __future__ import annotations

import pytest

from service.rules import reference
from tests.unit.rules.builders import Evaluator


@pytest.fixture(params=["reference", "kernel"])
def evaluate(request: pytest.FixtureRequest) -> Evaluator:
    if request.param == "kernel":
        from service import kernels

        return kernels.evaluate
    return reference.evaluate
