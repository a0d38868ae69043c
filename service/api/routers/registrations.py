"""The cashier's registration at the till (SPEC §3.1, §3.2): a customer with their
consents and the card handed over, in one call; later consents by card. A POS key acts
at its own stores only."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from service.api.admin_schemas import (
    ConsentIn,
    ConsentsIn,
    CustomerOut,
    RegistrationIn,
    RegistrationOut,
)
from service.api.deps import Register, ServicesDep
from service.api.json_route import JsonRoute
from service.api.responses import OrjsonResponse
from service.api.routers.admin_common import author
from service.api.schemas import error_responses
from service.usecases import registration as use

router = APIRouter(route_class=JsonRoute, prefix="/v1", tags=["pos: registration"])

ERRORS = error_responses(
    {
        403: "the key may not register customers, or not for this store",
        404: "no customer is registered to this card",
        409: "the card belongs to another customer; the phone or e-mail is taken",
        422: "malformed input; `fields` names each field",
    }
)


def _consents(given: list[ConsentIn], now: datetime) -> tuple[use.Consent, ...]:
    return tuple(use.Consent(c.channel, c.given, c.at or now) for c in given)


@router.post(
    "/registrations",
    response_model=RegistrationOut,
    status_code=201,
    responses={**ERRORS, 200: {"model": RegistrationOut, "description": "registered already"}},
    summary="Register a customer with their consents and hand over a card, in one call",
)
async def register(
    body: RegistrationIn, cashier: Register, services: ServicesDep
) -> OrjsonResponse:
    cashier.ensure_store(body.store_id)
    now = datetime.now(UTC)
    registration = use.Registration(
        body.store_id,
        body.card,
        body.customer.model_dump(),
        _consents(body.consents, now),
    )
    registered, replayed = await use.register(
        services.registrations,
        services.customers,
        services.card_admin,
        services.cards,
        services.programs,
        registration,
        author(cashier),
        now,
    )
    return OrjsonResponse(registered, 200 if replayed else 201)


@router.post(
    "/consents",
    response_model=CustomerOut,
    responses=ERRORS,
    summary="Record consents to mailings given or withdrawn by the customer of a card",
)
async def consents(body: ConsentsIn, cashier: Register, services: ServicesDep) -> OrjsonResponse:
    cashier.ensure_store(body.store_id)
    customer = await use.consent(
        services.registrations,
        services.customers,
        body.card,
        _consents(body.consents, datetime.now(UTC)),
        body.store_id,
        author(cashier),
    )
    return OrjsonResponse(customer)
