"""Redis: the card-state cache and the current program pointer.

Each card's keys share the hash tag ``{<number>}`` so that Redis Cluster keeps them
on one shard. A cached state carries the card's ledger version; the write is a Lua
script that refuses to replace a newer version, so a late writer (a slow request
that read Postgres before a commit) can never put an older state back.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any, TypeAlias

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from service.domain.card import CardState, PointLot
from service.storage.redis.resp import RespClient

_log = logging.getLogger(__name__)

CARD_TTL_S = 3600
# Decoded card states a worker keeps, each with the bytes it came from.
DECODED_STATES_KEPT = 4096
PROGRAM_KEY = "loyalty:program:current"
PROGRAM_CHANNEL = "loyalty:program:published"

# KEYS[1] = card key; ARGV = version, payload, ttl. Returns 1 if written, 0 if stale.
_SET_IF_NEWER = """
local current = redis.call('HGET', KEYS[1], 'v')
if current and tonumber(current) > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 's', ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""


# Bumped whenever the cached shape changes: a new release never reads an old entry.
CARD_STATE_FORMAT = 2


def card_key(number: str) -> str:
    return f"loyalty:card:{{{number}}}:state:v{CARD_STATE_FORMAT}"


RedisClient: TypeAlias = aioredis.Redis | aioredis.RedisCluster
"""redis-py's client of a single Redis or of a Redis Cluster: the same calls work on both."""


def create_client(url: str, timeout_s: float, *, cluster: bool = False) -> RedisClient:
    """A client of the Redis at ``url``; with ``cluster``, of the cluster it is a node of
    (its slot map, MOVED and ASK, a refresh after a failover: redis-py's RedisCluster)."""
    options: dict[str, Any] = {
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "health_check_interval": 30,
        "max_connections": 64,
    }
    if cluster:
        return aioredis.RedisCluster.from_url(url, **options)
    return aioredis.Redis.from_url(url, **options)


async def is_cluster(url: str, timeout_s: float, *, configured: bool | None = None) -> bool:
    """``configured`` (LOYALTY_REDIS_CLUSTER) if set, else whether the Redis at ``url``
    says it is a cluster node (``INFO cluster``); a single Redis if it does not answer."""
    if configured is not None:
        return configured
    client = aioredis.Redis.from_url(
        url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
    )
    try:
        info = await client.info("cluster")
    except (RedisError, OSError):
        _log.warning(
            "Redis does not answer; taken for a single Redis (set LOYALTY_REDIS_CLUSTER "
            "for a cluster that may be down when the service starts)"
        )
        return False
    finally:
        await client.aclose()
    return bool(info.get("cluster_enabled"))


def encode_state(state: CardState, day: date) -> bytes:
    return orjson.dumps(
        {
            "number": state.number,
            "status": state.status,
            "tier": state.tier,
            "tier_spend": state.tier_spend,
            "birthday": state.birthday,
            "segments": sorted(state.segments),
            "purchase_count": state.purchase_count,
            "personal_discount_bp": state.personal_discount_bp,
            "earned_today": state.points_earned_today,
            "day": day,
            "promo_uses": dict(state.promo_uses),
            "rule_uses": dict(state.rule_uses),
            "stamps": dict(state.stamps),
            "holds": [list(hold) for hold in state.holds],
            "customer_id": state.customer_id,
            "ledger_version": state.ledger_version,
            "debt": state.debt,
            "lots": [
                [lot.lot_id, lot.points, lot.activates_at, lot.expires_at] for lot in state.lots
            ],
        }
    )


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def decode_state(payload: bytes, day: date) -> CardState:
    """A cached state; the daily earning counter resets when the day has changed."""
    raw: dict[str, Any] = orjson.loads(payload)
    return CardState(
        number=raw["number"],
        status=raw["status"],
        tier=raw["tier"],
        tier_spend=raw["tier_spend"],
        lots=tuple(
            PointLot(lot_id, points, datetime.fromisoformat(activates), _dt(expires))
            for lot_id, points, activates, expires in raw["lots"]
        ),
        birthday=None if raw["birthday"] is None else date.fromisoformat(raw["birthday"]),
        segments=frozenset(raw["segments"]),
        purchase_count=raw["purchase_count"],
        personal_discount_bp=raw["personal_discount_bp"],
        points_earned_today=raw["earned_today"] if raw["day"] == day.isoformat() else 0,
        promo_uses=raw["promo_uses"],
        rule_uses=raw.get("rule_uses", {}),  # absent from states cached before 0010
        stamps=raw.get("stamps", {}),  # absent from states cached before 0019
        holds=tuple(
            (calc, points, datetime.fromisoformat(until))
            for calc, points, until in raw.get("holds", ())
        ),
        customer_id=raw["customer_id"],
        ledger_version=raw["ledger_version"],
        debt=raw["debt"],
    )


class CardCache:
    """Reads and the state's writes go through ``reader`` when given (the hot path's
    pipelined client, service.storage.redis.resp), the rest through redis-py."""

    def __init__(
        self, client: RedisClient, ttl_s: int = CARD_TTL_S, reader: RespClient | None = None
    ) -> None:
        self._client = client
        self._ttl_s = ttl_s
        self._reader = reader
        self._set_if_newer = client.register_script(_SET_IF_NEWER)
        self._decoded: dict[str, tuple[bytes, date, CardState]] = {}

    async def get(self, number: str, day: date) -> CardState | None:
        key = card_key(number)
        if self._reader is not None:
            payload = await self._reader.command("HGET", key, "s")
        else:
            payload = await self._client.hget(key, "s")
        if not payload:  # none, or marked stale by a write (storage/card_writes.py)
            return None
        payload = payload if isinstance(payload, bytes) else payload.encode()
        return self._decode(number, payload, day)

    def _decode(self, number: str, payload: bytes, day: date) -> CardState | None:
        """The state ``payload`` holds, decoded once per payload and day: a card's entry
        is read on every calculation and changes only when a sale or a job writes it.
        Comparing the bytes costs a fraction of a µs; decoding was 4.6% of a
        calculation's CPU in-process (py-spy, 2-core dev box)."""
        kept = self._decoded.get(number)
        if kept is not None and kept[0] == payload and kept[1] == day:
            return kept[2]
        try:
            state = decode_state(payload, day)
        except (KeyError, TypeError, ValueError):  # unreadable: a miss, never an error
            _log.warning("unreadable card-state cache entry; reading the ledger")
            return None
        if len(self._decoded) >= DECODED_STATES_KEPT:
            del self._decoded[next(iter(self._decoded))]  # the longest kept
        self._decoded[number] = (payload, day, state)
        return state

    async def put(self, state: CardState, day: date) -> bool:
        """Cache ``state`` unless a newer ledger version is already cached.

        Through ``reader`` when given, as the reads and the commit's stale marks
        (storage/card_writes.py) go: a calculation whose card is not cached writes it, and
        redis-py's script call (connection pool, retry wrapper, command packing) cost
        112 µs of CPU a write against 34 this way, the state's encoding included (medians
        of 6 alternated rounds of 1,000 writes; docs/performance.md, issue 21, session
        12)."""
        key = card_key(state.number)
        payload = encode_state(state, day)
        if self._reader is not None:
            written = await self._reader.command(
                "EVAL", _SET_IF_NEWER, "1", key, str(state.ledger_version), payload,
                str(self._ttl_s),
            )  # fmt: skip
        else:
            written = await self._set_if_newer(
                keys=[key], args=[state.ledger_version, payload, self._ttl_s]
            )
        return bool(written)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()

    async def forget(self, number: str) -> None:
        await self._client.delete(card_key(number))


async def ping(client: RedisClient) -> bool:
    try:
        return bool(await client.ping())
    except (RedisError, OSError):
        return False
