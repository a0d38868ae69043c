"""Hypothesis profiles: ``quick`` by default, ``thorough`` in CI (``HYPOTHESIS_PROFILE``).

The differential tests hold the kernels equal to the reference on random programs and
receipts; thousands of cases are CI's job, where every run is the same derandomized set.
A developer's ``make test`` runs a fifth of them (about half the suite's time was those).
"""

from __future__ import annotations

import os

from hypothesis import settings

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "quick")
settings.register_profile("quick", max_examples=50, deadline=None)
settings.register_profile("thorough", max_examples=200, deadline=None)
settings.load_profile(PROFILE)


def examples(thorough: int) -> int:
    """``thorough`` examples in the thorough profile, a fifth (at least 20) in the quick one."""
    return thorough if PROFILE == "thorough" else max(20, thorough // 5)
