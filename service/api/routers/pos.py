"""The POS API (/v1): calculate now; commit, refund and cancel join it on the ledger."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from service.api.deps import Sell, ServicesDep
from service.api.errors import request_language
from service.api.json_route import JsonRoute
from service.api.pos_route import PosRoute
from service.api.responses import OrjsonResponse
from service.api.schemas import (
    AllowanceOut,
    AllowanceRequest,
    CalculateRequest,
    CalculateResponse,
    CancelRequest,
    CommitRequest,
    CommitResponse,
    ErrorOut,
    RefundRequest,
    RefundResponse,
    ReleasedOut,
    error_responses,
    receipt_from,
    return_lines,
)
from service.api.state import Services
from service.domain.errors import Conflict
from service.usecases import refund as returns
from service.usecases.allowances import grant_allowance
from service.usecases.calculate import calculate as calculate_receipt
from service.usecases.calculate import release_hold
from service.usecases.commit import Sale
from service.usecases.commit import commit as commit_sale

router = APIRouter(route_class=JsonRoute, prefix="/v1", tags=["pos"])

ERRORS = error_responses(
    {
        403: "the key may not act for this store",
        404: "unknown store or card",
        422: "malformed or inconsistent receipt",
    }
)


async def calculate(body: CalculateRequest, principal: Sell, request: Request) -> Response:
    # Called by PosRoute as (body, principal, request); the signature is the declaration.
    services: Services = request.app.state.services
    principal.ensure_store(body.store_id)
    answer = await calculate_receipt(
        receipt_from(body),
        now=datetime.now(UTC),
        ports=services.sale_ports,
        hold=body.hold,
        language=request_language(request),
    )
    return Response(answer, media_type="application/json")  # rendered by the use case


async def commit(body: CommitRequest, principal: Sell, request: Request) -> OrjsonResponse:
    services: Services = request.app.state.services
    principal.ensure_store(body.store_id)
    sale = Sale(receipt_from(body), body.transaction_id, body.calculation_id, body.allowance)
    try:
        response, replayed = await commit_sale(
            sale,
            now=datetime.now(UTC),
            ports=services.sale_ports,
            ledger=services.ledger,
            language=request_language(request),
        )
    except Conflict as conflict:
        services.metrics.commit_conflicts.labels(conflict.code).inc()
        raise
    if not replayed:
        services.metrics.record_sale(response["totals"])
    return OrjsonResponse(response)


CALCULATE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    409: {"model": ErrorOut, "description": "the wallet asked to pay cannot: not active, or"
          " it does not hold the money asked for"},
}  # fmt: skip

COMMIT_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: {"model": ErrorOut, "description": "unknown store, card, wallet or reward"},
    409: {
        "model": ErrorOut,
        "description": "same id, other receipt; or points, a wallet's money, a rule's"
        " budget or use cap, a stamp card's stamps no longer there; a reward asked for"
        " that cannot be redeemed now",
    },
    503: {"model": ErrorOut, "description": "the ledger is unavailable; retry (Retry-After)"},
}


def add_sale_routes(app_router: APIRouter) -> None:
    """Declare calculate and commit, the calls of every sale, on the app's own router.

    FastAPI's declaration (the OpenAPI document, the key's security scheme, the models)
    with ``PosRoute``'s lean handling. They go on the app's router itself, ahead of the
    included routers, rather than in an included one: FastAPI (0.16x) matches a route of
    an included router twice per request, once to choose the inclusion and once inside
    it, after trying every inclusion before it. That cost a calculate about a tenth of
    its CPU (the app in-process as profile_calculate drives it, alternated rounds; see
    docs/performance.md).
    """
    app_router.add_api_route(
        "/v1/calculate",
        calculate,
        methods=["POST"],
        tags=["pos"],
        route_class_override=PosRoute,
        response_model=CalculateResponse,
        responses=CALCULATE_ERRORS,
        summary="Preview a receipt: discounts, points to earn and to spend (writes nothing)",
    )
    app_router.add_api_route(
        "/v1/commit",
        commit,
        methods=["POST"],
        tags=["pos"],
        route_class_override=PosRoute,
        response_model=CommitResponse,
        responses=COMMIT_ERRORS,
        summary="Record a paid sale (idempotent by store_id and transaction_id)",
    )


RETURN_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: {"model": ErrorOut, "description": "no such committed sale"},
    409: {"model": ErrorOut, "description": "refund id reused for another return; sale cancelled"},
    422: {"model": ErrorOut, "description": "returning more than was sold, unknown line"},
}


@router.post(
    "/refund",
    response_model=RefundResponse,
    responses=RETURN_ERRORS,
    summary="Return some or all lines of a committed sale (idempotent by refund_id)",
)
async def refund(body: RefundRequest, principal: Sell, services: ServicesDep) -> OrjsonResponse:
    principal.ensure_store(body.store_id)
    response = await returns.refund(
        body.store_id,
        body.transaction_id,
        body.refund_id,
        return_lines(body),
        now=datetime.now(UTC),
        programs=services.programs,
        cards=services.cards,
        returns=services.returns,
    )
    return OrjsonResponse(response)


@router.post(
    "/cancel",
    response_model=RefundResponse,
    responses=RETURN_ERRORS,
    summary="Void a committed sale entirely (idempotent)",
)
async def cancel(body: CancelRequest, principal: Sell, services: ServicesDep) -> OrjsonResponse:
    principal.ensure_store(body.store_id)
    response = await returns.cancel(
        body.store_id,
        body.transaction_id,
        now=datetime.now(UTC),
        programs=services.programs,
        cards=services.cards,
        returns=services.returns,
    )
    return OrjsonResponse(response)


@router.delete(
    "/calculations/{calculation_id}",
    response_model=ReleasedOut,
    responses={
        **ERRORS,
        404: {"model": ErrorOut, "description": "the calculation holds no points"},
    },
    summary="Cancel a calculation: the points it held are free again (SPEC §3.5)",
)
async def release_calculation(
    calculation_id: Annotated[str, Path(min_length=1, max_length=80)],
    principal: Sell,
    services: ServicesDep,
) -> OrjsonResponse:
    answer = await release_hold(
        calculation_id,
        now=datetime.now(UTC),
        ports=services.sale_ports,
        may_release=principal.ensure_store,
    )
    return OrjsonResponse(answer)


@router.post(
    "/allowances",
    response_model=AllowanceOut,
    responses={**ERRORS, 409: {"model": ErrorOut, "description": "the card has no points to hold"}},
    summary="An offline allowance: points held for this till, spendable while it is offline",
)
async def allowance(
    body: AllowanceRequest, principal: Sell, services: ServicesDep
) -> OrjsonResponse:
    principal.ensure_store(body.store_id)
    answer = await grant_allowance(
        body.card, body.store_id, body.points, now=datetime.now(UTC), ports=services.sale_ports
    )
    return OrjsonResponse(answer)
