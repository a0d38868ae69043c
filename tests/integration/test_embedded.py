"""The embedded servers of a one-command start (service/local/embedded.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import redis

from service.local.embedded import EmbeddedServers, start_postgres, start_redis


def test_embedded_redis_keeps_its_data_across_a_stop(tmp_path: Path) -> None:
    """No append-only file: the snapshot written when it stops is read at the next start."""
    url, proc = start_redis(tmp_path)
    try:
        redis.Redis.from_url(url).set("loyalty:test", b"kept")
    finally:
        EmbeddedServers(_redis=proc).stop()
    assert not list((tmp_path / "redis").glob("*.aof"))
    assert not (tmp_path / "redis" / "appendonlydir").exists()
    assert (tmp_path / "redis" / "dump.rdb").exists()
    url, proc = start_redis(tmp_path)
    try:
        assert redis.Redis.from_url(url).get("loyalty:test") == b"kept"
    finally:
        EmbeddedServers(_redis=proc).stop()


def test_embedded_postgres_does_not_zero_fill_new_wal_segments(tmp_path: Path) -> None:
    """A fresh cluster creates WAL segments under load; zero-filling each stalls commits."""
    folder = tmp_path / "data"
    folder.mkdir()
    os.chmod(tmp_path, 0o755)  # the embedded Postgres runs as its own user when we are root
    os.chmod(folder, 0o755)
    _, server = start_postgres(folder)
    try:
        # pg_reload_conf() signals the server; a session started after it has read
        # the file sees the setting.
        deadline = time.monotonic() + 5
        while (setting := server.psql("SHOW wal_init_zero;").split()[2]) != "off":
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert setting == "off"
    finally:
        EmbeddedServers(_postgres=server).stop()
