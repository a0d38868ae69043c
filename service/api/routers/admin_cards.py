"""Back office: cards (issue, ranges, block, link, replace) and manual adjustments."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import StreamingResponse

from service.api.admin_schemas import (
    AdjustmentIn,
    AdjustmentsOut,
    AdminCardOut,
    CardIssueIn,
    CardLinkIn,
    CardRangeIn,
    CardRangeOut,
    CardReplaceIn,
    CardStatusIn,
    PersonalDiscountIn,
)
from service.api.csv_export import csv_content, csv_response
from service.api.deps import AdjustPoints, ManageCards, ReadCards, ServicesDep
from service.api.json_route import JsonRoute
from service.api.responses import OrjsonResponse
from service.api.routers.admin_common import (
    ERRORS,
    PREFIX,
    Before,
    IdempotencyKey,
    Limit,
    author,
    idempotent_request,
    next_cursor,
)
from service.api.schemas import CardNumber
from service.api.state import Services
from service.usecases import admin_cards as use
from service.usecases.admin_cards import NewCard

router = APIRouter(
    route_class=JsonRoute, prefix=f"{PREFIX}/cards", tags=["admin: cards"], responses=ERRORS
)


@router.post("", response_model=AdminCardOut, status_code=201, summary="Issue a card")
async def issue(body: CardIssueIn, admin: ManageCards, services: ServicesDep) -> OrjsonResponse:
    card = NewCard(body.number, body.kind, body.status, body.customer_id, body.referred_by)
    issued = await use.issue(
        services.card_admin,
        services.cards,
        services.programs,
        card,
        author(admin),
        datetime.now(UTC),
    )
    return OrjsonResponse(issued, 201)


@router.post(
    "/ranges",
    response_model=CardRangeOut,
    status_code=201,
    summary="Issue every number of a range (stock for the stores); issued ones are skipped",
)
async def issue_range(
    body: CardRangeIn, admin: ManageCards, services: ServicesDep
) -> OrjsonResponse:
    issued = await use.issue_range(
        services.card_admin,
        services.programs,
        body.first,
        body.last,
        body.kind,
        body.status,
        author(admin),
    )
    return OrjsonResponse({"requested": issued.requested, "issued": issued.issued}, 201)


@router.get(
    "/ranges/print",
    response_class=StreamingResponse,
    responses=csv_content("number\n2000001000008\n2000001000015\n"),
    summary="A range's numbers as a CSV for the card printer, in the program's number format",
)
async def print_range(
    first: Annotated[CardNumber, Query()],
    last: Annotated[CardNumber, Query()],
    admin: ManageCards,
    services: ServicesDep,
) -> StreamingResponse:
    numbers = use.range_of(first, last, services.programs.current.document.card_number_format)

    async def page(cursor: Any) -> tuple[list[dict[str, Any]], Any]:
        return [{"number": number} for number in numbers], None

    return await csv_response(f"cards-{numbers[0]}-{numbers[-1]}.csv", ("number",), page)


@router.get("/{number}", response_model=AdminCardOut, summary="A card as the ledger has it")
async def get_card(number: CardNumber, admin: ReadCards, services: ServicesDep) -> OrjsonResponse:
    return OrjsonResponse(await use.card(services.card_admin, number, datetime.now(UTC)))


async def _set_status(
    services: Services, number: str, status: str, reason: str, who: str
) -> OrjsonResponse:
    card = await use.set_status(
        services.card_admin,
        services.cards,
        services.programs,
        number,
        status,
        reason,
        who,
        datetime.now(UTC),
    )
    return OrjsonResponse(card)


@router.post(
    "/{number}/block", response_model=AdminCardOut, summary="Block: no earning, no spending"
)
async def block(
    number: CardNumber, body: CardStatusIn, admin: ManageCards, services: ServicesDep
) -> OrjsonResponse:
    return await _set_status(services, number, "blocked", body.reason, author(admin))


@router.post("/{number}/unblock", response_model=AdminCardOut, summary="Make a card active again")
async def unblock(
    number: CardNumber, body: CardStatusIn, admin: ManageCards, services: ServicesDep
) -> OrjsonResponse:
    return await _set_status(services, number, "active", body.reason, author(admin))


@router.post(
    "/{number}/personal-discount",
    response_model=AdminCardOut,
    summary="Set the card's personal discount (granted by rules with the personal_discount"
    " effect); the audit log keeps each change",
)
async def personal_discount(
    number: CardNumber, body: PersonalDiscountIn, admin: AdjustPoints, services: ServicesDep
) -> OrjsonResponse:
    card = await use.set_personal_discount(
        services.card_admin, services.cards, services.programs, number, body.percent,
        body.reason, author(admin), datetime.now(UTC),
    )  # fmt: skip
    return OrjsonResponse(card)


@router.post(
    "/{number}/link",
    response_model=AdminCardOut,
    summary="Register a card to a customer (welcome points, once per card)",
)
async def link(
    number: CardNumber, body: CardLinkIn, admin: ManageCards, services: ServicesDep
) -> OrjsonResponse:
    card = await use.link(
        services.card_admin,
        services.cards,
        services.programs,
        number,
        body.customer_id,
        author(admin),
        datetime.now(UTC),
    )
    return OrjsonResponse(card)


@router.post(
    "/{number}/replace",
    response_model=AdminCardOut,
    summary="Replace a lost card: balance, expiry dates, tier, stamps and customer move to the"
    " new one",
)
async def replace(
    number: CardNumber, body: CardReplaceIn, admin: ManageCards, services: ServicesDep
) -> OrjsonResponse:
    card = await use.replace(
        services.card_admin,
        services.cards,
        services.programs,
        number,
        body.new_number,
        body.kind,
        author(admin),
        datetime.now(UTC),
    )
    return OrjsonResponse(card)


@router.post(
    "/{number}/adjustments",
    response_model=AdminCardOut,
    status_code=201,
    tags=["admin: adjustments"],
    summary="Credit or debit points with a reason",
)
async def adjust(
    number: CardNumber,
    body: AdjustmentIn,
    admin: AdjustPoints,
    services: ServicesDep,
    idempotency_key: IdempotencyKey = None,
) -> OrjsonResponse:
    idempotency = None
    if idempotency_key is not None:
        asked = {"card": number, **body.model_dump(mode="json")}
        idempotency = idempotent_request(admin, idempotency_key, "card.adjust", asked)
    card = await use.adjust(
        services.card_admin,
        services.cards,
        services.programs,
        use.Adjustment(number, body.points, body.reason, author(admin), body.expires_at),
        datetime.now(UTC),
        idempotency,
    )
    return OrjsonResponse(card, 201)


@router.get(
    "/{number}/adjustments",
    response_model=AdjustmentsOut,
    tags=["admin: adjustments"],
    summary="A card's manual adjustments, newest first",
)
async def adjustments(
    number: CardNumber,
    admin: ReadCards,
    services: ServicesDep,
    before: Before = None,
    limit: Limit = 50,
) -> OrjsonResponse:
    rows = await use.adjustments(services.card_admin, number, before, limit, datetime.now(UTC))
    cursor = next_cursor(rows, "adjustment_id", limit)
    return OrjsonResponse({"adjustments": rows, "next_cursor": cursor})
