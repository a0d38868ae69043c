"""Card lookups for the till and support: balance, tier, history, search by phone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from service.api.deps import LookUpCards, ServicesDep
from service.api.json_route import JsonRoute
from service.api.responses import OrjsonResponse
from service.api.schemas import (
    INT64_MAX,
    CardNumber,
    CardOut,
    CardsFoundOut,
    HistoryOut,
    Phone,
    error_responses,
)
from service.usecases import card_lookups as lookups

router = APIRouter(route_class=JsonRoute, prefix="/v1/cards", tags=["cards"])

NOT_FOUND = error_responses(
    {
        404: "no such card",
        422: "malformed card number or query",
    }
)


@router.get(
    "",
    response_model=CardsFoundOut,
    responses=NOT_FOUND,
    summary="Find cards by the customer's phone number",
)
async def find_cards(
    phone: Annotated[Phone, Query(description="E.164, e.g. +79000000001")],
    principal: LookUpCards,
    services: ServicesDep,
) -> OrjsonResponse:
    numbers = await lookups.by_phone(services.card_queries, phone)
    return OrjsonResponse({"cards": [{"number": n} for n in numbers]})


@router.get(
    "/{card}",
    response_model=CardOut,
    responses=NOT_FOUND,
    summary="Balance (active, pending, expiring), tier and progress to the next",
)
async def get_card(
    card: CardNumber, principal: LookUpCards, services: ServicesDep
) -> OrjsonResponse:
    view = await lookups.card(services.cards, services.programs, card, datetime.now(UTC))
    return OrjsonResponse(view)


@router.get(
    "/{card}/history",
    response_model=HistoryOut,
    responses=NOT_FOUND,
    summary="Ledger entries, newest first; pass next_cursor as `before` for the next page",
)
async def card_history(
    card: CardNumber,
    principal: LookUpCards,
    services: ServicesDep,
    before: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> OrjsonResponse:
    entries = await lookups.history(services.card_queries, card, before, limit)
    body: dict[str, Any] = {
        "entries": entries,
        "next_cursor": entries[-1]["entry_id"] if len(entries) == limit else None,
    }
    return OrjsonResponse(body)
