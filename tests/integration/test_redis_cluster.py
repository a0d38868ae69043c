"""On a real Redis Cluster (3 masters, 3 replicas, from the redis-server binary): the hot
path's client routes by slot and follows MOVED and ASK, TLS and ACL users work, a publish
reaches every node, and a master killed under load changes no answer.

``make test-cluster`` runs these (marker ``cluster``) and the whole suite on a cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from service.api.app import create_app
from service.local.redis_cluster import (
    ClusterUnavailable,
    LocalRedisCluster,
    redis_binaries,
    self_signed_tls,
)
from service.storage.redis.cache import card_key, create_client, is_cluster
from service.storage.redis.card_writes import CardStateWriter
from service.storage.redis.program_switch import RedisProgramSwitch, follow_switches
from service.storage.redis.resp import RespClient, RespUnavailable, slot_of
from tests.conftest import (
    ADMIN,
    POS,
    app_settings,
    fresh_database,
    load_test_demo,
    temporary_cluster,
)
from tests.e2e.test_pos_api import receipt

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalRedisCluster]:
    with temporary_cluster() as started:
        yield started


@pytest.fixture
async def resp(cluster: LocalRedisCluster) -> AsyncIterator[RespClient]:
    client = RespClient(cluster.url(), timeout_s=2, cluster=True)
    yield client
    client.close()


async def test_the_service_finds_a_cluster_from_any_node(cluster: LocalRedisCluster) -> None:
    for port in cluster.ports:  # masters and replicas alike
        assert await is_cluster(cluster.url(port), 2.0)
    assert await is_cluster(cluster.url(), 2.0, configured=False) is False


async def test_each_key_lives_on_the_master_of_its_slot(
    cluster: LocalRedisCluster, resp: RespClient
) -> None:
    keys = [f"route:{{{n}}}:k" for n in range(300)]
    replies = await asyncio.gather(*(resp.command("SET", key, key) for key in keys))
    assert replies == [b"OK"] * len(keys)
    assert await asyncio.gather(*(resp.command("GET", key) for key in keys)) == [
        key.encode() for key in keys
    ]
    held: dict[int, int] = {}
    for port in cluster.masters():
        for key in keys:
            with contextlib.suppress(Exception):  # MOVED from the other masters
                if cluster.client(port).get(key) == key.encode():
                    held[slot_of(key)] = port
    assert len(held) == len({slot_of(key) for key in keys})  # every key found where routed
    assert len(set(held.values())) == 3  # and the keys spread over the three masters


async def test_a_stale_slot_map_is_read_again_after_moved(
    cluster: LocalRedisCluster, resp: RespClient
) -> None:
    keys = [f"moved:{n}" for n in range(50)]
    await resp.pipeline([("SET", key, key) for key in keys])
    one_node = ("127.0.0.1", cluster.masters()[0])
    resp._cluster._slots = [one_node] * 16384  # type: ignore[union-attr]
    assert await resp.command("GET", keys[0]) is not None
    resp._cluster._slots = [one_node] * 16384  # type: ignore[union-attr]
    assert await resp.pipeline([("GET", key) for key in keys]) == [k.encode() for k in keys]


async def test_an_ask_reply_is_followed(cluster: LocalRedisCluster, resp: RespClient) -> None:
    """A slot half-migrated: the source answers ASK for a key it no longer holds."""
    slots = await resp._cluster._slot_map()  # type: ignore[union-attr]
    key = "ask:1"
    source_port = slots[slot_of(key)][1]
    target_port = next(port for port in cluster.masters() if port != source_port)
    source, target = cluster.client(source_port), cluster.client(target_port)
    slot = slot_of(key)
    source_id = source.execute_command("CLUSTER", "MYID")
    target_id = target.execute_command("CLUSTER", "MYID")
    target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
    source.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
    try:
        with target.pipeline(transaction=False) as pipe:  # one connection: ASKING holds
            pipe.execute_command("ASKING")
            pipe.set(key, "on the target")
            pipe.execute()
        assert await resp.command("GET", key) == b"on the target"
    finally:
        with target.pipeline(transaction=False) as pipe:
            pipe.execute_command("ASKING")
            pipe.delete(key)
            pipe.execute()
        for node in (source, target):
            node.execute_command("CLUSTER", "SETSLOT", slot, "STABLE")


async def test_card_writes_cross_slots_in_one_call(
    cluster: LocalRedisCluster, resp: RespClient
) -> None:
    numbers = [f"2900000{n:06d}" for n in range(40)]
    await CardStateWriter(resp).mark_stale((number, 7) for number in numbers)
    client = create_client(cluster.url(), 2.0, cluster=True)
    try:
        for number in numbers:
            assert await client.hget(card_key(number), "v") == b"7"
    finally:
        await client.aclose()


async def test_a_publish_reaches_every_node_and_the_followers(
    cluster: LocalRedisCluster,
) -> None:
    listeners = [aioredis.Redis(host="127.0.0.1", port=port) for port in cluster.ports]
    subscriptions = [listener.pubsub() for listener in listeners]
    switches: asyncio.Queue[float] = asyncio.Queue()

    async def on_switch() -> None:
        switches.put_nowait(time.monotonic())

    client = create_client(cluster.url(), 2.0, cluster=True)
    follower = asyncio.create_task(follow_switches(client, on_switch))
    try:
        for subscription in subscriptions:
            await subscription.subscribe("loyalty:program:published")
            await subscription.get_message(timeout=1)  # the subscribe confirmation
        await asyncio.wait_for(switches.get(), 5)  # subscribed, the follower reloads once
        sent = time.monotonic()
        await RedisProgramSwitch(client).announce(42)
        for subscription in subscriptions:
            message = await subscription.get_message(ignore_subscribe_messages=True, timeout=1)
            assert message is not None and message["data"] == b"42"
        assert await asyncio.wait_for(switches.get(), 1) - sent < 1.0
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        for subscription in subscriptions:
            await subscription.aclose()
        for listener in listeners:
            await listener.aclose()
        await client.aclose()


def _tls_available() -> bool:
    try:
        redis_binaries(tls=True)
    except ClusterUnavailable:
        return False
    return shutil.which("openssl") is not None


@pytest.mark.skipif(not _tls_available(), reason="needs Debian's redis-server (TLS) and openssl")
async def test_tls_and_an_acl_user(tmp_path: Path) -> None:
    tls = self_signed_tls(tmp_path / "tls")
    with temporary_cluster(tls=tls, password="admin-secret") as secure:
        for port in secure.ports:  # an ACL user limited to the service's keys and channels
            secure.client(port).execute_command(
                "ACL", "SETUSER", "loyalty", "on", ">till-secret", "~loyalty:*", "&loyalty:*",
                "+@all", "-@dangerous", "+info", "+cluster|slots", "+cluster|info",
            )  # fmt: skip
        url = secure.url(user="loyalty", password="till-secret")
        assert url.startswith("rediss://loyalty:till-secret@")
        assert await is_cluster(url, 2.0)
        resp = RespClient(url, timeout_s=2, cluster=True)
        client = create_client(url, 2.0, cluster=True)
        try:
            keys = [f"loyalty:card:{{{n}}}:tls" for n in range(30)]
            await resp.pipeline([("SET", key, "x") for key in keys])
            assert await client.mget_nonatomic(keys) == [b"x"] * len(keys)
            with pytest.raises(RespUnavailable):  # outside the user's keys
                await resp.command("SET", "other:key", "x")
        finally:
            resp.close()
            await client.aclose()
        wrong = RespClient(secure.url(user="loyalty", password="wrong"), 2, cluster=True)
        with pytest.raises(RespUnavailable):
            await wrong.command("GET", "loyalty:card:{1}:tls")
        wrong.close()
        plain = RespClient(secure.url().replace("rediss://", "redis://"), 1, cluster=True)
        with pytest.raises(RespUnavailable):  # a TLS port refuses plain text
            await plain.command("GET", "loyalty:card:{1}:tls")
        plain.close()


def _answer(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    body.pop("calculation_id", None)
    return dict(body)


async def test_a_master_killed_under_load_changes_no_answer(server_url: str) -> None:
    """Tills calculate and sell while a master is killed: every calculation equals the one
    made before, every sale is answered 200 or 503 and replays alike, the ledger holds."""
    with temporary_cluster() as doomed:
        async with fresh_database(server_url, "loyalty_cluster") as database:
            await load_test_demo(database)
            app = create_app(app_settings(database, doomed.url()))
            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://loyalty.test"
                ) as client,
            ):
                await _sell_through_a_failover(doomed, client)
            # fresh_database checks every ledger invariant on the way out


async def _new_card(client: httpx.AsyncClient, number: str, points: int) -> None:
    made = await client.post("/v1/admin/cards", json={"number": number}, headers=ADMIN)
    assert made.status_code == 201, made.text
    credit = await client.post(
        f"/v1/admin/cards/{number}/adjustments",
        json={"points": points, "reason": "cluster test"},
        headers=ADMIN,
    )
    assert credit.status_code == 201, credit.text


async def _sell_through_a_failover(cluster: LocalRedisCluster, client: httpx.AsyncClient) -> None:
    stamp = int(time.time() * 1000) % 10**8
    browsing = [f"27{stamp:08d}{n:03d}" for n in range(24)]
    selling = [f"28{stamp:08d}{n:03d}" for n in range(8)]
    for number in browsing + selling:
        await _new_card(client, number, 5_000)
    expected = {}
    for number in browsing:
        shown = await client.post("/v1/calculate", json=receipt(card=number), headers=POS)
        assert shown.status_code == 200, shown.text
        expected[number] = _answer(shown)
    slots = [slot_of(card_key(number)) for number in browsing]
    resp = RespClient(cluster.url(), 2, cluster=True)
    owners = await resp._cluster._slot_map()  # type: ignore[union-attr]
    resp.close()
    victim = owners[slots[0]][1]  # the master of the first card's slot
    statuses: list[int] = []
    acknowledged: list[tuple[dict[str, Any], str]] = []
    wrong: list[str] = []
    stop = time.monotonic() + 8.0
    killed_at: list[float] = []

    async def browse(offset: int) -> None:
        n = offset
        while time.monotonic() < stop:
            number = browsing[n % len(browsing)]
            n += 1
            shown = await client.post("/v1/calculate", json=receipt(card=number), headers=POS)
            statuses.append(shown.status_code)
            if shown.status_code == 200 and _answer(shown) != expected[number]:
                wrong.append(number)

    async def sell(number: str) -> None:
        sale = 0
        while time.monotonic() < stop:
            sale += 1
            body = receipt(card=number, transaction_id=f"t-{number}-{sale}", redeem_points=10)
            answered = await client.post("/v1/commit", json=body, headers=POS)
            statuses.append(answered.status_code)
            if answered.status_code == 200:
                acknowledged.append((body, answered.text))
            await asyncio.sleep(0.05)

    async def kill_later() -> None:
        await asyncio.sleep(2.5)
        cluster.kill(victim)
        killed_at.append(time.monotonic())

    await asyncio.gather(
        *(browse(k) for k in range(4)), *(sell(number) for number in selling), kill_later()
    )
    assert killed_at, "the master was not killed during the load"
    assert not wrong, f"answers changed for {sorted(set(wrong))}"
    assert set(statuses) <= {200, 503}, sorted(set(statuses))
    assert statuses.count(200) > 0.9 * len(statuses)
    assert len(acknowledged) >= len(selling)
    await asyncio.to_thread(cluster.wait_ok)  # the replica took over
    for body, text in acknowledged:  # every acknowledged sale replays alike
        again = await client.post("/v1/commit", json=body, headers=POS)
        assert (again.status_code, again.text) == (200, text)
    number = browsing[0]  # the failed master's card is cached again on its new master
    alive = next(port for port in cluster.ports if port != victim)  # the URL's may be dead
    client_of_cluster = create_client(cluster.url(alive), 2.0, cluster=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            shown = await client.post("/v1/calculate", json=receipt(card=number), headers=POS)
            assert shown.status_code == 200 and _answer(shown) == expected[number]
            if await client_of_cluster.exists(card_key(number)):
                break
            assert time.monotonic() < deadline, "the card is not cached again after failover"
            await asyncio.sleep(0.2)
    finally:
        await client_of_cluster.aclose()
