"""``loyalty serve`` as a child process of a load run (``make loadtest``, ``make replay``,
``make fault-test``): started in a session of its own with its output in a log file,
stopped by its PID. No data-set imports here, so every harness can use it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


def start_service(
    env: dict[str, str], log: Path, port: int, workers: int
) -> subprocess.Popen[bytes]:
    """``loyalty serve --workers N --port P`` on 127.0.0.1, stdout and stderr to ``log``."""
    loyalty = Path(sys.executable).with_name("loyalty")
    command = [str(loyalty), "serve", "--workers", str(workers), "--port", str(port)]
    with log.open("wb") as output:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the harness, which stops the service
        )


def stop_service(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT to the service's PID (its workers drain); SIGKILL to its process group, ours
    alone (started in a session of its own), if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
