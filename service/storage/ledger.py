"""The ledger of record: sales written by ``loyalty_commit`` in one round trip."""

from __future__ import annotations

from typing import Any

import asyncpg

from service.storage.cards import card_state_from
from service.storage.postgres import database_errors


class OutcomeRefused(Exception):
    """Raised inside the transaction so that a refused sale rolls back whatever it touched."""

    def __init__(self, outcome: dict[str, Any]) -> None:
        super().__init__(outcome.get("outcome"))
        self.outcome = outcome


class Ledger:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def commit_sale(self, params: dict[str, Any]) -> dict[str, Any]:
        """Record a sale; returns the function's outcome (``committed``, ``replay`` or a refusal).
        A committed sale's outcome carries the card's new ``state`` (a CardState).

        A concurrent duplicate of an anonymous sale loses the race on the receipt's
        primary key; it is retried once and then answers as a replay or a conflict.
        """
        for attempt in (1, 2):
            try:
                return await self._commit_once(params)
            except asyncpg.UniqueViolationError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _commit_once(self, params: dict[str, Any]) -> dict[str, Any]:
        async with database_errors(), self._pool.acquire() as conn:
            try:
                async with conn.transaction():
                    outcome: dict[str, Any] = await conn.fetchval(
                        "SELECT loyalty_commit($1::jsonb)", params
                    )
                    if outcome["outcome"] not in ("committed", "replay"):
                        raise OutcomeRefused(outcome)
            except OutcomeRefused as refused:
                return refused.outcome
            if outcome.get("state") is not None:
                outcome["state"] = card_state_from(outcome["state"])
            return outcome
