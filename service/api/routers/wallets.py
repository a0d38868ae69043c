"""Wallets at the till (SPEC §4 item 34): a certificate's sale, an e-wallet's top-up, a
wallet's balance. Paying from one is a field of calculate and commit."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path

from service.api.deps import LookUpCards, Sell, ServicesDep
from service.api.json_route import JsonRoute
from service.api.responses import OrjsonResponse
from service.api.schemas import error_responses
from service.api.wallet_schemas import TillWalletOut, WalletOut, WalletSellIn, WalletTopUpIn
from service.usecases import wallets as use

router = APIRouter(route_class=JsonRoute, prefix="/v1/wallets", tags=["wallets"])

WalletNumber = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]

ERRORS = error_responses(
    {
        403: "the key may not act for this store",
        404: "no such wallet",
        409: "the wallet is not in a state for this, or the transaction was used otherwise",
        422: "malformed request",
    }
)


@router.get("/{number}", response_model=WalletOut, responses=ERRORS,
            summary="A wallet's balance, status and expiry")  # fmt: skip
async def wallet(
    number: WalletNumber, principal: LookUpCards, services: ServicesDep
) -> OrjsonResponse:
    return OrjsonResponse(await services.wallets.view(number, datetime.now(UTC)))


@router.post(
    "/{number}/sell",
    response_model=TillWalletOut,
    responses=ERRORS,
    summary="Sell a gift certificate: it comes alive holding its face value (idempotent)",
)
async def sell(
    number: WalletNumber, body: WalletSellIn, principal: Sell, services: ServicesDep
) -> OrjsonResponse:
    principal.ensure_store(body.store_id)
    view, replayed = await use.sell(
        services.wallets, services.programs.current, number, body.store_id,
        body.transaction_id, body.amount, datetime.now(UTC),
    )  # fmt: skip
    return OrjsonResponse({**view, "replayed": replayed})


@router.post(
    "/{number}/top-up",
    response_model=TillWalletOut,
    responses=ERRORS,
    summary="Add money to an e-wallet (idempotent by store and transaction)",
)
async def top_up(
    number: WalletNumber, body: WalletTopUpIn, principal: Sell, services: ServicesDep
) -> OrjsonResponse:
    principal.ensure_store(body.store_id)
    view, replayed = await use.top_up(
        services.wallets, services.programs.current, number, body.store_id,
        body.transaction_id, body.amount, datetime.now(UTC),
    )  # fmt: skip
    return OrjsonResponse({**view, "replayed": replayed})
