"""Import jobs in Postgres (migration 0014): every worker reads any job's progress."""

from __future__ import annotations

from typing import Any

import asyncpg

from service.storage.postgres.pool import database_errors

# A running job that has not moved for this long was left by a worker that stopped.
STALLED_AFTER = "1 minute"


class ImportJobs:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, kind: str, dry_run: bool, author: str, total: int) -> int:
        async with database_errors():
            job_id: int = await self._pool.fetchval(
                "INSERT INTO import_jobs (kind, dry_run, author, status, total)"
                " VALUES ($1, $2, $3, 'running', $4) RETURNING job_id",
                kind,
                dry_run,
                author,
                total,
            )
        return job_id

    async def progress(self, job_id: int, done: int) -> None:
        await self._pool.execute(
            "UPDATE import_jobs SET done = $2, updated_at = now() WHERE job_id = $1",
            job_id,
            done,
        )

    async def finish(self, job_id: int, report: dict[str, Any]) -> None:
        await self._pool.execute(
            "UPDATE import_jobs SET status = 'done', done = total, report = $2,"
            " updated_at = now(), finished_at = now() WHERE job_id = $1",
            job_id,
            report,
        )

    async def fail(self, job_id: int, error: str) -> None:
        await self._pool.execute(
            "UPDATE import_jobs SET status = 'failed', error = $2, updated_at = now(),"
            " finished_at = now() WHERE job_id = $1",
            job_id,
            error,
        )

    async def get(self, job_id: int) -> dict[str, Any] | None:
        async with database_errors():
            row = await self._pool.fetchrow(
                f"""
                SELECT job_id, kind, dry_run, status, total, done, report, error,
                       created_at, finished_at,
                       status = 'running' AND updated_at < now() - interval '{STALLED_AFTER}'
                           AS stalled
                FROM import_jobs WHERE job_id = $1
                """,
                job_id,
            )
        return None if row is None else dict(row)
