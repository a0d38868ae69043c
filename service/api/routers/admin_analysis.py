"""Back office: the uplift forecast of a threshold (SPEC §10.2), computed on request."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from service.api.admin_schemas import UpliftForecastIn, UpliftForecastOut
from service.api.deps import Reports
from service.api.json_route import JsonRoute
from service.api.responses import OrjsonResponse
from service.api.routers.admin_common import ERRORS, PREFIX
from service.simulation.uplift import CustomerGroup, UpliftAssumptions, forecast

router = APIRouter(route_class=JsonRoute, prefix=PREFIX, tags=["admin: analysis"], responses=ERRORS)


@router.post(
    "/analysis/uplift-forecast",
    response_model=UpliftForecastOut,
    summary="The uplift forecast of a threshold: three scenarios over the months, per channel",
)
async def uplift_forecast(body: UpliftForecastIn, admin: Reports) -> OrjsonResponse:
    assumptions = UpliftAssumptions(
        addon_share_bp=body.addon_share_bp, gift_share_bp=body.gift_share_bp,
        gift_cost_cap=body.gift_cost_cap, discount_bp=body.discount_bp,
        delivery_cost=body.delivery_cost, months=body.months,
    )  # fmt: skip
    groups = [CustomerGroup(**group.model_dump()) for group in body.groups]
    result = await asyncio.to_thread(forecast, groups, assumptions)
    return OrjsonResponse(result.as_json())
