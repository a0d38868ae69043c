"""The embedded servers of a one-command start (service/storage/embedded.py)."""

from __future__ import annotations

from pathlib import Path

import redis

from service.storage.embedded import EmbeddedServers, start_redis


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
