"""These tests call the kernels themselves, below ``evaluate``: they wait for the
warm-up's compile (`make test` runs one beside the suite) and load its cache instead of
compiling alongside it."""

from __future__ import annotations

import pytest

from service import kernels


@pytest.fixture(scope="session", autouse=True)
def compiled_kernels() -> None:
    kernels.warm_up()
