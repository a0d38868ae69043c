"""Liveness, readiness and Prometheus metrics (no authentication: for the platform)."""

from __future__ import annotations

import asyncio
import os

from fastapi import APIRouter
from starlette.responses import Response

from service.api.deps import ServicesDep
from service.api.responses import OrjsonResponse
from service.api.schemas import HealthOut, ReadinessOut
from service.storage.postgres import pool as postgres
from service.storage.redis import cache

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthOut, summary="The process is alive")
async def healthz() -> OrjsonResponse:
    return OrjsonResponse({"status": "ok"})


@router.get(
    "/readyz",
    response_model=ReadinessOut,
    summary="Postgres and Redis reachable, program loaded, kernels warm",
    responses={503: {"model": ReadinessOut}},
)
async def readyz(services: ServicesDep) -> OrjsonResponse:
    database, redis_ok = await asyncio.gather(
        postgres.ping(services.pool), cache.ping(services.redis)
    )
    checks = {
        "postgres": database,
        "redis": redis_ok,
        "program": services.programs.version is not None,
        "kernels": services.kernels_warm,
    }
    ready = all(checks.values())
    # Which worker answered: the benchmark times each worker's start and restart by it.
    return OrjsonResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        200 if ready else 503,
        headers={"X-Worker-Pid": str(os.getpid())},
    )


@router.get("/metrics", summary="Prometheus metrics of every worker of this pod")
async def metrics(services: ServicesDep) -> Response:
    pool = services.pool
    services.metrics.pool_connections.labels("in_use").set(pool.get_size() - pool.get_idle_size())
    services.metrics.pool_connections.labels("idle").set(pool.get_idle_size())
    body, content_type = services.metrics.render()
    return Response(body, media_type=content_type)
