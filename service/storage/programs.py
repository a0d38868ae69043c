"""Program versions in Postgres: immutable once published; one is current."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

import asyncpg

Executor: TypeAlias = asyncpg.Connection | asyncpg.Pool


async def current_program(conn: Executor) -> tuple[int, dict[str, Any]] | None:
    row = await conn.fetchrow(
        """
        SELECT v.version, v.document FROM program_current c
        JOIN program_versions v USING (version)
        """
    )
    return None if row is None else (row["version"], row["document"])


async def program_version(conn: Executor, version: int) -> dict[str, Any] | None:
    document: dict[str, Any] | None = await conn.fetchval(
        "SELECT document FROM program_versions WHERE version = $1", version
    )
    return document


async def publish_new_version(
    conn: asyncpg.Connection, document: Mapping[str, Any], *, author: str
) -> int:
    """Insert ``document`` as the next version, published and current, in one transaction."""
    async with conn.transaction():
        # Serialises concurrent publishers: version numbers stay dense and ordered.
        await conn.execute("LOCK TABLE program_versions IN SHARE ROW EXCLUSIVE MODE")
        version: int = await conn.fetchval(
            """
            INSERT INTO program_versions (version, document, status, created_by, published_at)
            SELECT coalesce(max(version), 0) + 1, $1, 'published', $2, now()
            FROM program_versions
            RETURNING version
            """,
            dict(document), author,
        )  # fmt: skip
        await conn.execute(
            """
            INSERT INTO program_current (singleton, version) VALUES (true, $1)
            ON CONFLICT (singleton) DO UPDATE SET version = EXCLUDED.version, switched_at = now()
            """,
            version,
        )
        await conn.execute(
            "INSERT INTO audit_log (actor, action, subject, details) VALUES ($1, $2, $3, $4)",
            author, "program.publish", f"program:{version}", {"version": version},
        )  # fmt: skip
    return version
