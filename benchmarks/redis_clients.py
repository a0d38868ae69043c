"""The hot path's Redis read, client against client: CPU per HGET of a card state.

    python -m benchmarks.redis_clients [--commands 20000] [--concurrency 8]

On a redis-server of its own and on a Redis Cluster of its own (3 masters, 3 replicas:
service/local/redis_cluster.py), ``--concurrency`` tasks read cached card states (the
calculate path's one Redis command) until ``--commands`` are done, through the project's
pipelined client (service/storage/redis/resp.py) and through redis-py (``Redis`` and
``RedisCluster``). Printed: CPU µs of this process per command (what a loaded worker
pays), and the wall time. uvloop, as the service runs.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvloop

from service.local.redis_cluster import free_ports, redis_binaries, start_cluster
from service.storage.redis.cache import card_key, create_client
from service.storage.redis.resp import RespClient

CARDS = 2_000


async def _measure(read: Callable[[str], Awaitable[object]], commands: int, tasks: int) -> float:
    keys = [card_key(f"2{n:012d}") for n in range(CARDS)]
    done = 0

    async def reader(offset: int) -> None:
        nonlocal done
        n = offset
        while done < commands:
            done += 1
            await read(keys[n % CARDS])
            n += tasks

    await asyncio.gather(*(reader(k) for k in range(tasks)))  # warm: connections, slot map
    done = 0
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(reader(k) for k in range(tasks)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu / commands * 1e6, wall


async def _fill(url: str, cluster: bool) -> None:
    client = create_client(url, 5.0, cluster=cluster)
    try:
        async with client.pipeline(transaction=False) as pipe:
            for n in range(CARDS):
                pipe.hset(card_key(f"2{n:012d}"), mapping={"v": 1, "s": b"x" * 600})
            await pipe.execute()
    finally:
        await client.aclose()


async def _compare(url: str, cluster: bool, commands: int, tasks: int) -> list[str]:
    await _fill(url, cluster)
    resp = RespClient(url, 2.0, cluster=cluster)
    redis_py = create_client(url, 2.0, cluster=cluster)
    rows = []
    try:
        for name, read in (
            ("resp.RespClient", lambda key: resp.command("HGET", key, "s")),
            ("redis-py " + ("RedisCluster" if cluster else "Redis"),
             lambda key: redis_py.hget(key, "s")),
        ):  # fmt: skip
            us, wall = await _measure(read, commands, tasks)
            rows.append(
                f"| {'cluster' if cluster else 'single'} | {name} | {us:.1f} | {wall:.2f} |"
            )
    finally:
        resp.close()
        await redis_py.aclose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="loyalty-redis-bench-"))
    server, _ = redis_binaries()
    port = free_ports(1)[0]
    single = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )
    cluster = start_cluster(folder / "cluster")
    try:
        time.sleep(0.5)
        rows = ["| Redis | client | CPU µs per HGET | wall s |", "| --- | --- | --- | --- |"]
        rows += uvloop.run(
            _compare(f"redis://127.0.0.1:{port}/0", False, args.commands, args.concurrency)
        )
        rows += uvloop.run(_compare(cluster.url(), True, args.commands, args.concurrency))
        print(f"{args.commands} HGETs, {args.concurrency} tasks at once")
        print("\n".join(rows))
    finally:
        cluster.stop()
        single.terminate()
        single.wait()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
