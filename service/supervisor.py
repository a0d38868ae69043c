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

The supervisor replaces a worker that dies, after marking its Prometheus files dead,
and one that hangs: each worker's event loop stamps a heartbeat every ``BEAT_S``
(``Heartbeats``), and a worker silent for ``worker_hang_s`` gets SIGTERM (then SIGKILL
after ``GRACEFUL_S``) while a new one takes its socket at once.
A worker whose start-up fails (uvicorn exits 3: the lifespan failed, e.g. Postgres is
unreachable) is retried after ``BOOT_RETRY_S`` while another worker still runs, and
ends the service with that code when none does. SIGINT or SIGTERM stops the service:
each worker gets SIGTERM and drains its connections (``GRACEFUL_S``), and one that
is still there after that gets SIGKILL.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import mmap
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import uvicorn
from starlette.types import ASGIApp

from service.api.app import create_app
from service.api.metrics import mark_worker_dead
from service.settings import Settings
from service.startup import PortUnavailable, answers_ready, check_port, told_if_slow

_log = logging.getLogger(__name__)

GRACEFUL_S = 10.0
BOOT_RETRY_S = 1.0
STARTUP_FAILURE = 3  # uvicorn's exit code when the lifespan fails
BEAT_S = 1.0  # a worker's heartbeat period
READY_POLL_S = 0.2  # how often /readyz is asked until it answers, for the banner
_STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
_WAITED_SIGNALS = _STOP_SIGNALS | {signal.SIGCHLD}


def preload(
    settings: Settings, app: ASGIApp | None = None
) -> tuple[uvicorn.Config, list[socket.socket]]:
    """Everything the workers share: the loaded app (the service's unless ``app`` is
    given), warm kernels, and the port: one listening socket per worker."""
    from service import kernels

    # From numba's cache in about a second; compiled on a first start, which is slow.
    with told_if_slow("compiling the rule kernels (first start only, ~30 s)"):
        kernels.warm_up()
    from service.simulation import charts

    charts.preload()  # matplotlib once, shared by the workers
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
    # Again: the port may have been taken while the service migrated and compiled.
    check_port(config.host, config.port)
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
    ``startup.check_port`` makes sure first that no other process listens there.
    """
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((config.host, config.port))
    except OSError as exc:
        sock.close()
        raise PortUnavailable(config.host, config.port, exc) from exc
    sock.listen(config.backlog)
    sock.set_inheritable(True)
    return sock


class Heartbeats:
    """When each worker's event loop last turned, in memory shared with the supervisor.

    An anonymous shared mapping (``mmap(-1, ...)`` is MAP_SHARED) made before the first
    fork: one 8-byte slot per worker (its socket's index) holding the monotonic clock,
    the same in every process, in milliseconds. A worker's task writes it every
    ``BEAT_S``; a loop blocked by a stuck call, or a stopped process, stops writing. Only
    memory: no file or pipe for a busy or stopped side to fill, nothing to clean up.
    """

    def __init__(self, slots: int) -> None:
        # One aligned 8-byte store per beat: a reader never sees half of one.
        self._slots = memoryview(mmap.mmap(-1, 8 * slots)).cast("q")

    def beat(self, slot: int) -> None:
        self._slots[slot] = time.monotonic_ns() // 1_000_000

    def silent_s(self, slot: int) -> float:
        """Seconds since ``slot``'s last beat."""
        return time.monotonic() - self._slots[slot] / 1000

    async def keep_beating(self, slot: int) -> None:
        while True:
            self.beat(slot)
            await asyncio.sleep(BEAT_S)


async def _serve_beating(
    server: uvicorn.Server, sock: socket.socket, heartbeats: Heartbeats, slot: int
) -> None:
    """The server, and beside it on the same loop, from before its lifespan, the beat."""
    beating = asyncio.create_task(heartbeats.keep_beating(slot))
    try:
        await server.serve(sockets=[sock])
    finally:
        beating.cancel()


def _serve(config: uvicorn.Config, sock: socket.socket, heartbeats: Heartbeats, slot: int) -> int:
    """A worker's life, in the forked child; returns its exit code."""
    # Default handlers until uvicorn takes the stop signals over: a worker stopped
    # before it serves just ends. Once it has drained, uvicorn raises the signal it got
    # again under these, so a stopped worker ends by that signal.
    for signum in _WAITED_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    server = uvicorn.Server(config)
    try:
        # uvicorn's Server.run (an asyncio.run on its loop), with the heartbeat.
        with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
            runner.run(_serve_beating(server, sock, heartbeats, slot))
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
    """Forks a worker per socket of ``socks`` and keeps them running until stopped;
    replaces one silent for ``hang_s``; calls ``on_ready`` once /readyz first answers."""

    config: uvicorn.Config
    socks: list[socket.socket]
    hang_s: float = 30.0
    on_ready: Callable[[], None] | None = None
    _heartbeats: Heartbeats = field(init=False)
    _pids: dict[int, int] = field(default_factory=dict)  # worker pid -> its socket's index
    _hung: dict[int, float] = field(default_factory=dict)  # replaced pid -> when to SIGKILL it
    _retry_at: list[tuple[float, int]] = field(default_factory=list)
    _stopping: bool = False
    _exit_code: int = 0

    def __post_init__(self) -> None:
        self._heartbeats = Heartbeats(len(self.socks))

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
        self._heartbeats.beat(index)  # the new worker has hang_s to beat on its own
        pid = os.fork()
        if pid == 0:  # the worker: never return into the supervisor's stack
            code = 1
            try:
                code = _serve(self.config, self.socks[index], self._heartbeats, index)
            finally:
                os._exit(code)
        self._pids[pid] = index
        _log.info("worker started", extra={"pid": pid})

    def _wait_once(self) -> None:
        """Sleep until a signal or a due retry; then reap, restart or begin stopping;
        replace a hung worker; say when the service first answers."""
        now = time.monotonic()
        tick = READY_POLL_S if self.on_ready is not None else 1.0
        timeout = min([tick, *(at - now for at, _ in self._retry_at)])
        got = signal.sigtimedwait(_WAITED_SIGNALS, max(timeout, 0.0))
        if got is not None and got.si_signo in _STOP_SIGNALS:
            _log.info("stopping", extra={"signal": signal.Signals(got.si_signo).name})
            self._stopping = True
        self._reap()
        if self._stopping:
            return
        self._watch()
        if self.on_ready is not None and answers_ready(self.config.host, self.config.port):
            self.on_ready()
            self.on_ready = None
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
            if self._hung.pop(pid, None) is None and not self._stopping:
                self._replace(pid, index, status)

    def _watch(self) -> None:
        """Replace a worker whose heartbeat is older than ``hang_s``; SIGKILL one replaced
        so that is still there after its grace."""
        now = time.monotonic()
        for pid, index in list(self._pids.items()):
            if pid in self._hung:
                if now >= self._hung[pid]:
                    _log.warning("hung worker did not stop; killing it", extra={"pid": pid})
                    os.kill(pid, signal.SIGKILL)  # reaped on a later turn
                    self._hung[pid] = math.inf
                continue
            silent_s = self._heartbeats.silent_s(index)
            if silent_s > self.hang_s:
                _log.error(
                    "worker hung; starting another",
                    extra={"pid": pid, "silent_s": round(silent_s, 1)},
                )
                # SIGCONT after SIGTERM, as systemd stops a service: a stopped worker
                # wakes to take it; a loop that turns again drains as on a stop.
                os.kill(pid, signal.SIGTERM)
                os.kill(pid, signal.SIGCONT)
                self._hung[pid] = now + GRACEFUL_S
                self._fork(index)  # on the same socket: its backlog is served at once

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
        self._hung.clear()
