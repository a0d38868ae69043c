"""Card state for the calculation: Redis first, Postgres on a miss (then cached).

Redis being down makes this slower, never wrong: the state is read from Postgres.
Postgres being down is survivable while the card is cached.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg
from redis.exceptions import RedisError

from service.domain.card import CardState, day_start
from service.rules.compiler import CompiledProgram
from service.storage.postgres.cards import load_card_state
from service.storage.postgres.pool import database_errors
from service.storage.redis.cache import CardCache
from service.storage.redis.resp import FallbackCounter, uncounted

_log = logging.getLogger(__name__)


class CachedCardStates:
    def __init__(
        self,
        pool: asyncpg.Pool,
        cache: CardCache,
        count_lookup: Callable[[str], None],
        count_fallback: FallbackCounter = uncounted,
    ) -> None:
        self._pool = pool
        self._cache = cache
        self._count_lookup = count_lookup  # called with "hit" or "miss"
        self.count_fallback = count_fallback  # called with "read"/"write" and a count

    async def get(self, number: str, now: datetime, program: CompiledProgram) -> CardState | None:
        today = now.date()
        try:
            cached = await self._cache.get(number, today)
        except (RedisError, OSError):
            _log.warning("card cache unavailable; reading Postgres")
            self.count_fallback("read", 1)
            cached = None
        if cached is not None:
            self._count_lookup("hit")
            return cached
        self._count_lookup("miss")
        state = await self.load(number, now, program)
        if state is not None:
            try:
                await self._cache.put(state, today)
            except (RedisError, OSError):
                _log.warning("card cache unavailable; state not cached")
                self.count_fallback("write", 1)
        return state

    async def refresh(self, number: str, now: datetime, program: CompiledProgram) -> None:
        """Cache the card's state as the ledger now has it; a newer cached version wins."""
        state = await self.load(number, now, program)
        try:
            if state is None:
                await self._cache.forget(number)
            else:
                await self._cache.put(state, now.date())
        except (RedisError, OSError):
            _log.warning("card cache unavailable; state not refreshed")
            self.count_fallback("write", 1)

    async def load(self, number: str, now: datetime, program: CompiledProgram) -> CardState | None:
        window = program.document.tiers.window_days
        async with database_errors():
            return await load_card_state(
                self._pool,
                number,
                tier_window_start=None if window is None else now - timedelta(days=window),
                day_start=day_start(now),
            )
