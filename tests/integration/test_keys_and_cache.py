"""API keys in Postgres and the card-state cache in Redis, on the real servers."""

from datetime import UTC, date, datetime, timedelta

import asyncpg

from service.domain.access import KeyRing
from service.domain.card import CardState, PointLot
from service.storage.postgres.keys import active_keys, create_key, revoke_key
from service.storage.redis.cache import CardCache, card_key
from tests.conftest import redis_client


async def test_keys_are_stored_hashed_and_revocable(db: asyncpg.Connection) -> None:
    key = await create_key(db, name="till 7", role="pos", store_ids=["msk-001"])
    stored = await db.fetchrow("SELECT * FROM api_keys WHERE name = 'till 7'")
    assert key not in str(dict(stored))  # only the digest is kept
    ring = KeyRing(await active_keys(db))
    assert ring.authenticate(f"Bearer {key}").store_ids == {"msk-001"}
    assert (await revoke_key(db, stored["key_id"], "test"))["revoked_at"] is not None
    assert all(k.principal.name != "till 7" for k in await active_keys(db))


NOW = datetime.now(UTC)


def _state(version: int, points: int) -> CardState:
    now = NOW
    lot = PointLot(1, points, now - timedelta(days=1), now + timedelta(days=30))
    return CardState(
        number="4000000000099",
        lots=(lot,),
        ledger_version=version,
        segments=frozenset({"vip"}),
        birthday=date(1990, 1, 2),
        promo_uses={"AUTUMN10": 1},
        points_earned_today=7,
    )


async def test_cache_round_trip_and_stale_writer_never_wins(clean_redis: str) -> None:
    client = redis_client(clean_redis)
    cache = CardCache(client)
    today = NOW.date()
    try:
        assert await cache.put(_state(5, 500), today)
        assert await cache.get("4000000000099", today) == _state(5, 500)
        # A slow request that read version 4 before a commit must not overwrite version 5.
        assert not await cache.put(_state(4, 900), today)
        assert (await cache.get("4000000000099", today)).lots[0].points == 500  # type: ignore[union-attr]
        assert await cache.put(_state(6, 100), today)
        # The daily earning counter restarts on a new day.
        tomorrow = today + timedelta(days=1)
        assert (await cache.get("4000000000099", tomorrow)).points_earned_today == 0  # type: ignore[union-attr]
    finally:
        await cache.forget("4000000000099")
        await client.aclose()


async def test_an_unreadable_cache_entry_is_a_miss(clean_redis: str) -> None:
    client = redis_client(clean_redis)
    try:
        await client.hset(card_key("4000000000098"), mapping={"v": 1, "s": b'{"number": 1}'})
        assert await CardCache(client).get("4000000000098", NOW.date()) is None
    finally:
        await client.delete(card_key("4000000000098"))
        await client.aclose()


async def test_a_decoded_state_is_reused_only_while_its_entry_is_unchanged(
    clean_redis: str,
) -> None:
    client = redis_client(clean_redis)
    reader, other_worker = CardCache(client), CardCache(client)
    today = NOW.date()
    try:
        await other_worker.put(_state(5, 500), today)
        first = await reader.get("4000000000099", today)
        assert await reader.get("4000000000099", today) is first  # decoded once
        await other_worker.put(_state(6, 120), today)  # a sale in another worker
        assert (await reader.get("4000000000099", today)) == _state(6, 120)
        tomorrow = await reader.get("4000000000099", today + timedelta(days=1))
        assert tomorrow is not None and tomorrow.points_earned_today == 0
        await client.hset(card_key("4000000000099"), "s", b"")  # marked stale by a write
        assert await reader.get("4000000000099", today) is None
    finally:
        await reader.forget("4000000000099")
        await client.aclose()
