"""The POS API (/v1): calculate now; commit, refund and cancel join it on the ledger."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from service.api.deps import PrincipalDep, ServicesDep
from service.api.presenters import calculation_view, new_calculation_id
from service.api.responses import OrjsonResponse
from service.api.schemas import CalculateRequest, CalculateResponse, ErrorOut, receipt_from
from service.usecases.calculate import calculate as calculate_receipt

router = APIRouter(prefix="/v1", tags=["pos"])

ERRORS = {
    401: {"model": ErrorOut, "description": "no key or an unknown key"},
    403: {"model": ErrorOut, "description": "the key may not act for this store"},
    404: {"model": ErrorOut, "description": "unknown store or card"},
    422: {"model": ErrorOut, "description": "malformed or inconsistent receipt"},
}


@router.post(
    "/calculate",
    response_model=CalculateResponse,
    responses=ERRORS,  # type: ignore[arg-type]
    summary="Preview a receipt: discounts, points to earn and to spend (writes nothing)",
)
async def calculate(
    body: CalculateRequest, principal: PrincipalDep, services: ServicesDep
) -> OrjsonResponse:
    principal.ensure_store(body.store_id)
    calc = await calculate_receipt(
        receipt_from(body),
        now=datetime.now(UTC),
        limits=services.limits,
        stores=services.stores,
        programs=services.programs,
        cards=services.cards,
    )
    return OrjsonResponse(calculation_view(new_calculation_id(), calc))
