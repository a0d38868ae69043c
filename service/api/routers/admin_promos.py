"""Back office: promo code batches (generation, codes as CSV, revocation) and the status
of any code."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.responses import StreamingResponse

from service.api.admin_schemas import (
    OkOut,
    PromoBatchCreatedOut,
    PromoBatchesOut,
    PromoBatchIn,
    PromoBatchOut,
    PromoCodeStatusOut,
)
from service.api.csv_export import csv_content, csv_response
from service.api.deps import PromoCodes, ServicesDep
from service.api.json_route import JsonRoute
from service.api.responses import OrjsonResponse
from service.api.routers.admin_common import ERRORS, PREFIX, Limit, author, next_cursor
from service.usecases import admin_promos as use
from service.usecases.admin_promos import BatchSpec

router = APIRouter(
    route_class=JsonRoute,
    prefix=f"{PREFIX}/promo-codes",
    tags=["admin: promo codes"],
    responses=ERRORS,
)

BatchId = Annotated[str, Path(max_length=40, pattern=r"^b_[0-9a-f]+$")]
CodePath = Annotated[str, Path(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
CODE_COLUMNS = ("code", "max_uses", "uses", "per_card_limit", "valid_from", "valid_to",
                "revoked_at")  # fmt: skip


@router.post(
    "/batches",
    response_model=PromoBatchCreatedOut,
    status_code=201,
    summary="Generate N unique codes for promo rules of the current program",
)
async def create_batch(
    body: PromoBatchIn, admin: PromoCodes, services: ServicesDep
) -> OrjsonResponse:
    spec = BatchSpec(
        count=body.count,
        prefix=body.prefix,
        rule_ids=tuple(body.rule_ids),
        max_uses=1 if body.single_use else body.max_uses,
        per_card_limit=body.per_card_limit,
        valid_from=body.valid_from,
        valid_to=body.valid_to,
    )
    document = services.programs.current.document
    batch = await use.create_batch(
        services.promo_batches, document, spec, body.length, author(admin)
    )
    return OrjsonResponse(batch, 201)


@router.get("/batches", response_model=PromoBatchesOut, summary="Batches, newest first")
async def list_batches(
    admin: PromoCodes,
    services: ServicesDep,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Limit = 50,
) -> OrjsonResponse:
    rows = await use.batches(services.promo_batches, before, limit)
    return OrjsonResponse({"batches": rows, "next_cursor": next_cursor(rows, "number", limit)})


@router.get("/batches/{batch_id}", response_model=PromoBatchOut, summary="A batch and its uses")
async def get_batch(batch_id: BatchId, admin: PromoCodes, services: ServicesDep) -> OrjsonResponse:
    return OrjsonResponse(await use.batch(services.promo_batches, batch_id))


@router.get(
    "/batches/{batch_id}/codes.csv",
    response_class=StreamingResponse,
    responses=csv_content(
        "code,max_uses,uses,per_card_limit,valid_from,valid_to,revoked_at\nBF24-7KQ2M9XA,1,0,1,,,\n"
    ),
    summary="The batch's codes as CSV (streamed)",
)
async def batch_codes(
    batch_id: BatchId, admin: PromoCodes, services: ServicesDep
) -> StreamingResponse:
    pages = await use.batch_codes(services.promo_batches, batch_id)
    return await csv_response(f"{batch_id}.csv", CODE_COLUMNS, pages)


@router.post("/batches/{batch_id}/revoke", response_model=OkOut, summary="Revoke every code")
async def revoke_batch(
    batch_id: BatchId, admin: PromoCodes, services: ServicesDep
) -> OrjsonResponse:
    await use.revoke_batch(services.promo_batches, services.promotions, batch_id, author(admin))
    return OrjsonResponse({"ok": True})


@router.get("/{code}", response_model=PromoCodeStatusOut, summary="A code's status and uses")
async def code_status(code: CodePath, admin: PromoCodes, services: ServicesDep) -> OrjsonResponse:
    return OrjsonResponse(await use.code_status(services.promo_batches, code, datetime.now(UTC)))


@router.post("/{code}/revoke", response_model=PromoCodeStatusOut, summary="Revoke one code")
async def revoke_code(code: CodePath, admin: PromoCodes, services: ServicesDep) -> OrjsonResponse:
    row = await use.revoke_code(
        services.promo_batches, services.promotions, code, author(admin), datetime.now(UTC)
    )
    return OrjsonResponse(row)
