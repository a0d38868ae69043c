"""The RESP client's batched writes and pipelines, and the calculation records on it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis

from service.storage.redis.calculations import CalculationStore, calculation_key
from service.storage.redis.resp import RespClient, RespUnavailable
from tests.conftest import ON_CLUSTER

# The protocol on one node: on a cluster run, tests/integration/test_redis_cluster.py.
pytestmark = pytest.mark.skipif(ON_CLUSTER, reason="single-node protocol tests")


class _CountingTransport:
    """Wraps the protocol's transport to count its writes."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.transport.write(data)

    def close(self) -> None:
        self.transport.close()


async def test_commands_of_one_loop_turn_leave_in_one_write(clean_redis: str) -> None:
    client = RespClient(clean_redis, timeout_s=2)
    try:
        assert await client.command("PING") == b"PONG"  # connected
        protocol = client._link.protocol
        assert protocol is not None
        counting = _CountingTransport(protocol.transport)
        protocol.transport = counting  # type: ignore[assignment]
        replies = await asyncio.gather(*(client.command("ECHO", f"e{i}") for i in range(20)))
        assert replies == [f"e{i}".encode() for i in range(20)]
        assert len(counting.writes) == 1
        assert await client.command("ECHO", "later") == b"later"
        assert len(counting.writes) == 2
    finally:
        client.close()


async def test_a_pipeline_answers_in_order_and_raises_its_first_error(clean_redis: str) -> None:
    client = RespClient(clean_redis, timeout_s=2)
    try:
        assert await client.pipeline([("SET", "pipe:a", "1"), ("GET", "pipe:a")]) == [b"OK", b"1"]
        with pytest.raises(RespUnavailable, match="WRONGTYPE"):
            await client.pipeline(
                [("SET", "pipe:b", "2"), ("HGET", "pipe:b", "f"), ("GET", "pipe:b")]
            )
        assert await client.command("GET", "pipe:b") == b"2"  # still in step
    finally:
        client.close()


def test_a_client_like_redis_py_s_reaches_the_same_server_database_and_user() -> None:
    same = RespClient.like(aioredis.Redis.from_url("redis://us%3Ar:p%40w@10.0.0.1:6380/14"))
    assert same._link._where == ("10.0.0.1", 6380, None)
    dial = same._link._dial
    assert (dial.database, dial.user, dial.password, dial.ssl) == (14, "us:r", "p@w", None)
    local = RespClient.like(aioredis.Redis.from_url("unix:///run/redis.sock?db=3"))
    assert local._link._where == ("", 0, "/run/redis.sock")
    assert local._link._dial.database == 3


async def test_calculation_records_are_written_behind_and_read_back(clean_redis: str) -> None:
    client = aioredis.Redis.from_url(clean_redis)
    store = CalculationStore(client, ttl_s=60)
    try:
        await store.save("c_1_a", {"view": {"lines": []}, "tier_spend": 5})
        assert await store.load("c_1_a") == {"view": {"lines": []}, "tier_spend": 5}  # queued
        await store.close()  # writes what is queued
        assert await client.get(calculation_key("c_1_a")) is not None
        assert 0 < await client.ttl(calculation_key("c_1_a")) <= 60
        assert await store.load("c_1_a") == {"view": {"lines": []}, "tier_spend": 5}
    finally:
        await client.aclose()
