"""What-if simulations as background jobs (SPEC §10.1): the receipts of a file replayed
under a draft version beside the program in force, progress and result kept in the
ledger's database for any worker to show, charts drawn from the result."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any, Protocol

from service.domain.errors import Conflict, InvalidInput, NotFound
from service.rules.compiler import compile_program
from service.simulation import charts
from service.simulation.engine import Assumptions, prepare
from service.simulation.receipts import ReceiptSet, receipts_from_csv
from service.simulation.report import compare, comparison_from_json
from service.usecases.admin_programs import ProgramStore, checked, version_row
from service.usecases.ports import Programs

PROGRESS_STEPS = 50  # progress written at most this many times a job


class SimulationJobs(Protocol):
    async def create(
        self, draft_version: int, current_version: int, author: str, total: int
    ) -> int: ...
    async def progress(self, job_id: int, done: int) -> None: ...
    async def finish(self, job_id: int, result: dict[str, Any]) -> None: ...
    async def fail(self, job_id: int, error: str) -> None: ...
    async def get(self, job_id: int) -> dict[str, Any] | None: ...


async def start(
    jobs: SimulationJobs,
    store: ProgramStore,
    programs: Programs,
    version: int,
    receipts_csv: bytes,
    assumptions: Assumptions,
    breakage_rate_bp: int | None,
    author: str,
    spawn: Callable[[Coroutine[Any, Any, None]], object],
) -> dict[str, Any]:
    """The job, at once: the file is read and checked here (a bad one is refused before
    any job exists), the simulation runs in a thread, its progress written as it goes."""
    receipts = await asyncio.to_thread(receipts_from_csv, receipts_csv)
    return await start_with(
        jobs, store, programs, version, receipts, assumptions, breakage_rate_bp, author, spawn
    )


async def start_from_ledger(
    jobs: SimulationJobs,
    store: ProgramStore,
    programs: Programs,
    version: int,
    read_period: Callable[[datetime, datetime], Awaitable[ReceiptSet]],
    since: datetime,
    until: datetime,
    assumptions: Assumptions,
    breakage_rate_bp: int | None,
    author: str,
    spawn: Callable[[Coroutine[Any, Any, None]], object],
) -> dict[str, Any]:
    """The job over the ledger's own committed receipts of ``[since, until)`` and their
    returns (``read_period``: storage/postgres/simulation_receipts.py)."""
    if since.tzinfo is None or until.tzinfo is None:
        raise InvalidInput("since and until need their UTC offset", code="naive_timestamp")
    if until <= since:
        raise InvalidInput("until must come after since", code="invalid_period")
    await version_row(store, version)  # an unknown version is refused before the reading
    receipts = await read_period(since, until)
    return await start_with(
        jobs, store, programs, version, receipts, assumptions, breakage_rate_bp, author, spawn
    )


async def start_with(
    jobs: SimulationJobs,
    store: ProgramStore,
    programs: Programs,
    version: int,
    receipts: ReceiptSet,
    assumptions: Assumptions,
    breakage_rate_bp: int | None,
    author: str,
    spawn: Callable[[Coroutine[Any, Any, None]], object],
) -> dict[str, Any]:
    """The job over ``receipts``, already read and checked."""
    draft_document = (await version_row(store, version))["document"]
    draft = await asyncio.to_thread(compile_program, checked(draft_document), version)
    current = programs.current
    prepared = await asyncio.to_thread(prepare, receipts)
    total = 2 * len(prepared.receipts)
    job_id = await jobs.create(version, current.version, author, total)
    loop = asyncio.get_running_loop()
    step = max(total // PROGRESS_STEPS, 1)
    told = [0]

    def progress(done: int) -> None:  # in the simulation's thread
        if done - told[0] >= step:
            told[0] = done
            asyncio.run_coroutine_threadsafe(jobs.progress(job_id, done), loop)

    async def run() -> None:
        try:
            result = await asyncio.to_thread(
                compare, prepared, current, draft, assumptions, progress, breakage_rate_bp
            )
            await jobs.finish(job_id, result.as_json())
        except Exception as exc:  # the job says so; nothing else is waiting for it
            await jobs.fail(job_id, f"{type(exc).__name__}: {exc}")

    spawn(run())
    return {"job_id": job_id, "status": "running", "total": total, "done": 0}


async def job_view(jobs: SimulationJobs, job_id: int) -> dict[str, Any]:
    job = await jobs.get(job_id)
    if job is None:
        raise NotFound("no such simulation", code="simulation_job_not_found")
    return job


CHARTS = ("liability", "cost-per-rule", "tier-mix-current", "tier-mix-draft")


async def chart(jobs: SimulationJobs, job_id: int, name: str, fmt: charts.Format) -> bytes:
    """One of ``CHARTS`` of a finished simulation, as PNG or SVG."""
    job = await job_view(jobs, job_id)
    if job["status"] != "done":
        raise Conflict(f"the simulation is {job['status']}", code="simulation_not_done")
    result = comparison_from_json(job["result"])
    draw: dict[str, Callable[[], bytes]] = {
        "liability": lambda: charts.liability_by_month(result, fmt),
        "cost-per-rule": lambda: charts.cost_per_rule(result, fmt),
        "tier-mix-current": lambda: charts.tier_mix(result.current, fmt),
        "tier-mix-draft": lambda: charts.tier_mix(result.draft, fmt),
    }
    return await asyncio.to_thread(draw[name])
