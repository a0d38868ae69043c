"""``Idempotency-Key`` for back-office operations that move points or money (migration 0006).

The key is claimed in the transaction that does the work, so the claim and the work
commit or roll back together: a copy sent while the first is running waits on the key's
row and then reads the first answer; a request that failed leaves the key free.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from service.domain.errors import IdempotencyConflict
from service.usecases.ports import IdempotentRequest


async def claim(conn: asyncpg.Connection, request: IdempotentRequest) -> dict[str, Any] | None:
    """Claim the key for this request; if it was used already, the stored answer."""
    claimed = await conn.fetchval(
        "INSERT INTO idempotency_keys (scope, key, operation, request_hash)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
        request.scope,
        request.key,
        request.operation,
        request.request_hash,
    )
    if claimed:
        return None
    row = await conn.fetchrow(
        "SELECT operation, request_hash, response FROM idempotency_keys"
        " WHERE scope = $1 AND key = $2",
        request.scope,
        request.key,
    )
    if row["operation"] != request.operation or bytes(row["request_hash"]) != request.request_hash:
        raise IdempotencyConflict("this Idempotency-Key was already used for another request")
    stored: dict[str, Any] = row["response"]
    return stored


async def settle(
    conn: asyncpg.Connection, request: IdempotentRequest, response: dict[str, Any]
) -> dict[str, Any]:
    """Store the answer under the claimed key; returns it as stored, so that the first
    answer and every replay are the same bytes."""
    stored: dict[str, Any] = await conn.fetchval(
        "UPDATE idempotency_keys SET response = $3 WHERE scope = $1 AND key = $2"
        " RETURNING response",
        request.scope,
        request.key,
        response,
    )
    return stored
