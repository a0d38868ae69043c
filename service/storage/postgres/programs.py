"""Program versions in Postgres: drafts, then immutable once published; one is current."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from service.domain.errors import Conflict, NotFound
from service.storage.postgres import audit
from service.storage.postgres.pool import Executor, database_errors
from service.usecases.admin_programs import DeclaredCode


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
    conn: asyncpg.Connection,
    document: Mapping[str, Any],
    *,
    author: str,
    codes: Sequence[DeclaredCode] = (),
) -> int:
    """Insert ``document`` as the next version, published and current, in one transaction.

    The promo codes it declares are upserted into ``promo_codes`` (their use counts kept),
    so that commits enforce total and per-card limits under the database's locks.
    """
    async with conn.transaction():
        await _lock_versions(conn)
        version = await _insert_version(conn, document, author)
        await _make_current(conn, version, author=author, codes=codes, action="program.publish")
    return version


async def _lock_versions(conn: asyncpg.Connection) -> None:
    # Serialises publishers, drafts and rollbacks: versions are numbered in the order they
    # were created, and exactly one version is current.
    await conn.execute("LOCK TABLE program_versions IN SHARE ROW EXCLUSIVE MODE")


async def _insert_version(
    conn: asyncpg.Connection, document: Mapping[str, Any], author: str
) -> int:
    version: int = await conn.fetchval(
        """
        INSERT INTO program_versions (version, document, status, created_by)
        VALUES (nextval('program_versions_seq'), $1, 'draft', $2)
        RETURNING version
        """,
        dict(document),
        author,
    )
    return version


async def _make_current(
    conn: asyncpg.Connection,
    version: int,
    *,
    author: str,
    codes: Sequence[DeclaredCode],
    action: str,
) -> None:
    """Point ``program_current`` at ``version``: it becomes published, the one it replaces
    retired; its declared promo codes are synced."""
    await conn.execute(
        """
        UPDATE program_versions SET status = 'retired'
        WHERE version = (SELECT version FROM program_current) AND version <> $1
        """,
        version,
    )
    await conn.execute(
        """
        UPDATE program_versions
        SET status = 'published', published_at = coalesce(published_at, now()), publish_at = NULL
        WHERE version = $1
        """,
        version,
    )
    await conn.execute(
        """
        WITH switched AS (
            INSERT INTO program_current (singleton, version) VALUES (true, $1)
            ON CONFLICT (singleton) DO UPDATE SET version = EXCLUDED.version, switched_at = now()
            RETURNING switched_at, version
        )
        INSERT INTO program_switches (switched_at, version) SELECT * FROM switched
        ON CONFLICT DO NOTHING
        """,
        version,
    )
    await conn.executemany(
        """
        INSERT INTO promo_codes (code, rule_ids, max_uses, per_card_limit, program_version)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (code) DO UPDATE
            SET rule_ids = EXCLUDED.rule_ids, max_uses = EXCLUDED.max_uses,
                per_card_limit = EXCLUDED.per_card_limit,
                program_version = EXCLUDED.program_version
        """,
        [(c.code, list(c.rule_ids), c.max_uses, c.per_card_limit, version) for c in codes],
    )
    await audit.record(conn, author, action, f"program:{version}", {"version": version})


async def _version_row(conn: asyncpg.Connection, version: int) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT version, status FROM program_versions WHERE version = $1 FOR UPDATE", version
    )
    if row is None:
        raise NotFound(f"program version {version} does not exist", code="program_not_found")
    return row


def _ensure_draft(row: asyncpg.Record) -> None:
    if row["status"] != "draft":
        raise Conflict(
            f"program version {row['version']} is {row['status']}, not a draft",
            code="program_not_draft",
        )


class ProgramVersions:
    """Drafts, publication, schedules and rollbacks of program versions."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def current_document(self) -> tuple[int, dict[str, Any]] | None:
        """The current version and its document; None before the first publication."""
        async with database_errors():
            return await current_program(self._pool)

    async def switches(self) -> list[tuple[datetime, int]]:
        """Every switch of the current program, oldest first: (when, to which version)."""
        async with database_errors():
            rows = await self._pool.fetch(
                "SELECT switched_at, version FROM program_switches ORDER BY switched_at, version"
            )
        return [(row["switched_at"], row["version"]) for row in rows]

    async def create_draft(self, document: Mapping[str, Any], author: str) -> int:
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            await _lock_versions(conn)
            version = await _insert_version(conn, document, author)
            await audit.record(conn, author, "program.draft", f"program:{version}")
        return version

    async def update_draft(self, version: int, document: Mapping[str, Any], author: str) -> None:
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            _ensure_draft(await _version_row(conn, version))
            await conn.execute(
                "UPDATE program_versions SET document = $2 WHERE version = $1",
                version,
                dict(document),
            )
            await audit.record(conn, author, "program.update", f"program:{version}")

    async def delete_draft(self, version: int, author: str) -> None:
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            _ensure_draft(await _version_row(conn, version))
            await conn.execute("DELETE FROM program_versions WHERE version = $1", version)
            await audit.record(conn, author, "program.delete", f"program:{version}")

    async def schedule(self, version: int, publish_at: datetime | None, author: str) -> None:
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            _ensure_draft(await _version_row(conn, version))
            await conn.execute(
                "UPDATE program_versions SET publish_at = $2 WHERE version = $1",
                version,
                publish_at,
            )
            details = {"publish_at": None if publish_at is None else publish_at.isoformat()}
            await audit.record(conn, author, "program.schedule", f"program:{version}", details)

    async def publish(self, version: int, author: str, codes: Sequence[DeclaredCode]) -> None:
        """Make a draft the current program (atomically: one transaction)."""
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            await _lock_versions(conn)
            _ensure_draft(await _version_row(conn, version))
            await _make_current(conn, version, author=author, codes=codes, action="program.publish")

    async def roll_back(self, version: int, author: str, codes: Sequence[DeclaredCode]) -> None:
        """Make an earlier published version current again (its document is unchanged)."""
        async with database_errors(), self._pool.acquire() as conn, conn.transaction():
            await _lock_versions(conn)
            row = await _version_row(conn, version)
            if row["status"] == "draft":
                raise Conflict(
                    f"program version {version} was never published; publish it instead",
                    code="program_never_published",
                )
            await _make_current(
                conn, version, author=author, codes=codes, action="program.rollback"
            )

    async def document(self, version: int) -> dict[str, Any] | None:
        async with database_errors():
            return await program_version(self._pool, version)

    async def due_drafts(self, now: datetime) -> list[int]:
        """Drafts whose scheduled publication time has come, earliest first."""
        async with database_errors():
            rows = await self._pool.fetch(
                "SELECT version FROM program_versions WHERE status = 'draft'"
                " AND publish_at <= $1 ORDER BY publish_at, version",
                now,
            )
        return [row["version"] for row in rows]

    async def get(self, version: int) -> dict[str, Any] | None:
        async with database_errors():
            row = await self._pool.fetchrow(f"{_VERSIONS_SQL} WHERE v.version = $1", version)
        return None if row is None else dict(row)

    async def summaries(self, *, before: int | None, limit: int) -> list[dict[str, Any]]:
        """Versions newest first (without their documents) below ``before``."""
        async with database_errors():
            rows = await self._pool.fetch(
                f"{_SUMMARY_SQL} WHERE ($1::int IS NULL OR v.version < $1)"
                " ORDER BY v.version DESC LIMIT $2",
                before,
                limit,
            )
        return [dict(row) for row in rows]


_SUMMARY_SQL = """
SELECT v.version, v.status, v.created_by, v.created_at, v.publish_at, v.published_at,
       v.document ->> 'name' AS name,
       coalesce(v.version = (SELECT version FROM program_current), false) AS current
FROM program_versions v
"""
_VERSIONS_SQL = _SUMMARY_SQL.replace("AS current", "AS current, v.document")
