"""The process model of ``loyalty serve``: one supervisor, N forked workers.

The supervisor preloads, as ``gunicorn --preload`` does: it imports the app, loads
the compiled kernels from numba's cache (or compiles them), builds the ASGI app and
binds the port, all once; then it forks the workers. A worker inherits all of that
and builds only what cannot cross a fork: its event loop (uvloop), and in the app's
lifespan its pools to Postgres and Redis, the current program and the background
tasks. Spawning fresh interpreters instead (uvicorn's ``workers=N``) had every
worker re-import and re-load everything, ~2 s each (docs/performance.md).

Nothing in the supervisor may hold a thread, an event loop or a connection when it
forks, or the children inherit them half-copied: the start-up work before it
(migrations, the demo check) runs its own loops to completion, and ``_fork`` refuses
to run with a second thread alive.

The supervisor replaces a worker that dies, after marking its Prometheus files dead.
A worker whose start-up fails (uvicorn exits 3: the lifespan failed, e.g. Postgres is
unreachable) is retried after ``BOOT_RETRY_S`` while another worker still runs, and
ends the service with that code when none does. SIGINT or SIGTERM stops the service:
each worker gets SIGTERM and drains its connections (``GRACEFUL_S``), and one that
is still there after that gets SIGKILL.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

import uvicorn
from starlette.types import ASGIApp

from service.api.app import create_app
from service.api.metrics import mark_worker_dead
from service.settings import Settings

_log = logging.getLogger(__name__)

GRACEFUL_S = 10.0
BOOT_RETRY_S = 1.0
STARTUP_FAILURE = 3  # uvicorn's exit code when the lifespan fails
_STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
_WAITED_SIGNALS = _STOP_SIGNALS | {signal.SIGCHLD}


def preload(
    settings: Settings, app: ASGIApp | None = None
) -> tuple[uvicorn.Config, list[socket.socket]]:
    """Everything the workers share: the loaded app (the service's unless ``app`` is
    given), warm kernels, and the port: one listening socket per worker."""
    from service import kernels

    kernels.warm_up()
    config = uvicorn.Config(
        create_app(settings) if app is None else app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(GRACEFUL_S),
    )
    config.load()
    return config, [_listen(config) for _ in range(settings.workers)]


def _listen(config: uvicorn.Config) -> socket.socket:
    """A listening socket of its own for one worker, on the shared port (SO_REUSEPORT).

    The kernel spreads new connections over the sockets by their addresses' hash. With
    one socket shared by all workers, whichever worker happened to be waiting took each
    connection: a load generator's (or a proxy's) burst of keep-alive connections could
    land mostly on one worker and stay there, and the benchmark's throughput came out
    bimodal, halved about one run in three. A replaced worker takes over its
    predecessor's socket; connections that arrive meanwhile wait in its backlog.
    Listening from here on, connections that arrive while the workers start wait too.
    """
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((config.host, config.port))
    except OSError:
        sock.close()
        raise
    sock.listen(config.backlog)
    sock.set_inheritable(True)
    return sock


def _serve(config: uvicorn.Config, sock: socket.socket) -> int:
    """A worker's life, in the forked child; returns its exit code."""
    # Default handlers until uvicorn takes the stop signals over: a worker stopped
    # before it serves just ends. Once it has drained, uvicorn raises the signal it got
    # again under these, so a stopped worker ends by that signal.
    for signum in _WAITED_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except SystemExit as exc:  # uvicorn's way out when the lifespan fails
        return exc.code if isinstance(exc.code, int) else STARTUP_FAILURE
    except BaseException:
        _log.exception("worker failed")
        return 1 if server.started else STARTUP_FAILURE
    return 0


def after_exit(exit_code: int, *, others_running: bool) -> Literal["restart", "retry", "stop"]:
    """What follows a worker's end (``exit_code`` negative: killed by that signal): a
    crash is replaced at once; a failed start is retried later while another worker
    serves, as it would most likely fail again at once, and stops the service when
    none does."""
    if exit_code != STARTUP_FAILURE:
        return "restart"
    return "retry" if others_running else "stop"


@dataclass
class Supervisor:
    """Forks a worker per socket of ``socks`` and keeps them running until stopped."""

    config: uvicorn.Config
    socks: list[socket.socket]
    _pids: dict[int, int] = field(default_factory=dict)  # worker pid -> its socket's index
    _retry_at: list[tuple[float, int]] = field(default_factory=list)
    _stopping: bool = False
    _exit_code: int = 0

    def run(self) -> int:
        """Serve until SIGINT or SIGTERM (or no worker can start); the exit code."""
        # Blocked, the signals wait for sigtimedwait: no handler runs in between.
        signal.pthread_sigmask(signal.SIG_BLOCK, _WAITED_SIGNALS)
        try:
            # Objects built so far live as long as the service: keep the children's
            # collector from touching them, which would copy their pages (Python's gc docs).
            gc.collect()
            gc.freeze()
            for index in range(len(self.socks)):
                self._fork(index)
            while not self._stopping:
                self._wait_once()
        finally:
            self._stop_workers()
            for sock in self.socks:
                sock.close()
            # A second stop signal that came while stopping has been answered already.
            while signal.sigtimedwait(_WAITED_SIGNALS, 0) is not None:
                pass
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _WAITED_SIGNALS)
        return self._exit_code

    def _fork(self, index: int) -> None:
        if threading.active_count() > 1:
            raise RuntimeError(f"refusing to fork with threads alive: {threading.enumerate()}")
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker: never return into the supervisor's stack
            code = 1
            try:
                code = _serve(self.config, self.socks[index])
            finally:
                os._exit(code)
        self._pids[pid] = index
        _log.info("worker started", extra={"pid": pid})

    def _wait_once(self) -> None:
        """Sleep until a signal or a due retry; then reap, restart or begin stopping."""
        now = time.monotonic()
        timeout = min([1.0, *(at - now for at, _ in self._retry_at)])
        got = signal.sigtimedwait(_WAITED_SIGNALS, max(timeout, 0.0))
        if got is not None and got.si_signo in _STOP_SIGNALS:
            _log.info("stopping", extra={"signal": signal.Signals(got.si_signo).name})
            self._stopping = True
        self._reap()
        if self._stopping:
            return
        now = time.monotonic()
        for due in [due for due in self._retry_at if due[0] <= now]:
            self._retry_at.remove(due)
            self._fork(due[1])

    def _reap(self) -> None:
        # Worker by worker, not waitpid(-1): the embedded Redis is a child here too.
        for pid in list(self._pids):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done == 0:
                continue
            index = self._pids.pop(pid)
            mark_worker_dead(pid)
            if not self._stopping:
                self._replace(pid, index, status)

    def _replace(self, pid: int, index: int, status: int) -> None:
        code = os.waitstatus_to_exitcode(status)
        step = after_exit(code, others_running=bool(self._pids))
        if step == "restart":
            _log.error("worker died; starting another", extra={"pid": pid, "exit_code": code})
            self._fork(index)
        elif step == "retry":
            _log.error("worker failed to start; retrying", extra={"pid": pid})
            self._retry_at.append((time.monotonic() + BOOT_RETRY_S, index))
        else:
            _log.error("worker failed to start and none is running; stopping")
            self._exit_code = STARTUP_FAILURE
            self._stopping = True

    def _stop_workers(self) -> None:
        self._stopping = True  # nothing is replaced from here on
        for pid in self._pids:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + GRACEFUL_S + 5
        while self._pids and time.monotonic() < deadline:
            signal.sigtimedwait({signal.SIGCHLD}, max(deadline - time.monotonic(), 0.0))
            self._reap()
        for pid in self._pids:
            _log.warning("worker did not stop in time; killing it", extra={"pid": pid})
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            mark_worker_dead(pid)
        self._pids.clear()
