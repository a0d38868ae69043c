"""Back office: the latest committed receipts with their lines, to dry-run a program on
a real basket (the console's dry run offers them)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from service.api.deps import ServicesDep, TryPrograms
from service.api.json_route import JsonRoute
from service.api.responses import OrjsonResponse
from service.api.routers.admin_common import ERRORS, PREFIX
from service.storage.postgres import recent_receipts

router = APIRouter(route_class=JsonRoute, prefix=PREFIX, tags=["admin: programs"], responses=ERRORS)


class RecentLineOut(BaseModel):
    line_id: str
    sku: str
    category: str | None
    brand: str | None
    quantity: str
    unit_price: int
    excluded: bool


class RecentReceiptOut(BaseModel):
    store_id: str
    transaction_id: str
    occurred_at: datetime
    card: str | None
    lines: list[RecentLineOut]


class RecentReceiptsOut(BaseModel):
    receipts: list[RecentReceiptOut]

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"receipts": [{
            "store_id": "msk-001", "transaction_id": "R-0001",
            "occurred_at": "2026-11-22T10:00:00Z", "card": "2000000000022",
            "lines": [{"line_id": "1", "sku": "460001", "category": "dresses", "brand": None,
                       "quantity": "1", "unit_price": 349900, "excluded": False}],
        }]}]}
    )  # fmt: skip


@router.get(
    "/receipts/recent",
    response_model=RecentReceiptsOut,
    summary="The latest committed receipts with their lines (a real basket for a dry run)",
)
async def recent(
    admin: TryPrograms,
    services: ServicesDep,
    store_id: Annotated[
        str | None, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:/-]+$")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> OrjsonResponse:
    rows = await recent_receipts.recent(services.pool, store_id, limit)
    return OrjsonResponse({"receipts": rows})
