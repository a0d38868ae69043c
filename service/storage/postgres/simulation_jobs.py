"""Simulation jobs in Postgres (migration 0017): every worker reads any job's progress."""

from __future__ import annotations

from typing import Any

import asyncpg

from service.storage.postgres.pool import database_errors

# A running job that has not moved for this long was left by a worker that stopped.
STALLED_AFTER = "1 minute"


class SimulationJobs:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(
        self, draft_version: int, current_version: int, author: str, total: int
    ) -> int:
        async with database_errors():
            job_id: int = await self._pool.fetchval(
                "INSERT INTO simulation_jobs (draft_version, current_version, author, status,"
                " total) VALUES ($1, $2, $3, 'running', $4) RETURNING job_id",
                draft_version,
                current_version,
                author,
                total,
            )
        return job_id

    async def progress(self, job_id: int, done: int) -> None:
        await self._pool.execute(
            # Only while running: progress told from the simulation's thread may arrive
            # after the job finished.
            "UPDATE simulation_jobs SET done = $2, updated_at = now()"
            " WHERE job_id = $1 AND status = 'running'",
            job_id,
            done,
        )

    async def finish(self, job_id: int, result: dict[str, Any]) -> None:
        await self._pool.execute(
            "UPDATE simulation_jobs SET status = 'done', done = total, result = $2,"
            " updated_at = now(), finished_at = now() WHERE job_id = $1",
            job_id,
            result,
        )

    async def fail(self, job_id: int, error: str) -> None:
        await self._pool.execute(
            "UPDATE simulation_jobs SET status = 'failed', error = $2, updated_at = now(),"
            " finished_at = now() WHERE job_id = $1",
            job_id,
            error,
        )

    async def get(self, job_id: int) -> dict[str, Any] | None:
        async with database_errors():
            row = await self._pool.fetchrow(
                f"""
                SELECT job_id, draft_version, current_version, status, total, done, result,
                       error, created_at, finished_at,
                       status = 'running' AND updated_at < now() - interval '{STALLED_AFTER}'
                           AS stalled
                FROM simulation_jobs WHERE job_id = $1
                """,
                job_id,
            )
        return None if row is None else dict(row)
