"""Calculations kept for their commit: what the customer was shown, under its id.

A record lives in Redis for an hour. Losing it (eviction, a flush, Redis down) costs
only speed: the commit recalculates with the program version pinned in the id.
"""

from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as aioredis

CALCULATION_TTL_S = 3600


def calculation_key(calculation_id: str) -> str:
    return f"loyalty:calc:{calculation_id}"


class CalculationStore:
    def __init__(self, client: aioredis.Redis, ttl_s: int = CALCULATION_TTL_S) -> None:
        self._client = client
        self._ttl_s = ttl_s

    async def save(self, calculation_id: str, record: dict[str, Any]) -> None:
        await self._client.set(
            calculation_key(calculation_id), orjson.dumps(record), ex=self._ttl_s
        )

    async def load(self, calculation_id: str) -> dict[str, Any] | None:
        payload = await self._client.get(calculation_key(calculation_id))
        if payload is None:
            return None
        record: dict[str, Any] = orjson.loads(payload)
        return record
