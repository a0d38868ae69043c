"""CPU seconds from /proc (Linux), so that a load run can tell where the machine's CPU
went: the load client's own, the service's processes, its Postgres backends, the rest.
On a machine that has no /proc every figure is 0."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_BUSY_FIELDS = slice(0, 8)  # /proc/stat: user nice system idle iowait irq softirq steal


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants now (a supervisor and its workers)."""
    pids = [pid]
    for parent in pids:
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{parent}/task"):
                children = Path(f"/proc/{parent}/task/{task}/children").read_text()
                pids += [int(child) for child in children.split()]
    return pids


def processes_cpu_s(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each live process of ``pids`` (gone ones left out)."""
    seconds = {}
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            seconds[pid] = (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    return seconds


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (all cores, idle and iowait left out)."""
    with contextlib.suppress(OSError):
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, first[_BUSY_FIELDS])
        return (user + nice + system + irq + softirq + steal) / _TICK
    return 0.0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """CPU seconds so far: the machine's, and each watched process's by group."""

    machine_s: float
    groups: dict[str, dict[int, float]]

    @classmethod
    def take(cls, groups: dict[str, list[int]]) -> Snapshot:
        return cls(machine_busy_s(), {name: processes_cpu_s(p) for name, p in groups.items()})

    def used_since(self, earlier: Snapshot) -> dict[str, float]:
        """CPU seconds since ``earlier``, by group, and the machine's as ``"machine"``: a
        process born since counts whole, one that ended since is lost (unreadable now)."""
        used = {"machine": self.machine_s - earlier.machine_s}
        for name, now in self.groups.items():
            before = earlier.groups.get(name, {})
            used[name] = sum(s - before.get(pid, 0.0) for pid, s in now.items())
        return used
