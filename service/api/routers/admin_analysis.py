"""Back office: the uplift forecast of a threshold (SPEC §10.2), the program's own
analytics and the pilot report over a period of the ledger (SPEC §10.3), computed on
request."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import date, datetime
from typing import Annotated, Any, Literal

import numpy as np
import numpy.typing as npt
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from service.api.admin_schemas import AnalyticsOut, PilotOut, UpliftForecastIn, UpliftForecastOut
from service.api.csv_export import csv_content, csv_response, people_language
from service.api.deps import Reports, ServicesDep
from service.api.json_route import JsonRoute
from service.api.responses import OrjsonResponse
from service.api.routers.admin_common import ERRORS, IMAGE_CONTENT, PREFIX
from service.api.schemas import Timestamp
from service.simulation import charts
from service.simulation.analytics import Figures, as_rows
from service.simulation.receipts import ReceiptSet
from service.simulation.uplift import CustomerGroup, UpliftAssumptions, forecast
from service.storage.postgres.simulation_receipts import ledger_period
from service.usecases import analysis

router = APIRouter(route_class=JsonRoute, prefix=PREFIX, tags=["admin: analysis"], responses=ERRORS)

Since = Annotated[Timestamp, Query(description="the period's start, with its UTC offset")]
Until = Annotated[Timestamp, Query(description="the period's end, excluded")]
StoreIds = Annotated[
    list[str],
    Query(min_length=1, max_length=500, description="store ids (the parameter repeated)"),
]
FIGURE_COLUMNS = ("slice", *Figures.__dataclass_fields__)


@router.post(
    "/analysis/uplift-forecast",
    response_model=UpliftForecastOut,
    summary="The uplift forecast of a threshold: three scenarios over the months, per channel",
)
async def uplift_forecast(
    body: UpliftForecastIn, admin: Reports, services: ServicesDep
) -> OrjsonResponse:
    assumptions = UpliftAssumptions(
        addon_share_bp=body.addon_share_bp, gift_share_bp=body.gift_share_bp,
        gift_cost_cap=body.gift_cost_cap, discount_bp=body.discount_bp,
        delivery_cost=body.delivery_cost, months=body.months,
    )  # fmt: skip
    if body.ledger is not None:
        asked = body.ledger
        groups = await analysis.uplift_groups(
            _reader(services), asked.since, asked.until, asked.threshold, asked.new_days
        )
    else:
        groups = [CustomerGroup(**group.model_dump()) for group in body.groups or ()]
    result = await asyncio.to_thread(forecast, groups, assumptions)
    return OrjsonResponse({**result.as_json(), "groups": [asdict(g) for g in groups]})


def _reader(services: Any) -> analysis.ReadPeriod:
    async def read(since: datetime, until: datetime) -> tuple[ReceiptSet, npt.NDArray[np.int64]]:
        async with services.pool.acquire() as conn:
            return await ledger_period(conn, since, until)

    return read


@router.get(
    "/analysis/figures",
    response_model=AnalyticsOut,
    responses=csv_content(
        ",".join(FIGURE_COLUMNS) + "\nmsk-001,1200,900,320000,250000,300,40,12,3000,960000,"
        "86000,21000,2441,2100000\n"
    ),
    summary="A period's figures per store, store group (region), channel or month: average"
    " receipt with and without a card, frequency, churn, members, LTV, points",
)
async def figures(
    request: Request,
    admin: Reports,
    services: ServicesDep,
    since: Since,
    until: Until,
    by: Annotated[Literal["store", "group", "channel", "month"], Query()] = "store",
    churn_days: Annotated[int, Query(ge=1, le=3650, description="no purchase for so long")] = 90,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    found = await analysis.figures(_reader(services), since, until, by, churn_days)
    rows = as_rows(found)
    if format == "csv":
        language = people_language(request, services.settings.language)

        async def one_page(_: Any) -> tuple[list[dict[str, Any]], Any]:
            return rows, None

        return await csv_response(f"figures-by-{by}.csv", FIGURE_COLUMNS, one_page, language)
    return OrjsonResponse(
        {"by": by, "since": since, "until": until, "churn_days": churn_days, "slices": rows}
    )


@router.get(
    "/analysis/pilot",
    response_model=PilotOut,
    responses=IMAGE_CONTENT,
    summary="A pilot group of stores against a control group, before and after a day:"
    " the uplift of the average receipt and of sales per store-day, with its 99% interval",
)
async def pilot(
    admin: Reports,
    services: ServicesDep,
    since: Since,
    until: Until,
    pilot: StoreIds,
    control: StoreIds,
    starts: Annotated[date, Query(description="the pilot's first day, store-local")],
    format: Annotated[Literal["json", "png", "svg"], Query()] = "json",
) -> Response:
    report = await analysis.pilot(_reader(services), since, until, pilot, control, starts)
    if format == "json":
        return OrjsonResponse(analysis.pilot_json(report))
    image = await asyncio.to_thread(charts.before_after, report, format)
    return Response(image, media_type=charts.MEDIA_TYPES[format])
