"""CPU seconds from /proc for the load runs' reports (loadtests/cpu.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from loadtests import cpu

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="Linux /proc only")


def _burn(seconds: float) -> None:
    deadline = time.process_time() + seconds
    while time.process_time() < deadline:
        pass


def test_a_child_is_in_the_tree_and_its_cpu_counts_since_the_snapshot() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE)  # fmt: skip
    try:
        tree = cpu.process_tree(os.getpid())
        assert tree[0] == os.getpid() and child.pid in tree
        before = cpu.Snapshot.take({"me": [os.getpid()], "child": [child.pid]})
        _burn(0.3)
        used = cpu.Snapshot.take({"me": [os.getpid()], "child": [child.pid]}).used_since(before)
    finally:
        child.communicate(b"")
    assert 0.2 <= used["me"] <= used["machine"] + 0.05
    assert used["child"] < 0.1


def test_a_process_gone_is_left_out() -> None:
    assert cpu.processes_cpu_s([2**22 + 1]) == {}
