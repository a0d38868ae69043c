"""FastAPI dependencies, as ``Annotated`` aliases.

All are ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread, a
thread hand-off per request that cost /v1/calculate most of its throughput.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from service.api.state import Services
from service.domain.access import Permission, Principal


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


class _BearerPrincipal(HTTPBearer):
    """The principal of the request's ``Authorization: Bearer <key>``.

    The security scheme itself, so that it is one dependency with no dependencies of
    its own: as ``HTTPBearer`` plus a function taking it and the services, FastAPI's
    solving of the three cost 14 µs of CPU per request more (FastAPI 0.165, a route
    with each, best of 15 interleaved rounds in-process). A header that ``HTTPBearer``
    would not accept counts as none, as it did then; the OpenAPI document is the same.
    """

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        known: Principal | None = request.scope.get(PRINCIPAL)  # JsonRoute checked it first
        return known if known is not None else principal_of(request)


# Where a route class that authenticated the request before its body keeps the principal,
# so that the route's dependency does not look the key up a second time.
PRINCIPAL = "loyalty.principal"


def principal_of(request: Request) -> Principal:
    """Who sends ``request``, by its ``Authorization: Bearer <key>`` (401/403 otherwise)."""
    header = request.headers.get("authorization")
    scheme, _, key = (header or "").partition(" ")
    key = key.strip()
    bearer = f"{scheme} {key}" if scheme.lower() == "bearer" and key else None
    services: Services = request.app.state.services
    return services.keyring.authenticate(bearer)


PrincipalDep = Annotated[
    Principal,
    Depends(
        _BearerPrincipal(
            scheme_name="HTTPBearer",
            auto_error=False,
            description="API key: Authorization: Bearer <key>",
        )
    ),
]


def allowed(permission: Permission) -> Callable[[Principal], Awaitable[Principal]]:
    """The dependency of a route that needs ``permission``: the request's principal, or
    403 for a role without it. It carries ``permission`` so that route classes that check
    the key before reading the body (``JsonRoute``) check the permission then too."""

    async def principal_allowed(principal: PrincipalDep) -> Principal:
        principal.ensure(permission)
        return principal

    principal_allowed.permission = permission  # type: ignore[attr-defined]
    return principal_allowed


def permission_of(call: object) -> Permission | None:
    """The permission an ``allowed`` dependency checks; None for any other callable."""
    permission: Permission | None = getattr(call, "permission", None)
    return permission


# One alias per permission, for the routes' signatures (SPEC §3.1; domain/access.py).
Sell = Annotated[Principal, Depends(allowed(Permission.SELL))]
Register = Annotated[Principal, Depends(allowed(Permission.REGISTER))]
LookUpCards = Annotated[Principal, Depends(allowed(Permission.LOOK_UP_CARDS))]
ReadCards = Annotated[Principal, Depends(allowed(Permission.READ_CARDS))]
AdjustPoints = Annotated[Principal, Depends(allowed(Permission.ADJUST_POINTS))]
ManageCards = Annotated[Principal, Depends(allowed(Permission.MANAGE_CARDS))]
EraseCustomers = Annotated[Principal, Depends(allowed(Permission.ERASE_CUSTOMERS))]
Import = Annotated[Principal, Depends(allowed(Permission.IMPORT))]
ReadPrograms = Annotated[Principal, Depends(allowed(Permission.READ_PROGRAMS))]
TryPrograms = Annotated[Principal, Depends(allowed(Permission.TRY_PROGRAMS))]
ChangePrograms = Annotated[Principal, Depends(allowed(Permission.CHANGE_PROGRAMS))]
PromoCodes = Annotated[Principal, Depends(allowed(Permission.PROMO_CODES))]
Rewards = Annotated[Principal, Depends(allowed(Permission.REWARDS))]
Reports = Annotated[Principal, Depends(allowed(Permission.REPORTS))]
ReadStores = Annotated[Principal, Depends(allowed(Permission.READ_STORES))]
ChangeStores = Annotated[Principal, Depends(allowed(Permission.CHANGE_STORES))]
Webhooks = Annotated[Principal, Depends(allowed(Permission.WEBHOOKS))]
Audit = Annotated[Principal, Depends(allowed(Permission.AUDIT))]
Keys = Annotated[Principal, Depends(allowed(Permission.KEYS))]
