"""The one place that decides how kernels compile.

``cache=True`` keeps compiled machine code on disk next to the sources, so a worker
that starts after the first one loads it instead of compiling (SPEC §8: ready in 3 s).
No ``fastmath``: every kernel is integer arithmetic that must equal the reference
exactly. ``nogil`` lets threads run kernels side by side.

Numba's cache is keyed on each kernel's own source file only: the column and code
constants imported from ``service.rules.compiler``, ``service.rules.codes`` and
``_layout`` are frozen into the machine code. After changing those, delete
``service/kernels/__pycache__`` (a fresh checkout, as in CI, has none); a worker that
loads such stale code fails its warm-up (``_warm``) instead of answering wrongly.

A counter handed on to another kernel starts as ``np.int64(0)``, not ``0``: typing the
loop, numba first sees the literal and compiles the callee for ``Literal[int](0)`` as well
as for ``int64``. Seven kernels were compiled twice so; the warm-up's compile took 27.6 s
before, 23.1 s after (an empty NUMBA_CACHE_DIR, this 2-core box).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba

JIT_OPTIONS: dict[str, Any] = {"nogil": True, "cache": True, "fastmath": False}


def jit(function: Callable[..., Any]) -> Callable[..., Any]:
    """Compile ``function`` as a kernel with the project's options."""
    return numba.njit(**JIT_OPTIONS)(function)


def jit_inline(function: Callable[..., Any]) -> Callable[..., Any]:
    """``jit``, compiled into each kernel that calls it instead of called (numba's
    ``inline="always"``): for the small checks run once per candidate rule. Called, each
    call increfs and decrefs every array it is given; the 1,000-rule benchmark receipt's
    kernel took 80 µs of CPU so, 73 µs with them inlined (2-core dev box)."""
    return numba.njit(inline="always", **JIT_OPTIONS)(function)
