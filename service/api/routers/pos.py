"""The POS API (/v1): calculate now; commit, refund and cancel join it on the ledger."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from service.api.deps import PrincipalDep, ServicesDep
from service.api.responses import OrjsonResponse
from service.api.schemas import (
    CalculateRequest,
    CalculateResponse,
    CommitRequest,
    CommitResponse,
    ErrorOut,
    receipt_from,
)
from service.domain.errors import Conflict
from service.usecases.calculate import calculate as calculate_receipt
from service.usecases.commit import Sale
from service.usecases.commit import commit as commit_sale

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
    answer = await calculate_receipt(
        receipt_from(body),
        now=datetime.now(UTC),
        limits=services.limits,
        stores=services.stores,
        programs=services.programs,
        cards=services.cards,
        records=services.calculations,
    )
    return OrjsonResponse(answer)


@router.post(
    "/commit",
    response_model=CommitResponse,
    responses={
        **ERRORS,
        409: {
            "model": ErrorOut,
            "description": "same id, other receipt; or points no longer there",
        },
        503: {"model": ErrorOut, "description": "the ledger is unavailable; retry (Retry-After)"},
    },  # type: ignore[dict-item]
    summary="Record a paid sale (idempotent by store_id and transaction_id)",
)
async def commit(
    body: CommitRequest, principal: PrincipalDep, services: ServicesDep
) -> OrjsonResponse:
    principal.ensure_store(body.store_id)
    sale = Sale(receipt_from(body), body.transaction_id, body.calculation_id)
    try:
        response, replayed = await commit_sale(
            sale, now=datetime.now(UTC), limits=services.limits, stores=services.stores,
            programs=services.programs, cards=services.cards, records=services.calculations,
            ledger=services.ledger,
        )  # fmt: skip
    except Conflict as conflict:
        services.metrics.commit_conflicts.labels(conflict.code).inc()
        raise
    if not replayed:
        services.metrics.record_sale(response["totals"])
    return OrjsonResponse(response)
