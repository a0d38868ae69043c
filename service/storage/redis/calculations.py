"""Calculations kept for their commit: what the customer was shown, under its id.

A record lives in Redis for an hour. Losing it (eviction, a flush, Redis down, a
worker stopped before it wrote) costs only speed: the commit recalculates with the
program version pinned in the id.

Records are written behind the response, in batches: each request only queues its
record, and one pipelined round trip writes everything queued meanwhile. Measured on
the 2-core dev machine, a SET of a fresh 3 KB record cost /v1/calculate ~260 µs of
wall time per request in line; queued and pipelined it costs ~15 µs. The pipeline
goes through the hot path's own RESP client (service.storage.redis.resp) rather than
redis-py's, whose pipeline cost the request ~40 µs of CPU more (profile_calculate's
"calculation record" part: 56-61 µs before, see docs/performance.md).
"""

from __future__ import annotations

import asyncio
import logging

import orjson

from service.storage.redis.cache import RedisClient
from service.storage.redis.resp import FallbackCounter, RespClient, RespUnavailable, uncounted
from service.usecases.ports import CalculationRecord, RenderedCalculation

_log = logging.getLogger(__name__)

CALCULATION_TTL_S = 3600


def calculation_key(calculation_id: str) -> str:
    return f"loyalty:calc:{calculation_id}"


class CalculationStore:
    """Reads and writes through ``writer``, by default a RESP client of its own to the
    server of redis-py's ``client`` (pass the card reader's to share its connection)."""

    def __init__(
        self,
        client: RedisClient,
        ttl_s: int = CALCULATION_TTL_S,
        writer: RespClient | None = None,
        count_fallback: FallbackCounter = uncounted,
    ) -> None:
        self._ttl_s = ttl_s
        self._owns_writer = writer is None
        self._resp = RespClient.like(client) if writer is None else writer
        self._queued: dict[str, bytes] = {}
        self._writer: asyncio.Task[None] | None = None
        self.count_fallback = count_fallback  # records lost: "read"/"write" and a count

    async def save(self, calculation_id: str, record: RenderedCalculation) -> None:
        """Queue the record; a background task writes the queue in one pipeline."""
        self._queued[calculation_id] = orjson.dumps(record)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_queued())

    async def _write_queued(self) -> None:
        await asyncio.sleep(0)  # let the requests in flight queue theirs first
        while self._queued:
            batch, self._queued = self._queued, {}
            ttl = str(self._ttl_s)
            try:
                await self._resp.pipeline(
                    [
                        ("SET", calculation_key(calculation_id), payload, "EX", ttl)
                        for calculation_id, payload in batch.items()
                    ]
                )
            except (RespUnavailable, OSError):
                _log.warning("calculations not kept; their commits will recalculate")
                self.count_fallback("write", len(batch))

    async def load(self, calculation_id: str) -> CalculationRecord | None:
        queued = self._queued.get(calculation_id)
        # Through the RESP client too: redis-py's GET cost a commit ~100 µs of CPU more.
        try:
            payload = (
                queued
                if queued is not None
                else await self._resp.command("GET", calculation_key(calculation_id))
            )
        except (RespUnavailable, OSError):
            self.count_fallback("read", 1)  # the commit recalculates (usecases.commit)
            raise
        if payload is None:
            return None
        record: CalculationRecord = orjson.loads(payload)
        return record

    async def close(self) -> None:
        """Write what is still queued (at shutdown)."""
        if self._writer is not None:
            await self._writer
        if self._queued:
            await self._write_queued()
        if self._owns_writer:
            self._resp.close()
