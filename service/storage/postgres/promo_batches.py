"""Batch-generated promo codes: N unique codes per batch, their status and revocation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from service.domain.errors import Conflict, NotFound
from service.storage.postgres import audit
from service.storage.postgres.pool import database_errors
from service.usecases.admin_promos import BatchSpec

_CODE_SQL = """
SELECT code, batch_id, rule_ids, max_uses, uses, per_card_limit, valid_from, valid_to,
       revoked_at, created_at, program_version IS NOT NULL AND batch_id IS NULL AS declared
FROM promo_codes
"""


class PromoBatches:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, batch_id: str, spec: BatchSpec, author: str) -> None:
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """
                INSERT INTO promo_batches (batch_id, prefix, count, rule_ids, max_uses,
                    per_card_limit, valid_from, valid_to, created_by)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                """,
                batch_id,
                spec.prefix,
                spec.count,
                list(spec.rule_ids),
                spec.max_uses,
                spec.per_card_limit,
                spec.valid_from,
                spec.valid_to,
                author,
            )
            details = {"count": spec.count, "prefix": spec.prefix}
            await audit.record(conn, author, "promo.batch", f"promo-batch:{batch_id}", details)

    async def add_codes(self, batch_id: str, spec: BatchSpec, codes: Sequence[str]) -> int:
        """Insert the codes not taken yet; returns how many were inserted."""
        async with database_errors():
            inserted: int = await self._pool.fetchval(
                """
                WITH added AS (
                    INSERT INTO promo_codes (code, rule_ids, batch_id, max_uses, per_card_limit,
                                             valid_from, valid_to)
                    SELECT c, $2, $3, $4, $5, $6, $7 FROM unnest($1::text[]) AS c
                    ON CONFLICT (code) DO NOTHING RETURNING 1)
                SELECT count(*) FROM added
                """,
                list(codes),
                list(spec.rule_ids),
                batch_id,
                spec.max_uses,
                spec.per_card_limit,
                spec.valid_from,
                spec.valid_to,
            )
        return inserted

    async def batch(self, batch_id: str) -> dict[str, Any]:
        async with database_errors():
            row = await self._pool.fetchrow(
                """
                SELECT b.batch_id, b.prefix, b.count, b.rule_ids, b.max_uses, b.per_card_limit,
                       b.valid_from, b.valid_to, b.created_by, b.created_at, b.revoked_at,
                       (SELECT count(*) FROM promo_code_uses u JOIN promo_codes p USING (code)
                         WHERE p.batch_id = b.batch_id AND u.released_at IS NULL) AS uses
                FROM promo_batches b WHERE b.batch_id = $1
                """,
                batch_id,
            )
        if row is None:
            raise NotFound(f"no promo code batch {batch_id!r}", code="batch_not_found")
        return dict(row)

    async def batches(self, *, before: int | None, limit: int) -> list[dict[str, Any]]:
        """Batches newest first, each with its uses; ``before``: the ``number`` (the row's
        order of creation) of the last one seen."""
        async with database_errors():
            rows = await self._pool.fetch(
                """
                SELECT b.batch_id, b.prefix, b.count, b.rule_ids, b.max_uses, b.per_card_limit,
                       b.valid_from, b.valid_to, b.created_by, b.created_at, b.revoked_at,
                       (SELECT count(*) FROM promo_code_uses u JOIN promo_codes p USING (code)
                         WHERE p.batch_id = b.batch_id AND u.released_at IS NULL) AS uses,
                       b.number
                FROM (SELECT *, row_number() OVER (ORDER BY created_at, batch_id) AS number
                      FROM promo_batches) b
                WHERE $1::bigint IS NULL OR b.number < $1
                ORDER BY b.number DESC LIMIT $2
                """,
                before,
                limit,
            )
        return [dict(row) for row in rows]

    async def codes(self, batch_id: str, *, after: str | None, limit: int) -> list[dict[str, Any]]:
        async with database_errors():
            rows = await self._pool.fetch(
                f"{_CODE_SQL} WHERE batch_id = $1 AND ($2::text IS NULL OR code > $2)"
                " ORDER BY code LIMIT $3",
                batch_id,
                after,
                limit,
            )
        return [dict(row) for row in rows]

    async def code(self, code: str) -> dict[str, Any]:
        async with database_errors():
            row = await self._pool.fetchrow(f"{_CODE_SQL} WHERE code = $1", code)
        if row is None:
            raise NotFound(f"no promo code {code!r}", code="promo_code_not_found")
        return dict(row)

    async def revoke_code(self, code: str, author: str) -> None:
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(f"{_CODE_SQL} WHERE code = $1 FOR UPDATE", code)
            if row is None:
                raise NotFound(f"no promo code {code!r}", code="promo_code_not_found")
            if row["declared"]:
                raise Conflict(
                    "this code is declared by the program; publish a version without it",
                    code="promo_code_declared",
                )
            await conn.execute(
                "UPDATE promo_codes SET revoked_at = coalesce(revoked_at, now()) WHERE code = $1",
                code,
            )
            await audit.record(conn, author, "promo.revoke", f"promo:{code}")

    async def revoke_batch(self, batch_id: str, author: str) -> list[str]:
        """Revoke every code of the batch; returns them (their cached states are stale)."""
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            found = await conn.fetchval(
                "UPDATE promo_batches SET revoked_at = coalesce(revoked_at, now())"
                " WHERE batch_id = $1 RETURNING 1",
                batch_id,
            )
            if found is None:
                raise NotFound(f"no promo code batch {batch_id!r}", code="batch_not_found")
            rows = await conn.fetch(
                "UPDATE promo_codes SET revoked_at = coalesce(revoked_at, now())"
                " WHERE batch_id = $1 RETURNING code",
                batch_id,
            )
            await audit.record(conn, author, "promo.revoke_batch", f"promo-batch:{batch_id}")
        return [row["code"] for row in rows]
