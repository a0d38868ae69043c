"""Back office: what-if simulations of a draft program (SPEC §10.1), run in the background
over a receipts file, their progress, result and charts."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from service.api.admin_schemas import SimulationJobOut, SimulationStartedOut
from service.api.deps import ReadPrograms, ServicesDep, TryPrograms
from service.api.json_route import JsonRoute
from service.api.responses import OrjsonResponse
from service.api.routers.admin_common import (
    ERRORS,
    IMAGE_CONTENT,
    PREFIX,
    VersionPath,
    author,
)
from service.domain.errors import invalid_field
from service.simulation.charts import MEDIA_TYPES
from service.simulation.engine import Assumptions
from service.simulation.receipts import ReceiptSet
from service.storage.postgres.simulation_receipts import ledger_receipts
from service.usecases import simulations

router = APIRouter(
    route_class=JsonRoute, prefix=PREFIX, tags=["admin: simulations"], responses=ERRORS
)

RECEIPTS_CSV = (
    "receipt_id,timestamp,store_id,card,channel,redeem_points,sku,category,brand,quantity,"
    "unit_price\n"
    "r1,2026-03-02T12:00:00+03:00,msk-001,2000000000022,offline,max,JEANS-1,jeans,levis,3,"
    "399000\n"
    "r1,2026-03-02T12:00:00+03:00,msk-001,2000000000022,offline,max,LATTE,drinks,,1,25000\n"
)
JobId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.post(
    "/programs/{version}/simulate",
    response_model=SimulationStartedOut,
    status_code=202,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}, "example": RECEIPTS_CSV}},
        }
    },
    summary="Replay a receipts file (CSV) under this version beside the current program",
)
async def simulate(
    version: VersionPath,
    request: Request,
    admin: TryPrograms,
    services: ServicesDep,
    spending: Annotated[Literal["recorded", "none", "share"], Query()] = "recorded",
    redeem_share: Annotated[float, Query(ge=0, le=1)] = 0.15,
    balances_as_of: Annotated[datetime | None, Query()] = None,
    breakage_percent: Annotated[Decimal | None, Query(ge=0, le=100, decimal_places=2)] = None,
) -> OrjsonResponse:
    body = await request.body()
    if len(body) > services.settings.import_max_bytes:
        raise invalid_field("body", f"at most {services.settings.import_max_bytes} bytes")
    if balances_as_of is not None and balances_as_of.tzinfo is None:
        raise invalid_field("balances_as_of", "a time with its UTC offset")
    job = await simulations.start(
        services.simulation_jobs, services.program_versions, services.programs, version, body,
        Assumptions(spending, redeem_share, balances_as_of),
        None if breakage_percent is None else int(breakage_percent * 100), author(admin),
        spawn=lambda run: services.tasks.append(asyncio.create_task(run)),
    )  # fmt: skip
    return OrjsonResponse(job, 202)


@router.post(
    "/programs/{version}/simulate-ledger",
    response_model=SimulationStartedOut,
    status_code=202,
    summary="Replay the ledger's own committed receipts of a period (and their returns) under"
    " this version beside the current program",
)
async def simulate_ledger(
    version: VersionPath,
    admin: TryPrograms,
    services: ServicesDep,
    since: Annotated[datetime, Query(description="the period's start (with its UTC offset)")],
    until: Annotated[datetime, Query(description="the period's end, excluded")],
    spending: Annotated[Literal["recorded", "none", "share"], Query()] = "recorded",
    redeem_share: Annotated[float, Query(ge=0, le=1)] = 0.15,
    balances_as_of: Annotated[datetime | None, Query()] = None,
    breakage_percent: Annotated[Decimal | None, Query(ge=0, le=100, decimal_places=2)] = None,
) -> OrjsonResponse:
    if balances_as_of is not None and balances_as_of.tzinfo is None:
        raise invalid_field("balances_as_of", "a time with its UTC offset")

    async def read_period(start: datetime, end: datetime) -> ReceiptSet:
        async with services.pool.acquire() as conn:
            return await ledger_receipts(conn, start, end)

    job = await simulations.start_from_ledger(
        services.simulation_jobs, services.program_versions, services.programs, version,
        read_period, since, until, Assumptions(spending, redeem_share, balances_as_of),
        None if breakage_percent is None else int(breakage_percent * 100), author(admin),
        spawn=lambda run: services.tasks.append(asyncio.create_task(run)),
    )  # fmt: skip
    return OrjsonResponse(job, 202)


@router.get(
    "/simulations/{job_id}",
    response_model=SimulationJobOut,
    summary="A simulation's progress, then its result: both programs and their difference",
)
async def simulation(job_id: JobId, admin: ReadPrograms, services: ServicesDep) -> OrjsonResponse:
    return OrjsonResponse(await simulations.job_view(services.simulation_jobs, job_id))


CHART_CONTENT: dict[int | str, dict[str, Any]] = {
    **IMAGE_CONTENT,
    409: {"description": "the simulation has not finished"},
}


@router.get(
    "/simulations/{job_id}/charts/{chart}",
    response_class=Response,
    responses=CHART_CONTENT,
    summary="A chart of a finished simulation: liability by expiry month, cost per rule, tier mix",
)
async def simulation_chart(
    job_id: JobId,
    chart: Annotated[
        Literal["liability", "cost-per-rule", "tier-mix-current", "tier-mix-draft"], Path()
    ],
    admin: ReadPrograms,
    services: ServicesDep,
    format: Annotated[Literal["png", "svg"], Query()] = "png",
) -> Response:
    image = await simulations.chart(services.simulation_jobs, job_id, chart, format)
    return Response(image, media_type=MEDIA_TYPES[format])
