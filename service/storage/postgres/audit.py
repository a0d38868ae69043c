"""The audit log: who changed what and when. Append-only (a trigger refuses the rest).

Details name what changed, never personal data: an erased customer must not live on here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from service.storage.postgres.pool import database_errors


async def record(
    conn: asyncpg.Connection | asyncpg.Pool,
    actor: str,
    action: str,
    subject: str,
    details: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO audit_log (actor, action, subject, details) VALUES ($1, $2, $3, $4)",
        actor,
        action,
        subject,
        details or {},
    )


async def page(
    pool: asyncpg.Pool,
    *,
    subject: str | None,
    action: str | None,
    since: datetime | None,
    before: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Entries newest first below audit id ``before``, filtered by subject prefix and action."""
    async with database_errors():
        rows = await pool.fetch(
            """
            SELECT audit_id, actor, action, subject, details, created_at FROM audit_log
            WHERE ($1::text IS NULL OR subject = $1 OR subject LIKE $1 || ':%')
              AND ($2::text IS NULL OR action = $2)
              AND ($3::timestamptz IS NULL OR created_at >= $3)
              AND ($4::bigint IS NULL OR audit_id < $4)
            ORDER BY audit_id DESC LIMIT $5
            """,
            subject,
            action,
            since,
            before,
            limit,
        )
    return [dict(row) for row in rows]
