"""The hot path's pipelined Redis reader against the real server."""

import asyncio
import socket

import pytest
import redis.asyncio as aioredis

from service.storage.redis.resp import RespClient, RespUnavailable, encode_command
from tests.conftest import ON_CLUSTER

# The protocol on one node: on a cluster run, tests/integration/test_redis_cluster.py.
pytestmark = pytest.mark.skipif(ON_CLUSTER, reason="single-node protocol tests")


def test_commands_are_encoded_as_resp_arrays() -> None:
    assert encode_command("HGET", "k", b"s") == b"*3\r\n$4\r\nHGET\r\n$1\r\nk\r\n$1\r\ns\r\n"


async def test_concurrent_commands_get_their_own_replies(clean_redis: str) -> None:
    writer = aioredis.Redis.from_url(clean_redis)
    reader = RespClient(clean_redis, timeout_s=2)
    try:
        await writer.mset({f"resp:{i}": f"value-{i}" for i in range(200)})
        replies = await asyncio.gather(*(reader.command("GET", f"resp:{i}") for i in range(200)))
        assert replies == [f"value-{i}".encode() for i in range(200)]
        assert await reader.command("GET", "resp:missing") is None
        with pytest.raises(RespUnavailable):
            await reader.command("HGET", "resp:1", "field")  # WRONGTYPE: an error reply
        assert await reader.command("GET", "resp:7") == b"value-7"  # still in step
    finally:
        reader.close()
        await writer.aclose()


async def test_a_killed_connection_fails_in_flight_and_reconnects(clean_redis: str) -> None:
    writer = aioredis.Redis.from_url(clean_redis)
    reader = RespClient(clean_redis, timeout_s=2)
    try:
        await writer.set("resp:k", "v")
        assert await reader.command("GET", "resp:k") == b"v"
        own_id = await reader.command("CLIENT", "ID")
        await writer.execute_command("CLIENT", "KILL", "ID", own_id)
        for _ in range(20):  # the first command after the kill may find the socket closed
            try:
                assert await reader.command("GET", "resp:k") == b"v"
                break
            except RespUnavailable:
                await asyncio.sleep(0.05)
        else:
            raise AssertionError("the reader did not reconnect")
    finally:
        reader.close()
        await writer.aclose()


async def test_an_unreachable_redis_is_unavailable_quickly() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    reader = RespClient(f"redis://127.0.0.1:{port}/0", timeout_s=0.5)
    with pytest.raises(RespUnavailable):
        await reader.command("GET", "x")


async def test_a_silent_server_times_out() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader = RespClient(f"redis://127.0.0.1:{port}/0", timeout_s=0.2)
    try:
        with pytest.raises(RespUnavailable, match="in time"):
            await reader.command("GET", "x")
    finally:
        reader.close()
        server.close()
