"""Every worked example runs on both evaluators: the reference and the kernels."""

from __future__ import annotations

import pytest

from service import kernels
from service.kernels import reference
from tests.unit.rules.builders import Evaluator


@pytest.fixture(params=["reference", "kernel"])
def evaluate(request: pytest.FixtureRequest) -> Evaluator:
    return kernels.evaluate if request.param == "kernel" else reference.evaluate
