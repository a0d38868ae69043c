"""Promotion state the calculation reads: promo-code uses, campaign budgets and the
uses of capped rules.

Budgets and the uses of codes declared in the program and of capped rules are few and
change with every sale; each worker re-reads them in the background (every few
seconds) and reads them from memory on the hot path. A calculation may therefore
accept a code or a budget a few seconds after the last use went; the commit re-checks
code limits, budgets and use caps under lock, so none is ever exceeded. Batch-generated
codes (possibly millions) are looked up when a receipt carries one, through a
short-lived Redis cache.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

import asyncpg
import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from service.domain.card import PromoCodeState
from service.domain.limits import use_key
from service.storage.postgres.pool import database_errors
from service.storage.redis.cache import RedisClient

_log = logging.getLogger(__name__)
CODE_TTL_S = 10


def _code_key(code: str) -> str:
    return f"loyalty:promo:{code}"


def _state(row: Mapping[str, Any]) -> PromoCodeState:
    max_uses, uses = row["max_uses"], row["uses"]
    return PromoCodeState(
        code=row["code"],
        rule_id=row["rule_ids"][0],
        active=row["revoked_at"] is None,
        valid_from=row["valid_from"],
        valid_to=row["valid_to"],
        uses_left=None if max_uses is None else max(max_uses - uses, 0),
        per_card_limit=row["per_card_limit"],
        card=row["card"],
    )


def _encode(state: PromoCodeState) -> bytes:
    return orjson.dumps(state)


def _decode(payload: bytes | str) -> PromoCodeState:
    raw = orjson.loads(payload)
    for key in ("valid_from", "valid_to"):
        if raw[key] is not None:
            raw[key] = datetime.fromisoformat(raw[key])
    return PromoCodeState(**raw)


class Promotions:
    def __init__(self, pool: asyncpg.Pool, redis: RedisClient) -> None:
        self._pool = pool
        self._redis = redis
        self.budgets_used: Mapping[str, int] = MappingProxyType({})
        self.code_uses: Mapping[str, int] = MappingProxyType({})
        self.rule_uses: Mapping[str, int] = MappingProxyType({})

    async def refresh(self) -> None:
        """Re-read budgets, the uses of limited codes and of capped rules (one query each)."""
        budgets = await self._pool.fetch("SELECT rule_id, used FROM campaign_budgets")
        uses = await self._pool.fetch(
            "SELECT code, uses FROM promo_codes WHERE max_uses IS NOT NULL AND uses > 0"
        )
        rules = await self._pool.fetch(
            "SELECT rule_id, period, uses FROM rule_use_counts WHERE uses > 0"
        )
        self.budgets_used = MappingProxyType({r["rule_id"]: r["used"] for r in budgets})
        self.code_uses = MappingProxyType({r["code"]: r["uses"] for r in uses})
        self.rule_uses = MappingProxyType(
            {use_key(r["rule_id"], r["period"]): r["uses"] for r in rules}
        )

    async def held_codes(self, codes: Iterable[str]) -> dict[str, PromoCodeState]:
        """States of database-held codes among ``codes`` (unknown codes are left out)."""
        wanted = list(dict.fromkeys(codes))
        if not wanted:
            return {}
        found = await self._cached(wanted)
        missing = [code for code in wanted if code not in found]
        if missing:
            async with database_errors():
                rows = await self._pool.fetch(
                    "SELECT p.*, c.number AS card FROM promo_codes p"
                    " LEFT JOIN cards c ON c.card_id = p.card_id WHERE p.code = ANY($1)",
                    missing,
                )
            fresh = {row["code"]: _state(row) for row in rows}
            found.update(fresh)
            await self._cache(fresh)
        return found

    async def forget(self, codes: Iterable[str]) -> None:
        """Drop cached states after their uses changed (a commit or a return)."""
        keys = [_code_key(code) for code in codes]
        if keys:
            try:
                await self._redis.delete(*keys)
            except (RedisError, OSError):
                _log.warning("promo code cache unavailable; entries expire on their own")

    async def _cached(self, codes: list[str]) -> dict[str, PromoCodeState]:
        try:
            keys = [_code_key(code) for code in codes]
            if isinstance(self._redis, aioredis.RedisCluster):  # keys in many slots
                payloads = await self._redis.mget_nonatomic(keys)
            else:
                payloads = await self._redis.mget(keys)
        except (RedisError, OSError):
            return {}
        return {c: _decode(p) for c, p in zip(codes, payloads, strict=True) if p is not None}

    async def _cache(self, states: Mapping[str, PromoCodeState]) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for code, state in states.items():
                    pipe.set(_code_key(code), _encode(state), ex=CODE_TTL_S)
                await pipe.execute()
        except (RedisError, OSError):
            _log.warning("promo code cache unavailable")
