"""What ``loyalty serve`` checks and tells while it starts: that the port is nobody
else's, that a slow step is under way, and when the service answers.

Standard library only: ``cli.serve`` checks the port before anything heavy is imported
or started (embedded servers, migrations, the app), so a taken port is reported at once.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import socket
import sys
import threading
import time
from collections.abc import Iterator


class PortUnavailable(Exception):
    """The service's host:port cannot be ours: another process listens on it, or the
    system refuses it (a privileged port, an address not of this machine)."""

    def __init__(self, host: str, port: int, error: OSError) -> None:
        if error.errno == errno.EADDRINUSE:
            reason = f"another process listens on it (`ss -ltnp 'sport = :{port}'` shows which)"
        else:
            reason = error.strerror or str(error)
        super().__init__(
            f"loyalty: cannot serve on {host}:{port}: {reason}.\n"
            "Stop that process, or choose another port: `LOYALTY_PORT=<port> make run`,"
            " or `loyalty serve --port <port>`."
        )


def check_port(host: str, port: int) -> None:
    """Raise ``PortUnavailable`` unless ``host:port`` is free to listen on.

    The workers' sockets set SO_REUSEPORT (each worker has one of its own on the port,
    ``supervisor._listen``), and Linux lets any other socket of the same user that sets
    it too (a second ``loyalty serve``, any server started with reuse-port) join them on
    the port, without an error on either side: the kernel then shares the connections
    between the two services. So the port is first bound by a probe without
    SO_REUSEPORT, which fails with EADDRINUSE while any socket listens on it (or on an
    overlapping address: the wildcard). The probe sets SO_REUSEADDR as the workers'
    sockets do: on Linux that still fails on a listener, but not on connections left in
    TIME_WAIT, which a stopped ``loyalty serve`` leaves on its port for a minute and
    which must not stop it from starting again.

    What remains: the probe is closed before the workers' sockets are bound, so a
    process that binds with SO_REUSEPORT in the microseconds between (``preload``
    probes right before binding) would still share the port; and one that binds after
    the service listens joins it unless it checks as this does. A port held only by
    TIME_WAIT connections of a process that did not set SO_REUSEADDR is reported as
    taken until they expire (60 s on Linux).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PortUnavailable(host, port, exc) from exc


@contextlib.contextmanager
def told_if_slow(doing: str, after_s: float = 1.0) -> Iterator[None]:
    """Say ``doing`` on stderr if the block takes longer than ``after_s``, and then how
    long it took. The line comes from a timer thread, joined before the block's end:
    the supervisor forks after this, and refuses to with a thread alive."""
    said = threading.Event()

    def say() -> None:
        print(f"{doing}...", file=sys.stderr, flush=True)
        said.set()

    started = time.monotonic()
    timer = threading.Timer(after_s, say)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()
    if said.is_set():
        print(f"  done in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)


def answers_ready(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """Whether the service on ``host:port`` answers /readyz with 200 within ``timeout_s``."""
    local = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    connection = http.client.HTTPConnection(local, port, timeout=timeout_s)
    try:
        connection.request("GET", "/readyz")
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):  # refused, timed out, cut: not yet
        return False
    finally:
        connection.close()
