"""Back office: wallets (SPEC §4 item 34): issue one or a batch (with its file for the
printer), read one with its history, block, unblock, replace."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from starlette.responses import StreamingResponse

from service.api.csv_export import csv_content, csv_response
from service.api.deps import ManageCards, ReadCards, ServicesDep
from service.api.json_route import JsonRoute
from service.api.responses import OrjsonResponse
from service.api.routers.admin_common import ERRORS, PREFIX, Before, Limit, author, next_cursor
from service.api.routers.wallets import WalletNumber
from service.api.wallet_schemas import (
    WalletBatchIn,
    WalletBatchOut,
    WalletHistoryOut,
    WalletIssueIn,
    WalletOut,
    WalletReplaceIn,
    WalletStatusIn,
)
from service.usecases import wallets as use
from service.usecases.ports import NewWallet

BatchId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]

router = APIRouter(
    route_class=JsonRoute, prefix=f"{PREFIX}/wallets", tags=["admin: wallets"], responses=ERRORS
)


@router.post("", response_model=WalletOut, status_code=201, summary="Issue a wallet")
async def issue(body: WalletIssueIn, admin: ManageCards, services: ServicesDep) -> OrjsonResponse:
    use.check_new_wallet(body.kind, body.nominal, body.card)
    new = NewWallet(
        body.kind, body.number, body.nominal, body.card, body.validity_days, body.expires_at
    )
    issued = await services.wallets.issue(new, author(admin), datetime.now(UTC))
    return OrjsonResponse(issued, 201)


@router.post(
    "/batches",
    response_model=WalletBatchOut,
    status_code=201,
    summary="Issue a batch of gift certificates, numbered in the chain's EAN-13 range",
)
async def issue_batch(
    body: WalletBatchIn, admin: ManageCards, services: ServicesDep
) -> OrjsonResponse:
    now = datetime.now(UTC)
    batch = f"{now:%Y%m%d}-{secrets.token_hex(4)}"
    new = NewWallet("certificate", None, body.nominal, None, body.validity_days,
                    body.expires_at, batch)  # fmt: skip
    numbers = await services.wallets.issue_batch(new, body.count, author(admin), now)
    return OrjsonResponse(
        {"batch": batch, "count": len(numbers), "first": numbers[0], "last": numbers[-1]}, 201
    )


BATCH_COLUMNS = ("number", "kind", "nominal", "expires_at")


@router.get(
    "/batches/{batch}/print",
    response_class=StreamingResponse,
    responses=csv_content("number,kind,nominal,expires_at\n2900000000017,certificate,100000,\n"),
    summary="A batch's numbers and face values as a CSV for the printer",
)
async def print_batch(
    batch: BatchId, admin: ManageCards, services: ServicesDep
) -> StreamingResponse:
    rows = await services.wallets.batch(batch)

    async def page(cursor: Any) -> tuple[list[dict[str, Any]], Any]:
        return rows, None

    return await csv_response(f"wallets-{batch}.csv", BATCH_COLUMNS, page)


@router.get(
    "/{number}",
    response_model=WalletHistoryOut,
    summary="A wallet and its movements, newest first (cursor: before)",
)
async def wallet(
    number: WalletNumber,
    admin: ReadCards,
    services: ServicesDep,
    before: Before = None,
    limit: Limit = 100,
) -> OrjsonResponse:
    view = await services.wallets.view(number, datetime.now(UTC))
    entries = await services.wallets.history(number, limit, before)
    return OrjsonResponse(
        {"wallet": view, "entries": entries,
         "next_before": next_cursor(entries, "entry_id", limit)}
    )  # fmt: skip


@router.post("/{number}/block", response_model=WalletOut, summary="Block: it pays nothing")
async def block(
    number: WalletNumber, body: WalletStatusIn, admin: ManageCards, services: ServicesDep
) -> OrjsonResponse:
    return OrjsonResponse(
        await services.wallets.set_status(
            number, "blocked", author(admin), body.reason, datetime.now(UTC)
        )
    )


@router.post("/{number}/unblock", response_model=WalletOut, summary="Make it pay again")
async def unblock(
    number: WalletNumber, body: WalletStatusIn, admin: ManageCards, services: ServicesDep
) -> OrjsonResponse:
    return OrjsonResponse(
        await services.wallets.set_status(
            number, "active", author(admin), body.reason, datetime.now(UTC)
        )
    )


@router.post(
    "/{number}/replace",
    response_model=WalletOut,
    summary="Replace a lost or damaged wallet: the new one takes its money and expiry",
)
async def replace(
    number: WalletNumber, body: WalletReplaceIn, admin: ManageCards, services: ServicesDep
) -> OrjsonResponse:
    replaced = await services.wallets.replace(
        number, body.number, author(admin), body.reason, datetime.now(UTC)
    )
    return OrjsonResponse(replaced)
